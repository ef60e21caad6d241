//! Segment files: their names, creating one, and scanning one's frames when the log opens.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use openraft::LogId;
use strand_log::storage::{AtomicWrite, FileStorage, Storage};

use super::error::RaftLogError;
use super::format::{self, FrameHeader, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use super::torn;
use crate::cluster::types::NodeId;
use crate::limits::RAFT_LOG_SCAN_BUFFER_BYTES;

const SEGMENT_EXTENSION: &str = "seg";
/// Temporaries of atomic writes (a segment's header, the state file) end so.
const TEMPORARY_EXTENSION: &str = "tmp";

/// `<dir>/<first index, 20 digits>.seg`: names sort like indexes.
pub(super) fn segment_path(dir: &Path, first_index: u64) -> PathBuf {
    dir.join(format!("{first_index:020}.{SEGMENT_EXTENSION}"))
}

/// The first index a segment file name carries, `None` for other names.
fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segment files in `dir` by first index. Removes temporaries a crash left behind: an
/// atomic write whose temporary exists did not land, so nothing depends on it.
pub(super) fn list(dir: &Path) -> Result<BTreeMap<u64, PathBuf>, RaftLogError> {
    let listing = std::fs::read_dir(dir).map_err(|e| RaftLogError::io("list", dir, e))?;
    let mut segments = BTreeMap::new();
    for entry in listing {
        let path = entry.map_err(|e| RaftLogError::io("list", dir, e))?.path();
        let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        if let Some(first_index) = parse_segment_name(name) {
            segments.insert(first_index, path);
        } else if path
            .extension()
            .is_some_and(|ext| ext == TEMPORARY_EXTENSION)
        {
            std::fs::remove_file(&path).map_err(|e| RaftLogError::io("remove", &path, e))?;
        }
    }
    Ok(segments)
}

/// Create the segment whose first entry is `first_index` and open it for appending. Its
/// header is written to a temporary, fsynced and linked into place, and the directory is
/// fsynced: a segment file exists only with a whole header, and never replaces another.
pub(super) fn create(dir: &Path, first_index: u64) -> Result<(PathBuf, File), RaftLogError> {
    let path = segment_path(dir, first_index);
    let header = format::segment_header(first_index);
    FileStorage
        .write_atomically(&path, &header, AtomicWrite::durable().keeping_existing())
        .map_err(|e| RaftLogError::io("create", &path, e))?;
    let file = open(&path)?;
    Ok((path, file))
}

/// Open an existing segment for reading and writing.
pub(super) fn open(path: &Path) -> Result<File, RaftLogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| RaftLogError::io("open", path, e))
}

/// An entry's frame found by [`scan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ScannedFrame {
    /// The entry's log id.
    pub log_id: LogId<NodeId>,
    /// Where its frame starts.
    pub offset: u64,
    /// Bytes of its body.
    pub body_len: u32,
}

/// Bytes after the last whole frame that are not a whole frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Damage {
    /// Where the first bad frame starts.
    pub offset: u64,
    /// What is wrong with it.
    pub reason: String,
    /// Whether it looks like a write cut short by a crash (see `torn`): no whole later entry
    /// follows it. Only such damage, and only at the end of the last segment, is cut off.
    pub torn: bool,
}

/// What a segment file holds.
#[derive(Debug)]
pub(super) struct Scan {
    /// The first index its header names.
    pub first_index: u64,
    /// Its whole frames, in order.
    pub frames: Vec<ScannedFrame>,
    /// What follows them, if anything.
    pub damage: Option<Damage>,
    /// The file's length.
    pub file_len: u64,
}

/// Read the segment `file` at `path` through: its header, then frame after frame until the
/// end or the first bad frame. A bad header is an error (segments are created whole).
pub(super) fn scan(path: &Path, file: &File) -> Result<Scan, RaftLogError> {
    let read_error = |e| RaftLogError::io("read", path, e);
    let file_len = file
        .metadata()
        .map_err(|e| RaftLogError::io("stat", path, e))?
        .len();
    let mut reader = BufReader::with_capacity(RAFT_LOG_SCAN_BUFFER_BYTES, file);
    let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
    let header_len = header.len().min(file_len as usize);
    reader
        .read_exact(&mut header[..header_len])
        .map_err(read_error)?;
    let first_index = format::parse_segment_header(&header[..header_len])
        .map_err(|reason| RaftLogError::corrupt(path, 0, reason))?;
    let (frames, bad) =
        scan_frames(&mut reader, SEGMENT_HEADER_BYTES, file_len).map_err(read_error)?;
    let damage = match bad {
        None => None,
        Some(bad) => {
            // The checksum held: those bytes were written whole, so no crash tore them.
            let next = first_index + frames.len() as u64;
            let read_at = |buf: &mut [u8], at: u64| file.read_exact_at(buf, at);
            let torn = !bad.checksummed
                && !torn::entry_follows(read_at, bad.offset, file_len, next).map_err(read_error)?;
            Some(Damage {
                offset: bad.offset,
                reason: bad.reason,
                torn,
            })
        }
    };
    Ok(Scan {
        first_index,
        frames,
        damage,
        file_len,
    })
}

/// The first frame [`scan_frames`] could not take.
#[derive(Debug, PartialEq, Eq)]
struct BadFrame {
    offset: u64,
    reason: String,
    /// Its checksum matched (its body does not decode).
    checksummed: bool,
}

/// The frames `reader` holds from `offset` to `file_len`, and the first bad one after them.
fn scan_frames(
    reader: &mut impl Read,
    mut offset: u64,
    file_len: u64,
) -> io::Result<(Vec<ScannedFrame>, Option<BadFrame>)> {
    let mut frames = Vec::new();
    let mut body = Vec::new();
    while offset < file_len {
        let rest = file_len - offset;
        let bad = |reason: String, checksummed: bool| BadFrame {
            offset,
            reason,
            checksummed,
        };
        if rest < FRAME_HEADER_BYTES {
            let reason = format!("a frame header cut short ({rest} bytes)");
            return Ok((frames, Some(bad(reason, false))));
        }
        let mut header = [0u8; FRAME_HEADER_BYTES as usize];
        reader.read_exact(&mut header)?;
        let header = FrameHeader::parse(&header);
        if !header.length_is_plausible() {
            let reason = format!("a frame announcing {} bytes", header.body_len);
            return Ok((frames, Some(bad(reason, false))));
        }
        if header.frame_bytes() > rest {
            let reason = format!(
                "a frame of {} bytes cut short at {rest}",
                header.frame_bytes()
            );
            return Ok((frames, Some(bad(reason, false))));
        }
        body.resize(header.body_len as usize, 0);
        reader.read_exact(&mut body)?;
        if format::crc32(&body) != header.crc {
            return Ok((frames, Some(bad("checksum mismatch".to_owned(), false))));
        }
        match format::decode_entry(&body) {
            Ok(entry) => frames.push(ScannedFrame {
                log_id: entry.log_id,
                offset,
                body_len: header.body_len,
            }),
            Err(reason) => return Ok((frames, Some(bad(reason, true)))),
        }
        offset += header.frame_bytes();
    }
    Ok((frames, None))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::cluster::raft_log::Entry;

    fn frames_of(indexes: std::ops::Range<u64>) -> Vec<u8> {
        let mut out = Vec::new();
        for index in indexes {
            let entry = Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
                payload: EntryPayload::Blank,
            };
            let body = format::encode_entry(&entry).unwrap();
            format::push_frame(&body, &mut out);
        }
        out
    }

    fn scan_bytes(bytes: &[u8]) -> (Vec<ScannedFrame>, Option<BadFrame>) {
        scan_frames(&mut Cursor::new(bytes), 0, bytes.len() as u64).unwrap()
    }

    #[test]
    fn segment_names_sort_like_indexes_and_round_trip() {
        let path = segment_path(Path::new("d"), 42);
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "00000000000000000042.seg");
        assert_eq!(parse_segment_name(name), Some(42));
        assert_eq!(parse_segment_name("42.seg"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.seg"), None);
        assert_eq!(parse_segment_name("00000000000000000042.tmp"), None);
    }

    #[test]
    fn whole_frames_scan_clean() {
        let bytes = frames_of(3..6);
        let (frames, bad) = scan_bytes(&bytes);
        assert_eq!(bad, None);
        let indexes: Vec<u64> = frames.iter().map(|f| f.log_id.index).collect();
        assert_eq!(indexes, vec![3, 4, 5]);
        assert_eq!(frames[0].offset, 0);
    }

    #[test]
    fn a_frame_cut_anywhere_is_bad_from_its_start() {
        let bytes = frames_of(0..3);
        let (frames, _) = scan_bytes(&bytes);
        let last_at = frames[2].offset;
        for cut in last_at as usize + 1..bytes.len() {
            let (frames, bad) = scan_bytes(&bytes[..cut]);
            assert_eq!(frames.len(), 2, "cut at {cut}");
            let bad = bad.unwrap();
            assert_eq!(
                (bad.offset, bad.checksummed),
                (last_at, false),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_flipped_bit_makes_its_frame_bad() {
        let clean = frames_of(0..3);
        let (frames, _) = scan_bytes(&clean);
        let second_at = frames[1].offset;
        for at in second_at..frames[2].offset {
            let mut bytes = clean.clone();
            bytes[at as usize] ^= 0x40;
            let (frames, bad) = scan_bytes(&bytes);
            assert_eq!(frames.len(), 1, "bit flipped at {at}");
            assert_eq!(
                bad.map(|bad| bad.offset),
                Some(second_at),
                "bit flipped at {at}"
            );
        }
    }
}
