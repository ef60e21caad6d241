//! [`FailedAttempts`]: the brute-force limit. Failed password checks are counted per user name
//! and per source address; once either count reaches its limit within the window, further
//! password attempts for that name (or from that address) are refused with
//! `too_many_attempts` and a retry time, before any argon2 verification is spent on them.
//!
//! - A window starts at a key's first failure and lasts `window`; the count starts over
//!   after it. An attempt is counted when it is admitted, before argon2 runs, so attempts in
//!   flight count too; a correct password takes its own count back from the address and
//!   resets the name's count (only its own attempt from the address: one address guessing
//!   many names must not wipe its count by logging in to its own account).
//! - Names are counted whether or not the user exists, so the answer never tells which do.
//! - Basic credentials already verified (the cache of `basic_cache.rs`) are not attempts: a
//!   client with the right password keeps working while its name is under attack, since a
//!   wrong guess never matches the cache.
//! - Tokens are not counted: a signature cannot be guessed.
//! - Memory is bounded (`AUTH_FAILURE_KEYS_MAX` keys per map): when a map is full, windows
//!   that are over go first, then the map starts over (a flood of distinct keys needs many
//!   addresses, each of which is limited on its own).
//!
//! Pure apart from the clock, which is a parameter.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::AttemptLimits;
use crate::limits::AUTH_FAILURE_KEYS_MAX;

/// Where an attempt came from. `None` where the transport does not say (then only the name
/// is limited).
pub type Source = Option<IpAddr>;

#[derive(Clone, Copy, Debug)]
struct Window {
    started: Instant,
    failures: u32,
}

#[derive(Debug)]
pub struct FailedAttempts {
    limits: AttemptLimits,
    by_user: Mutex<HashMap<String, Window>>,
    by_address: Mutex<HashMap<IpAddr, Window>>,
}

impl FailedAttempts {
    pub fn new(limits: AttemptLimits) -> FailedAttempts {
        FailedAttempts {
            limits,
            by_user: Mutex::new(HashMap::new()),
            by_address: Mutex::new(HashMap::new()),
        }
    }

    /// Admit a password attempt for `user` from `source` and count it as a failure until
    /// [`FailedAttempts::succeeded`] says otherwise; `Err(retry after)` (and nothing counted)
    /// when the name or the address used up its failures for now.
    pub fn admit(&self, user: &str, source: Source, now: Instant) -> Result<(), Duration> {
        let window = self.limits.window;
        // Both locks at once (always name, then address), so concurrent attempts cannot
        // all pass the check before any is counted.
        let mut by_user = self.by_user.lock();
        let mut by_address = self.by_address.lock();
        let user_wait = locked_for(&by_user, user, self.limits.per_user, window, now);
        let address_wait = source.and_then(|address| {
            locked_for(&by_address, &address, self.limits.per_address, window, now)
        });
        if let Some(wait) = user_wait.max(address_wait) {
            return Err(wait);
        }
        count(&mut by_user, user.to_owned(), window, now);
        if let Some(address) = source {
            count(&mut by_address, address, window, now);
        }
        Ok(())
    }

    /// The admitted attempt for `user` from `source` had the right password: the name's
    /// count starts over, and the address gets this attempt back.
    pub fn succeeded(&self, user: &str, source: Source) {
        self.by_user.lock().remove(user);
        if let Some(address) = source {
            if let Some(entry) = self.by_address.lock().get_mut(&address) {
                entry.failures = entry.failures.saturating_sub(1);
            }
        }
    }
}

/// How long `key` is still refused, if it has `max` failures in a window not over yet.
fn locked_for<K, Q>(
    map: &HashMap<K, Window>,
    key: &Q,
    max: u32,
    window: Duration,
    now: Instant,
) -> Option<Duration>
where
    K: Eq + Hash + std::borrow::Borrow<Q>,
    Q: Eq + Hash + ?Sized,
{
    let entry = map.get(key)?;
    let ends = entry.started + window;
    (entry.failures >= max && now < ends).then(|| ends - now)
}

fn count<K: Eq + Hash>(map: &mut HashMap<K, Window>, key: K, window: Duration, now: Instant) {
    if map.len() >= AUTH_FAILURE_KEYS_MAX && !map.contains_key(&key) {
        map.retain(|_, entry| now < entry.started + window);
        if map.len() >= AUTH_FAILURE_KEYS_MAX {
            map.clear();
        }
    }
    let entry = map.entry(key).or_insert(Window {
        started: now,
        failures: 0,
    });
    if now >= entry.started + window {
        *entry = Window {
            started: now,
            failures: 0,
        };
    }
    entry.failures = entry.failures.saturating_add(1);
}

/// Whole seconds to wait, rounded up (what `Retry-After` and the messages say).
pub fn retry_after_s(wait: Duration) -> u64 {
    let seconds = wait.as_secs();
    match wait.subsec_nanos() {
        0 => seconds.max(1),
        _ => seconds + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AttemptLimits {
        AttemptLimits {
            per_user: 3,
            per_address: 5,
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_name_is_refused_after_its_failures_until_the_window_ends() {
        let attempts = FailedAttempts::new(limits());
        let start = Instant::now();
        for n in 0..3 {
            assert!(attempts.admit("carol", None, start).is_ok(), "attempt {n}");
        }
        let later = start + Duration::from_secs(20);
        assert_eq!(
            attempts.admit("carol", None, later),
            Err(Duration::from_secs(40))
        );
        assert!(attempts.admit("dave", None, later).is_ok(), "another name");
        let over = start + Duration::from_secs(60);
        assert!(attempts.admit("carol", None, over).is_ok(), "a new window");
        assert!(attempts.admit("carol", None, over).is_ok());
    }

    #[test]
    fn an_address_is_refused_across_names_and_success_resets_only_the_name() {
        let attempts = FailedAttempts::new(limits());
        let now = Instant::now();
        let address = Some(IpAddr::from([10, 0, 0, 7]));
        let other = Some(IpAddr::from([10, 0, 0, 8]));
        for n in 0..5 {
            assert!(attempts.admit(&format!("user{n}"), address, now).is_ok());
        }
        assert!(attempts.admit("fresh", address, now).is_err());
        assert!(attempts.admit("fresh", other, now).is_ok());
        assert!(attempts.admit("erin", other, now).is_ok());
        assert!(attempts.admit("erin", other, now).is_ok());
        attempts.succeeded("erin", other);
        assert!(attempts.admit("erin", other, now).is_ok());
        assert!(attempts.admit("erin", other, now).is_ok());
        assert!(
            attempts.admit("erin", other, now).is_ok(),
            "count started over"
        );
        // Successes give their attempt back to the address: logging in often is fine.
        let third = Some(IpAddr::from([10, 0, 0, 9]));
        for _ in 0..20 {
            assert!(attempts.admit("frank", third, now).is_ok());
            attempts.succeeded("frank", third);
        }
    }

    #[test]
    fn stays_bounded() {
        let attempts = FailedAttempts::new(limits());
        let now = Instant::now();
        for n in 0..AUTH_FAILURE_KEYS_MAX + 10 {
            let _ = attempts.admit(&format!("u{n}"), None, now);
        }
        assert!(attempts.by_user.lock().len() <= AUTH_FAILURE_KEYS_MAX);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_s(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_s(Duration::from_millis(40_000)), 40);
        assert_eq!(retry_after_s(Duration::from_millis(40_001)), 41);
    }
}
