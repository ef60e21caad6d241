//! The refusal throttle: a user whose requests keep being refused for exceeding a limit
//! (`limit_exceeded`: an oversized SQL text, the group cap) is slowed down, so that a flood of
//! requests the server will refuse anyway cannot take the cores other users' requests need.
//!
//! Refusals are counted per user with a generic cell rate algorithm (one instant per user,
//! the "theoretical arrival time"): a user may be refused [`REFUSALS_BURST`] times at once and
//! [`REFUSALS_PER_SECOND`] times a second after that. Past it the user is *penalized*: each
//! of their later requests is admitted only after a wait that spaces them
//! [`REFUSAL_INTERVAL`] apart, before its body or frame is read, so a waiting request costs a
//! parked task and nothing else. Like Kafka's request quotas the answer is delayed, not
//! refused: a client that stops breaking limits is back to full speed within
//! [`REFUSALS_BURST`] intervals. A request that would wait longer than
//! [`REFUSAL_WAIT_MAX`] waits that long and is then answered `overloaded` unserved.
//!
//! While nobody is penalized a request costs one atomic load; the map is locked only while
//! someone is penalized or being refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use strand_sql_view::UserName;

use parking_lot::Mutex;

use crate::limits::{
    REFUSALS_BURST, REFUSALS_PER_SECOND, REFUSAL_WAIT_MS_MAX, THROTTLE_TRACKED_USERS_MAX,
};

/// The spacing of a penalized user's requests.
pub const REFUSAL_INTERVAL: Duration =
    Duration::from_nanos(1_000_000_000 / REFUSALS_PER_SECOND as u64);
/// The longest a penalized user's request waits for its turn ([`REFUSAL_WAIT_MS_MAX`]).
pub const REFUSAL_WAIT_MAX: Duration = Duration::from_millis(REFUSAL_WAIT_MS_MAX);

/// What a request of a user may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go on at once.
    Now,
    /// Go on after waiting this long.
    After(Duration),
    /// Wait this long, then answer `overloaded` without serving the request.
    RefuseAfter(Duration),
}

/// See the module documentation.
pub struct RefusalThrottle {
    /// Per user, the instant their refusal count is paid off ("theoretical arrival time").
    users: Mutex<HashMap<UserName, Instant>>,
    /// What `horizon` counts from.
    epoch: Instant,
    /// The latest instant in `users`, in nanoseconds from `epoch`: while it is less than
    /// one burst ahead of now nobody is penalized, and [`RefusalThrottle::admit`] returns
    /// without taking the lock.
    horizon: AtomicU64,
    /// Requests held (or refused after the longest wait) so far, for `/metrics`.
    held: AtomicU64,
}

impl Default for RefusalThrottle {
    fn default() -> Self {
        RefusalThrottle::new()
    }
}

impl RefusalThrottle {
    pub fn new() -> RefusalThrottle {
        RefusalThrottle {
            users: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            horizon: AtomicU64::new(0),
            held: AtomicU64::new(0),
        }
    }

    /// Whether some user is penalized now: when not, [`RefusalThrottle::admit`] is
    /// [`Admission::Now`] for everyone, and callers may skip finding out who is asking.
    pub fn anyone_penalized(&self) -> bool {
        let now = Instant::now() + REFUSAL_INTERVAL * REFUSALS_BURST;
        self.horizon.load(Ordering::Acquire) > self.nanos_since_epoch(now)
    }

    /// Whether `user`'s next request may go on now, and if not, how long it waits. A wait
    /// reserves the user's next slot, so waiting requests go on one interval apart.
    pub fn admit(&self, user: &UserName) -> Admission {
        self.admit_at(user, Instant::now())
    }

    /// Requests held so far, those refused after the longest wait among them.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Count a request of `user` refused for exceeding a limit.
    pub fn refused(&self, user: &UserName) {
        self.refused_at(user, Instant::now());
    }

    fn admit_at(&self, user: &UserName, now: Instant) -> Admission {
        let tolerance = REFUSAL_INTERVAL * REFUSALS_BURST;
        let since_epoch = self.nanos_since_epoch(now + tolerance);
        if self.horizon.load(Ordering::Acquire) <= since_epoch {
            return Admission::Now;
        }
        let mut users = self.users.lock();
        let Some(paid_off) = users.get_mut(user) else {
            return Admission::Now;
        };
        let Some(turn) = paid_off.checked_sub(tolerance).filter(|turn| *turn > now) else {
            return Admission::Now;
        };
        let wait = turn - now;
        self.held.fetch_add(1, Ordering::Relaxed);
        if wait > REFUSAL_WAIT_MAX {
            return Admission::RefuseAfter(REFUSAL_WAIT_MAX);
        }
        *paid_off += REFUSAL_INTERVAL;
        self.raise_horizon(*paid_off);
        Admission::After(wait)
    }

    fn refused_at(&self, user: &UserName, now: Instant) {
        let mut users = self.users.lock();
        if users.len() >= THROTTLE_TRACKED_USERS_MAX && !users.contains_key(user) {
            users.retain(|_, paid_off| *paid_off > now);
            if users.len() >= THROTTLE_TRACKED_USERS_MAX {
                return;
            }
        }
        let paid_off = users.entry(user.clone()).or_insert(now);
        *paid_off = (*paid_off).max(now) + REFUSAL_INTERVAL;
        self.raise_horizon(*paid_off);
    }

    fn raise_horizon(&self, instant: Instant) {
        self.horizon
            .fetch_max(self.nanos_since_epoch(instant), Ordering::AcqRel);
    }

    fn nanos_since_epoch(&self, instant: Instant) -> u64 {
        let nanos = instant.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserName {
        UserName::new(name).expect("a valid name")
    }

    #[test]
    fn a_user_never_refused_goes_on_at_once() {
        let throttle = RefusalThrottle::new();
        let now = Instant::now();
        assert_eq!(throttle.admit_at(&user("alice"), now), Admission::Now);
        for _ in 0..1_000 {
            throttle.refused_at(&user("mallory"), now);
        }
        assert_eq!(throttle.admit_at(&user("alice"), now), Admission::Now);
    }

    #[test]
    fn the_burst_is_free_and_the_next_refusals_space_requests_out() {
        let throttle = RefusalThrottle::new();
        let mallory = user("mallory");
        let now = Instant::now();
        for _ in 0..REFUSALS_BURST {
            throttle.refused_at(&mallory, now);
        }
        assert_eq!(throttle.admit_at(&mallory, now), Admission::Now);
        throttle.refused_at(&mallory, now);
        // One refusal past the burst: one interval to wait, and each waiting request
        // reserves the next slot.
        for n in 1..=5u32 {
            let expected = Admission::After(REFUSAL_INTERVAL * n);
            assert_eq!(throttle.admit_at(&mallory, now), expected);
        }
    }

    #[test]
    fn the_penalty_ends_when_the_refusals_stop() {
        let throttle = RefusalThrottle::new();
        let mallory = user("mallory");
        let now = Instant::now();
        for _ in 0..REFUSALS_BURST * 3 {
            throttle.refused_at(&mallory, now);
        }
        assert!(matches!(
            throttle.admit_at(&mallory, now),
            Admission::After(_)
        ));
        let later = now + REFUSAL_INTERVAL * (REFUSALS_BURST * 3 + 1);
        assert_eq!(throttle.admit_at(&mallory, later), Admission::Now);
    }

    #[test]
    fn a_turn_beyond_the_longest_wait_is_refused_after_it() {
        let throttle = RefusalThrottle::new();
        let mallory = user("mallory");
        let now = Instant::now();
        let refusals = REFUSALS_BURST + 1 + (REFUSAL_WAIT_MAX.as_millis() as u32 / 100) * 2;
        for _ in 0..refusals {
            throttle.refused_at(&mallory, now);
        }
        assert_eq!(
            throttle.admit_at(&mallory, now),
            Admission::RefuseAfter(REFUSAL_WAIT_MAX)
        );
    }

    #[test]
    fn past_the_tracked_users_only_the_penalized_are_kept() {
        let throttle = RefusalThrottle::new();
        let now = Instant::now();
        for n in 0..THROTTLE_TRACKED_USERS_MAX {
            throttle.refused_at(&user(&format!("u{n}")), now);
        }
        let later = now + REFUSAL_INTERVAL * 2;
        throttle.refused_at(&user("mallory"), later);
        assert_eq!(throttle.users.lock().len(), 1);
    }
}
