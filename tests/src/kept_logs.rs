//! Keeping test servers' stderr: with `STRAND_TEST_KEEP_LOGS=DIR`, each server's stderr is
//! copied to `DIR/<data dir name>-<unix ms>.log` when it ends, so a long run's evidence
//! outlives the temporary files the harness deletes.

use std::path::Path;

/// The environment variable naming a directory that keeps every test server's stderr.
pub const KEEP_LOGS_ENV: &str = "STRAND_TEST_KEEP_LOGS";

/// Copies `stderr` (the log of the server on `data_dir`) into the directory of
/// [`KEEP_LOGS_ENV`], if it is set.
pub fn keep(stderr: &Path, data_dir: &Path) {
    let Some(dir) = std::env::var_os(KEEP_LOGS_ENV) else {
        return;
    };
    let name = data_dir
        .file_name()
        .map_or_else(|| "strand".into(), |n| n.to_string_lossy().into_owned());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let kept = Path::new(&dir).join(format!("{name}-{now}.log"));
    let _ = std::fs::create_dir_all(&dir);
    if let Err(e) = std::fs::copy(stderr, &kept) {
        eprintln!("could not keep {}: {e}", kept.display());
    }
}
