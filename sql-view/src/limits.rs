//! Named bounds of the SQL layer, unit last. Text, statements, expressions and rows that a
//! client sends are checked against these before any work grows with them.

/// Largest SQL text of one request (all its statements together), in bytes.
pub const SQL_TEXT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest text of one statement, in bytes.
pub const STATEMENT_BYTES_MAX: usize = 1024 * 1024;
/// Most statements in one request (separated by `;`).
pub const STATEMENTS_PER_REQUEST_MAX: usize = 256;
/// Most operators in one chain: at one parenthesis depth, between two commas. sqlparser
/// builds such a chain (`a + b + c ...`, `x OR y OR ...`) as a left-deep tree without counting
/// recursion, and dropping a tree tens of thousands deep overflows a thread's stack; this
/// bound keeps every tree shallow enough, whatever the statement size.
pub const OPERATOR_CHAIN_LEN_MAX: usize = 4096;
/// Deepest nesting of a parsed expression (chains of AND / OR count as one level).
pub const EXPRESSION_DEPTH_MAX: usize = 64;
/// Most rows of one INSERT.
pub const ROWS_PER_INSERT_MAX: usize = 10_000;
/// Most values of one `IN (...)` list.
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
/// Most columns of one table (and fields of one stored row).
pub const COLUMNS_PER_TABLE_MAX: usize = 1024;
/// Most items in one SELECT list after `*` is expanded.
pub const PROJECTION_ITEMS_MAX: usize = 1024;
/// Most ORDER BY keys.
pub const ORDER_BY_KEYS_MAX: usize = 32;
/// Highest parameter number `$n`.
pub const PARAMETERS_MAX: usize = 65_535;
/// Longest identifier (namespace, table, column, topic), in bytes.
pub const NAME_BYTES_MAX: usize = 63;
/// Longest user name, in bytes.
pub const USER_NAME_BYTES_MAX: usize = 128;
/// Longest password, in bytes.
pub const PASSWORD_BYTES_MAX: usize = 1024;
/// Largest `TTL_SECONDS` of a STREAM table (ten years).
pub const TTL_SECONDS_MAX: u64 = 10 * 365 * 24 * 3600;
/// Most partitions of one topic.
pub const TOPIC_PARTITIONS_MAX: u32 = 1024;
