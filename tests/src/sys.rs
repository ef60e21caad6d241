//! The harness's only `unsafe` code (the workspace denies it outside `sys` modules): the libc
//! calls that start a server with a file-size limit, signal it, and lower the test process's
//! own open-files limit.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the child started by `command` run with `RLIMIT_FSIZE` at `file_bytes_max` and
/// SIGXFSZ ignored, so a write past the limit fails with EFBIG instead of killing it.
pub fn limit_child_file_size(command: &mut Command, file_bytes_max: u64) {
    let limit = libc::rlimit {
        rlim_cur: file_bytes_max,
        rlim_max: file_bytes_max,
    };
    // SAFETY: between fork and exec only async-signal-safe calls (signal, setrlimit)
    // on plain values; an ignored signal stays ignored across exec.
    unsafe {
        command.pre_exec(move || {
            if libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR
                || libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sends `signal` to the process `pid`; the result of `kill(2)`.
pub fn send_signal(pid: i32, signal: i32) -> i32 {
    // SAFETY: `kill` has no memory effects.
    unsafe { libc::kill(pid, signal) }
}

/// Lowers this process's soft open-files limit to `soft` (when the hard limit is above it).
pub fn lower_soft_open_files_limit(soft: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only `limit`, which outlives the calls.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_max > soft {
            limit.rlim_cur = soft;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
}
