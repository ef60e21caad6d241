//! The attack's only `unsafe` code (the workspace denies it outside `sys` modules): raising
//! this process's open-file limit.
#![allow(unsafe_code)]

/// The attackers' thousands of sockets, plus the probe's and the QUIC ones, need more than the
/// usual soft limit of 1,024 descriptors: the soft limit is raised to the hard one.
pub fn raise_own_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed in, which lives
    // on this stack frame for both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
