//! Named bounds of the SQL layer, unit last, with compile-time checks of how they relate. Text,
//! statements, expressions and rows that a client sends are checked against these before any
//! work grows with them (docs/sql.md, "Limits", lists them for users).

/// Largest SQL text of one request (all its statements together), in bytes: four of the
/// largest statements, so a script of a few big INSERTs goes in one request, while parsing
/// memory stays bounded by [`SQL_TOKENS_MAX`].
pub const SQL_TEXT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest text of one statement, in bytes: an INSERT of [`ROWS_PER_INSERT_MAX`] rows of
/// about 100 bytes each fits.
pub const STATEMENT_BYTES_MAX: usize = 1024 * 1024;
/// Most statements in one request (separated by `;`): a migration script fits, and each
/// statement's work (a catalog change, a write) stays a small multiple of one request's.
pub const STATEMENTS_PER_REQUEST_MAX: usize = 256;
/// Most operators in one chain: at one parenthesis depth, between two commas. sqlparser
/// builds such a chain (`a + b + c ...`, `x OR y OR ...`) as a left-deep tree without counting
/// recursion, and dropping a tree tens of thousands deep overflows a thread's stack; this
/// bound keeps every tree shallow enough, whatever the statement size.
pub const OPERATOR_CHAIN_LEN_MAX: usize = 4096;
/// Deepest nesting of a parsed expression (chains of AND / OR count as one level): compiling
/// and evaluating recurse once per level, and no hand-written filter needs more.
pub const EXPRESSION_DEPTH_MAX: usize = 64;
/// Most rows of one INSERT: a batch large enough to amortise a request, small enough that
/// its encoding and its write stay a few megabytes.
pub const ROWS_PER_INSERT_MAX: usize = 10_000;
/// Most values of one `IN (...)` list: the set of pinned keys a point lookup visits, bounded
/// like an INSERT's rows.
pub const IN_LIST_LEN_MAX: usize = 10_000;
/// Most comma-separated items at one parenthesis level of one statement (an IN list, the
/// rows of an INSERT, a SELECT list with its ORDER BY), counted on the raw text before any
/// parsing (`parse/prescan.rs`): no statement within the other limits has more.
pub const LIST_ITEMS_MAX: usize = 10_000;
/// Deepest nesting of parentheses and brackets, counted on the raw text: nothing deeper
/// parses anyway (sqlparser's recursion limit is 50, [`EXPRESSION_DEPTH_MAX`] 64), and the
/// pre-scan refuses it before a token is built.
pub const NESTING_DEPTH_MAX: usize = 64;
/// Most tokens of one request's text on the general path (sqlparser): it keeps about 120
/// bytes per token and up to about 450 per expression node, so this bounds a request's
/// parsing memory to about 40 MB (a 10,000-value IN list is 20,000 tokens; the literal
/// INSERT fast path does not use sqlparser and is not bound by this).
pub const SQL_TOKENS_MAX: usize = 65_536;
/// Most columns of one table (and fields of one stored row): every row carries one field per
/// column, and a projection or an UPDATE walks them all.
pub const COLUMNS_PER_TABLE_MAX: usize = 1024;
/// Most items in one SELECT list after `*` is expanded: `*` of the widest table, so every
/// projection of one table's columns fits.
pub const PROJECTION_ITEMS_MAX: usize = 1024;
/// Most ORDER BY keys: each is compared per pair of rows while sorting, and real queries use
/// a handful.
pub const ORDER_BY_KEYS_MAX: usize = 32;
/// With ORDER BY and LIMIT, a one-shot query keeps up to twice its window (LIMIT plus
/// OFFSET) of rows, and at least this many, before it sorts and cuts back to the window: the
/// memory stays proportional to the window, and a small window does not sort every few rows.
pub const ORDER_BY_TRIM_ROWS_MIN: usize = 64;
/// Highest parameter number `$n`: PostgreSQL's own bound (its wire protocol counts them in a
/// u16), so a statement written for PostgreSQL numbers its parameters the same way.
pub const PARAMETERS_MAX: usize = 65_535;
/// Longest identifier (namespace, table, column, topic), in bytes: PostgreSQL's 63, and
/// short enough that names, which become file and directory names, stay far below the 255
/// bytes file systems allow.
pub const NAME_BYTES_MAX: usize = 63;
/// Longest user name, in bytes: long enough for an e-mail address or a service's name.
pub const USER_NAME_BYTES_MAX: usize = 128;
/// Longest password, in bytes: argon2 takes any length, and this bounds the work and memory
/// per attempt while allowing long passphrases.
pub const PASSWORD_BYTES_MAX: usize = 1024;
/// Largest `TTL_SECONDS` of a STREAM table (ten years): a longer-lived row belongs in a USER
/// or SHARED table.
pub const TTL_SECONDS_MAX: u64 = 10 * 365 * 24 * 3600;
/// Most partitions of one topic: each is a log partition with its own files and, while
/// written, an open descriptor, and a consumer group's rebalance walks them all.
pub const TOPIC_PARTITIONS_MAX: u32 = 1024;

// One statement fits in one request's text.
const _: () = assert!(STATEMENT_BYTES_MAX <= SQL_TEXT_BYTES_MAX);
// The pre-scan's bound on any list refuses nothing the specific bounds allow: the largest IN
// list, INSERT, column list of a CREATE TABLE and SELECT list all pass it.
const _: () = assert!(IN_LIST_LEN_MAX <= LIST_ITEMS_MAX);
const _: () = assert!(ROWS_PER_INSERT_MAX <= LIST_ITEMS_MAX);
const _: () = assert!(COLUMNS_PER_TABLE_MAX <= LIST_ITEMS_MAX);
const _: () = assert!(PROJECTION_ITEMS_MAX + ORDER_BY_KEYS_MAX <= LIST_ITEMS_MAX);
// `SELECT *` of the widest table is a valid projection.
const _: () = assert!(COLUMNS_PER_TABLE_MAX <= PROJECTION_ITEMS_MAX);
// The raw-text nesting bound is at least the parsed expression depth.
const _: () = assert!(EXPRESSION_DEPTH_MAX <= NESTING_DEPTH_MAX);
// The largest IN list (a value and a comma per item, plus the statement around it) passes
// the token bound.
const _: () = assert!(2 * IN_LIST_LEN_MAX + 64 <= SQL_TOKENS_MAX);
// A chain of operators within the token bound is possible, so both bounds matter.
const _: () = assert!(OPERATOR_CHAIN_LEN_MAX <= SQL_TOKENS_MAX);
// `$n` parameter numbers are PostgreSQL's u16.
const _: () = assert!(PARAMETERS_MAX <= u16::MAX as usize);
// A `namespace.table` name (two names and a dot) fits a file name's 255 bytes.
const _: () = assert!(2 * NAME_BYTES_MAX < 255);
// A TTL in milliseconds (expiry and retention compare ages in ms) is exact even as a
// TIMESTAMP's microseconds.
const _: () = assert!(TTL_SECONDS_MAX <= i64::MAX as u64 / 1_000_000);

/// Most groups one GROUP BY / DISTINCT query may hold while it reads the table (each holds its
/// key and its aggregates' state).
pub const GROUPS_MAX: usize = 1_000_000;

/// Tables in one SELECT's FROM, the first included (`a JOIN b JOIN c ...`). Each joined table
/// is read whole into memory for the join; a long chain is a query to restructure.
pub const JOIN_TABLES_MAX: usize = 8;

/// Rows read from the tables after the first of a join (its build side, held in memory as
/// hash tables keyed by the ON equalities): put the large table first in FROM.
pub const JOIN_BUILD_ROWS_MAX: usize = 2_000_000;

/// Rows a live join subscription holds, both sides together (its first table's rows that may
/// show, and its lookup tables' rows): each subscription keeps its own copy.
pub const LIVE_JOIN_ROWS_MAX: usize = 200_000;
