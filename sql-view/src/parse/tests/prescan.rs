//! The raw-text pre-scan (`prescan.rs`) against sqlparser's tokenizer: on random texts it
//! refuses exactly what the same checks over sqlparser's tokens refuse, and never counts
//! fewer tokens; at the named limits, texts just under them parse and texts just over them
//! are refused before any parsing.

use proptest::prelude::*;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::super::prescan::{check_tokens, prescan, scan, Bounds};
use super::*;
use crate::error::code;
use crate::limits;

/// The pre-scan's checks, done over sqlparser's tokens instead of the raw text: the message
/// of the first refusal (or `Ok` with the count of significant tokens).
fn reference(sql: &str, bounds: &Bounds) -> Option<Result<usize, String>> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .with_unescape(true)
        .tokenize()
        .ok()?;
    let mut lists: Vec<(&str, usize, usize)> = vec![("items in one list", bounds.list_items, 1)];
    let (mut depth, mut count) = (0i64, 0usize);
    let (mut after_in, mut statement_start) = (false, true);
    for token in tokens {
        let mut is_in = false;
        match &token {
            Token::Whitespace(_) => continue,
            Token::LParen | Token::LBracket => {
                depth += 1;
                if depth > 0 {
                    if depth as usize > bounds.depth {
                        return Some(Err("parenthesis nesting depth".into()));
                    }
                    let kind = if after_in {
                        ("IN list length", bounds.in_list, 1)
                    } else {
                        ("items in one list", bounds.list_items, 1)
                    };
                    lists.truncate(depth as usize);
                    lists.push(kind);
                }
            }
            Token::RParen | Token::RBracket => depth -= 1,
            Token::Comma => {
                let list = &mut lists[depth.max(0) as usize];
                list.2 += 1;
                if list.2 > list.1 {
                    return Some(Err(list.0.into()));
                }
            }
            Token::SemiColon if depth <= 0 => {
                depth = 0;
                lists.truncate(1);
                lists[0] = ("items in one list", bounds.list_items, 1);
                count += 1;
                statement_start = true;
                after_in = false;
                continue;
            }
            Token::Word(word) if word.quote_style.is_none() => {
                is_in = word.keyword == Keyword::IN;
                if statement_start && depth == 0 && word.keyword == Keyword::INSERT {
                    lists[0] = ("rows per INSERT", bounds.insert_rows, 1);
                }
            }
            _ => {}
        }
        statement_start = false;
        after_in = is_in;
        count += 1;
    }
    Some(Ok(count))
}

/// Pieces of SQL, each one token for sqlparser and for the pre-scan alike, including the
/// forms that hide a `(`, `,` or `;` (strings, quoted names, comments).
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        &[
            "(",
            "(",
            "(",
            ")",
            ")",
            ")",
            ",",
            ",",
            ",",
            ",",
            ";",
            "[",
            "]",
            "IN",
            "in",
            "INSERT",
            "insert",
            "SELECT",
            "a",
            "x1",
            "é",
            "_b$",
            "1",
            "42",
            "1.5",
            ".5",
            "1e5",
            "2E-3",
            "'a,b'",
            "'it''s (,'",
            "E'x\\'(,;'",
            "e'\\\\'",
            "$$a,(;$$",
            "$t$ ; ( $$ $t$",
            "\"a,(\"",
            "\"x\"\"(;\"",
            "$1",
            "$12",
            "+",
            "*",
            "=",
            "<",
            "-",
            "/",
            "-- c,(;\n",
            "/* a /* ( */ , ; */",
            "\n",
            "\t",
        ][..],
    )
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..60).prop_map(|pieces| pieces.join(" "))
}

fn small() -> impl Strategy<Value = Bounds> {
    (1usize..6, 1usize..6, 1usize..6, 1usize..6, 1usize..80).prop_map(
        |(list_items, in_list, insert_rows, depth, tokens)| Bounds {
            list_items,
            in_list,
            insert_rows,
            depth,
            tokens,
        },
    )
}

fn outcome(sql: &str, bounds: &Bounds) -> Result<usize, String> {
    match scan(sql, bounds) {
        Ok(counts) => Ok(counts.tokens),
        Err(error) => Err(error
            .message
            .split(" exceeds")
            .next()
            .unwrap_or("")
            .to_owned()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn prescan_agrees_with_sqlparsers_tokens(sql in text(), bounds in small()) {
        let Some(expected) = reference(&sql, &bounds) else {
            return Ok(());
        };
        let got = outcome(&sql, &bounds);
        prop_assert_eq!(&got, &expected, "{:?}", sql);
        if let Ok(tokens) = got {
            let counts = scan(&sql, &bounds).unwrap();
            let refused = check_tokens(&sql, counts, &bounds).is_err();
            prop_assert_eq!(refused, tokens > bounds.tokens, "{:?}", sql);
        }
    }

    #[test]
    fn prescan_never_panics(sql in ".{0,200}") {
        let _ = prescan(&sql);
    }
}

#[test]
fn operators_of_several_characters_count_at_least_as_much_as_sqlparser() {
    let bounds = Bounds::LIMITS;
    for sql in [
        "a >= 1",
        "a::int",
        "a || 'b'",
        "x <> y AND y != z",
        "0x1F",
        "1abc",
        "U&'x'",
    ] {
        let counts = prescan(sql).unwrap();
        let Some(Ok(expected)) = reference(sql, &bounds) else {
            panic!("{sql}");
        };
        assert!(
            counts.tokens >= expected,
            "{sql}: {} < {expected}",
            counts.tokens
        );
    }
}

fn in_list(items: usize) -> String {
    let list = vec!["1"; items].join(",");
    format!("SELECT * FROM app.t WHERE a IN ({list})")
}

#[test]
fn lists_up_to_their_limits_parse_and_longer_ones_are_refused_before_parsing() {
    assert!(parse_statement(&in_list(limits::IN_LIST_LEN_MAX)).is_ok());
    let refused = error(&in_list(limits::IN_LIST_LEN_MAX + 1));
    assert_eq!(refused.code, code::LIMIT_EXCEEDED);
    assert!(refused.message.starts_with("IN list length"), "{refused}");
    // The 10,001st value, as the parsed check points.
    let column = "SELECT * FROM app.t WHERE a IN (".len() + 2 * limits::IN_LIST_LEN_MAX + 1;
    assert_eq!(refused.position, at(1, column as u64));
    // Refused by the pre-scan itself, not after parsing.
    assert!(prescan(&in_list(limits::IN_LIST_LEN_MAX + 1)).is_err());

    // Not literal (`-a`), so the general path: 4 tokens a row, under the token limit.
    let rows = |n: usize| format!("INSERT INTO app.t VALUES {}", vec!["(-a)"; n].join(", "));
    assert!(parse_statement(&rows(limits::ROWS_PER_INSERT_MAX)).is_ok());
    let refused = error(&rows(limits::ROWS_PER_INSERT_MAX + 1));
    assert!(refused.message.starts_with("rows per INSERT"), "{refused}");
    assert!(prescan(&rows(limits::ROWS_PER_INSERT_MAX + 1)).is_err());

    let function = format!("SELECT f({}) FROM app.t", vec!["1"; 200_000].join(","));
    assert!(error(&function).message.starts_with("items in one list"));
}

#[test]
fn nesting_up_to_its_limit_passes_the_prescan_and_deeper_is_refused() {
    let nested = |depth: usize| {
        format!(
            "SELECT * FROM app.t WHERE a = {}1{}",
            "(".repeat(depth),
            ")".repeat(depth)
        )
    };
    assert!(prescan(&nested(limits::NESTING_DEPTH_MAX)).is_ok());
    let refused = prescan(&nested(limits::NESTING_DEPTH_MAX + 1)).unwrap_err();
    assert_eq!(refused.code, code::LIMIT_EXCEEDED);
    let column = "SELECT * FROM app.t WHERE a = ".len() + limits::NESTING_DEPTH_MAX + 1;
    assert_eq!(refused.position, at(1, column as u64));
    assert_eq!(error(&nested(200_000)).code, code::LIMIT_EXCEEDED);
    // Nothing the parser takes is nested that deep: 40 levels parse, the limit's do not.
    assert!(parse_statement(&nested(40)).is_ok());
    assert_eq!(
        error(&nested(limits::NESTING_DEPTH_MAX)).code,
        code::LIMIT_EXCEEDED
    );
}

#[test]
fn the_general_path_takes_at_most_its_token_limit_and_the_fast_path_more() {
    // `a = 1 OR ` is 4 tokens; the rest of the text 8.
    let ors = |n: usize| {
        let chain = vec!["a = 1"; n].join(" OR ");
        format!("SELECT * FROM app.t WHERE ({chain})")
    };
    let tokens = |sql: &str| prescan(sql).unwrap().tokens;
    let mut n = (limits::SQL_TOKENS_MAX - 8) / 4;
    while tokens(&ors(n + 1)) <= limits::SQL_TOKENS_MAX {
        n += 1;
    }
    // Chains of OR are split by parentheses so no chain is longer than its own limit.
    let split = |n: usize| {
        let groups: Vec<String> = (0..n)
            .collect::<Vec<_>>()
            .chunks(1000)
            .map(|chunk| format!("({})", vec!["a = 1"; chunk.len()].join(" OR ")))
            .collect();
        format!("SELECT * FROM app.t WHERE {}", groups.join(" AND "))
    };
    let mut m = n;
    while tokens(&split(m)) > limits::SQL_TOKENS_MAX {
        m -= 1;
    }
    assert!(parse_statement(&split(m)).is_ok());
    let mut over = m;
    while tokens(&split(over)) <= limits::SQL_TOKENS_MAX {
        over += 1;
    }
    let refused = error(&split(over));
    assert!(
        refused.message.starts_with("tokens in one request"),
        "{refused}"
    );
    // A literal INSERT takes the fast path, which does not build sqlparser's tokens.
    let row = "(1, 'a', 2, 'b', 3, 'c', 4)";
    let insert = format!(
        "INSERT INTO app.t VALUES {}",
        vec![row; limits::ROWS_PER_INSERT_MAX].join(", ")
    );
    assert!(tokens(&insert) > limits::SQL_TOKENS_MAX);
    assert!(parse_statement(&insert).is_ok());
}

#[test]
fn strings_names_and_comments_hide_lists_and_nesting() {
    let hidden = [
        format!("SELECT '{}' FROM app.t", "(,".repeat(20_000)),
        format!("SELECT E'\\'{}' FROM app.t", "(,".repeat(20_000)),
        format!("SELECT $$ {} $$ FROM app.t", "(,".repeat(20_000)),
        format!("SELECT $q$ $$ {} $q$ FROM app.t", "(,".repeat(20_000)),
        format!("SELECT \"a\"\"{}\" FROM app.t", "(,".repeat(20)),
        format!("SELECT 1 -- {}\nFROM app.t", "(,".repeat(20_000)),
        format!("SELECT 1 /* /* */ {} */ FROM app.t", "(,".repeat(20_000)),
    ];
    for sql in &hidden {
        let counts = prescan(sql).unwrap_or_else(|e| panic!("{sql:.60}: {e}"));
        assert!(counts.tokens < 10, "{sql:.60}: {counts:?}");
    }
}
