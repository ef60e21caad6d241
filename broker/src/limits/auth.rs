//! Named bounds of authentication: passwords, the token key and lifetimes, the Basic
//! credential cache, and failed-login limits (re-exported from [`crate::limits`]).

/// Length of the generated `admin` password (letters and digits: ~143 bits).
pub const GENERATED_PASSWORD_CHARS: usize = 24;
/// Bytes of the JWT signing secret (HS256 wants at least the hash size, 32).
pub const JWT_SECRET_BYTES: usize = 32;
/// Bytes of random salt per password hash (argon2's recommended 16).
pub const PASSWORD_SALT_BYTES: usize = 16;
/// Default lifetime of a token issued by `/v1/api/auth/login`.
pub const TOKEN_TTL_SECONDS_DEFAULT: u64 = 24 * 60 * 60;
/// Longest token lifetime a config may ask for (30 days).
pub const TOKEN_TTL_SECONDS_MAX: u64 = 30 * 24 * 60 * 60;
/// How far in the future a token's `iat` may be (clock skew between the issuing moment and
/// now, e.g. after a small NTP step back). A token issued while the clock was further ahead
/// is refused once the clock is right.
pub const TOKEN_IAT_FUTURE_SKEW_S_MAX: u64 = 300;
/// Longest a verified Basic credential is trusted without another argon2 verification.
pub const BASIC_AUTH_CACHE_TTL_MS: u64 = 60_000;
/// Most verified Basic credentials remembered at once (the cache starts over past this).
pub const BASIC_AUTH_CACHE_ENTRIES_MAX: usize = 10_000;

/// Failed password checks one user name may have within the window before further attempts
/// for it are refused (`too_many_attempts`) without an argon2 verification: slows online
/// guessing of one account to this many guesses per window.
pub const AUTH_FAILURES_PER_USER_MAX_DEFAULT: u32 = 10;
/// Failed password checks one source address may have within the window (across names):
/// higher than per user, since many people may share an address (NAT).
pub const AUTH_FAILURES_PER_ADDRESS_MAX_DEFAULT: u32 = 50;
/// Most failures a config may allow per name or address in one window.
pub const AUTH_FAILURES_MAX: u32 = 1_000_000;
/// The window of both failure counts: it starts at a name's (or address's) first failure.
pub const AUTH_FAILURE_WINDOW_MS_DEFAULT: u64 = 60_000;
/// Longest failure window a config may ask for (a day).
pub const AUTH_FAILURE_WINDOW_MS_MAX: u64 = 86_400_000;
/// Most user names (and, separately, addresses) whose failures are remembered at once:
/// bounds the limiter's memory (about 100 bytes each).
pub const AUTH_FAILURE_KEYS_MAX: usize = 100_000;
