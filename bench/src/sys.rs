//! The one system call the tool makes outside std: SIGTERM to a spawned server, so a restart
//! measures a clean shutdown and start.
#![allow(unsafe_code)]

/// Sends SIGTERM to `pid` (a child of this process).
pub fn signal_terminate(pid: libc::pid_t) {
    // SAFETY: kill(2) takes plain integers and touches no memory of this process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// `sync(2)`: writes back every file system's dirty data before a new server starts.
pub fn sync_file_systems() {
    // SAFETY: sync(2) takes no arguments and touches no memory of this process.
    unsafe {
        libc::sync();
    }
}
