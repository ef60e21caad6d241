//! The bench's only `unsafe` code (the workspace denies it outside `sys` modules).
#![allow(unsafe_code)]

/// 5,000 sockets of the attacker plus the probe's and the QUIC ones need more than the usual
/// soft limit of 1,024 descriptors.
pub fn raise_own_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
