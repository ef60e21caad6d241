//! Offline repair of damaged segments (`strand repair`): for a partition directory of a stopped
//! store, keep every intact record of every segment and move the damaged bytes aside.
//!
//! A damaged segment is copied whole to `<segment>.log.damaged` (fsync'd) before anything
//! changes, then rewritten with its intact frames only (byte for byte, same `_seq`s, written
//! to a temporary file, fsync'd and renamed over it); its `.idx` is removed (rebuilt on the
//! next load). A header that no longer checks is written afresh from the file name. Because
//! records were taken out of the middle of the history, the partition's resume floors are
//! raised to its newest `_seq`: a subscriber that resumes from before the repair gets a fresh
//! snapshot (`resume_too_old`) instead of a history with a silent gap.
//!
//! A torn tail of the newest segment is not damage (the next open cuts it) and is left alone.

use std::path::{Path, PathBuf};

use super::{scan_all, DamagedRange, SegmentScan};
use crate::error::{LogError, Result};
use crate::meta::ResumeFloors;
use crate::record::{self, Decoded};
use crate::segment::{self, SEGMENT_HEADER_BYTES};
use crate::seq::Seq;
use crate::storage::{AtomicWrite, FileStorage, Storage};

/// What repairing one segment found (and did, unless it was a dry run).
#[derive(Debug)]
pub struct SegmentRepair {
    /// The segment file.
    pub segment: PathBuf,
    /// Damaged ranges, the garbage after the last record of a sealed segment included.
    pub damaged: Vec<DamagedRange>,
    /// The header did not check and was written afresh.
    pub bad_header: bool,
    /// Intact records, all kept.
    pub kept_records: u32,
    /// Bytes of the segment that held no intact record.
    pub damaged_bytes: u64,
    /// Where the original file was copied (`None` on a dry run).
    pub moved_aside: Option<PathBuf>,
}

/// What repairing a partition directory found.
#[derive(Debug, Default)]
pub struct PartitionRepair {
    /// Every damaged segment, in file order.
    pub segments: Vec<SegmentRepair>,
    /// The resume floors were raised to this `_seq` (`None`: nothing repaired).
    pub floors_raised_to: Option<Seq>,
}

/// Check every segment of the partition in `dir`; with `apply`, repair the damaged ones.
pub fn repair_partition(dir: &Path, apply: bool) -> Result<PartitionRepair> {
    repair_partition_with(&FileStorage, dir, apply)
}

/// [`repair_partition`] writing through `storage`.
pub fn repair_partition_with(
    storage: &dyn Storage,
    dir: &Path,
    apply: bool,
) -> Result<PartitionRepair> {
    let mut names: Vec<Seq> = std::fs::read_dir(dir)
        .map_err(|e| LogError::io(dir, e))?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            segment::parse_segment_name(name.to_str()?)
        })
        .collect();
    names.sort_unstable();
    let mut report = PartitionRepair::default();
    let mut newest_seq = Seq::ZERO;
    for (i, &first_seq) in names.iter().enumerate() {
        let path = segment::segment_path(dir, first_seq);
        let bytes = std::fs::read(&path).map_err(|e| LogError::io(&path, e))?;
        if bytes.len() < SEGMENT_HEADER_BYTES as usize || bytes.iter().all(|&b| b == 0) {
            continue; // A torn creation: the next open removes it.
        }
        let bad_header = segment::check_header(&bytes, &path, first_seq).is_err();
        let mut data = bytes.clone();
        if bad_header {
            data[..SEGMENT_HEADER_BYTES as usize]
                .copy_from_slice(&segment::encode_header(first_seq, 0));
        }
        let scan = scan_all(&data, first_seq);
        newest_seq = newest_seq.max(scan.index.summary.last_seq).max(first_seq);
        let newest = i + 1 == names.len();
        let mut damaged = scan.damaged.clone();
        if !newest {
            damaged.extend(scan.tail);
        }
        if damaged.is_empty() && !bad_header {
            continue;
        }
        let kept = intact_frames(&data, &scan);
        let kept_bytes: usize = kept.iter().map(|(start, end)| end - start).sum();
        let data_end = match (newest, scan.tail) {
            (true, Some(tail)) => tail.start as usize,
            _ => data.len(),
        };
        let damaged_bytes = data_end.saturating_sub(SEGMENT_HEADER_BYTES as usize + kept_bytes);
        let mut repair = SegmentRepair {
            segment: path.clone(),
            damaged,
            bad_header,
            kept_records: kept.len() as u32,
            damaged_bytes: damaged_bytes as u64,
            moved_aside: None,
        };
        if apply {
            repair.moved_aside = Some(rewrite(storage, &path, &bytes, &data, &kept)?);
        }
        report.segments.push(repair);
    }
    if apply && !report.segments.is_empty() {
        let floors = ResumeFloors::load(dir)?.flatten().unwrap_or_default();
        floors
            .raised_to(ResumeFloors::both(newest_seq))
            .store(storage, dir)?;
        report.floors_raised_to = Some(newest_seq);
    }
    Ok(report)
}

/// `(start, end)` of every intact frame of a scanned segment, in file order.
fn intact_frames(data: &[u8], scan: &SegmentScan) -> Vec<(usize, usize)> {
    let mut frames = Vec::with_capacity(scan.index.summary.records as usize);
    let mut position = SEGMENT_HEADER_BYTES as usize;
    loop {
        if let Some(range) = scan.damaged.iter().find(|d| d.start as usize == position) {
            position = range.end as usize;
            continue;
        }
        if scan.tail.is_some_and(|t| t.start as usize == position) {
            return frames;
        }
        match record::decode(data, position) {
            Ok(Decoded::Record(_, next)) => {
                frames.push((position, next));
                position = next;
            }
            _ => return frames,
        }
    }
}

/// Copy `original` aside, then replace the segment with its header and intact frames.
fn rewrite(
    storage: &dyn Storage,
    path: &Path,
    original: &[u8],
    data: &[u8],
    kept: &[(usize, usize)],
) -> Result<PathBuf> {
    let aside = free_name(path);
    storage
        .write_atomically(&aside, original, AtomicWrite::durable())
        .map_err(|e| LogError::io(&aside, e))?;
    let mut out = data[..SEGMENT_HEADER_BYTES as usize].to_vec();
    for &(start, end) in kept {
        out.extend_from_slice(&data[start..end]);
    }
    storage
        .write_atomically(path, &out, AtomicWrite::durable())
        .map_err(|e| LogError::io(path, e))?;
    let index = path.with_extension("idx");
    match storage.remove_file(&index) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(LogError::io(&index, e)),
        _ => {}
    }
    if let Some(dir) = path.parent() {
        storage
            .sync_directory(dir)
            .map_err(|e| LogError::io(dir, e))?;
    }
    Ok(aside)
}

/// `<segment>.log.damaged`, or `.damaged.N` if an earlier repair used that name.
fn free_name(path: &Path) -> PathBuf {
    let base = path.with_extension("log.damaged");
    let mut candidate = base.clone();
    let mut n = 1;
    while candidate.exists() {
        candidate = PathBuf::from(format!("{}.{n}", base.display()));
        n += 1;
    }
    candidate
}

/// Directories under `root` that hold segment files (the partitions of a store's
/// `partitions` directory), sorted.
pub fn partition_dirs(root: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| LogError::io(&dir, e))?;
        let mut has_segments = false;
        for entry in entries {
            let entry = entry.map_err(|e| LogError::io(&dir, e))?;
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if entry
                .file_name()
                .to_str()
                .and_then(segment::parse_segment_name)
                .is_some()
            {
                has_segments = true;
            }
        }
        if has_segments {
            found.push(dir);
        }
    }
    found.sort();
    Ok(found)
}
