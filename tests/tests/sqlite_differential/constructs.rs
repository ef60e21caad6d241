//! What the generator produces, as a list of constructs: [`SUPPORTED`] holds what Strand runs
//! today, [`NOT_YET`] what it refuses (docs/sql.md) and others will add.
//!
//! To test a new construct: add its variant (or take it from `NOT_YET`), its generator at the
//! marked EXTENSION POINT (`gen.rs`, `func.rs`, `cond.rs`, `query.rs`, `group.rs`), its
//! spelling in both dialects (`expr.rs`), and put it in `SUPPORTED`.
//! `STRAND_DIFF_SKIP=Like,Cast` leaves constructs out of a run (to narrow a mismatch down).

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Construct {
    // expressions
    Column,
    QualifiedColumn,
    Literal,
    NullLiteral,
    Parameter,
    Negate,
    UnaryPlus,
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
    Concat,
    Cast,
    Parens,
    // conditions
    Compare,
    Not,
    And,
    Or,
    InList,
    Between,
    Like,
    IsNull,
    BoolLeaf,
    /// `pk = c` / `pk IN (...)`: the server answers these with point lookups.
    KeyLookup,
    // query
    Star,
    TableAlias,
    Where,
    OrderBy,
    OrderByPosition,
    OrderByName,
    NullsFirstLast,
    Limit,
    Offset,
    // functions, CASE (`func.rs`), ILIKE (`cond.rs`)
    Lower,
    Upper,
    Length,
    Substring,
    Coalesce,
    NullIf,
    Abs,
    Round,
    CaseWhen,
    ILike,
    // grouping queries (`group.rs`)
    Distinct,
    GroupBy,
    Aggregates,
    Having,
    // joins (`join.rs`)
    /// `[INNER] JOIN ... ON` of two or three tables.
    Join,
    /// `LEFT [OUTER] JOIN` among them.
    LeftJoin,
    // Not yet supported by Strand (docs/sql.md, "SELECT": refused with `unsupported`).
    // EXTENSION POINT: generate them once Strand runs them.
}

/// What Strand supports today, so what the generator produces.
pub const SUPPORTED: &[Construct] = &[
    Construct::Column,
    Construct::QualifiedColumn,
    Construct::Literal,
    Construct::NullLiteral,
    Construct::Parameter,
    Construct::Negate,
    Construct::UnaryPlus,
    Construct::Add,
    Construct::Subtract,
    Construct::Multiply,
    Construct::Divide,
    Construct::Remainder,
    Construct::Concat,
    Construct::Cast,
    Construct::Parens,
    Construct::Compare,
    Construct::Not,
    Construct::And,
    Construct::Or,
    Construct::InList,
    Construct::Between,
    Construct::Like,
    Construct::IsNull,
    Construct::BoolLeaf,
    Construct::KeyLookup,
    Construct::Star,
    Construct::TableAlias,
    Construct::Where,
    Construct::OrderBy,
    Construct::OrderByPosition,
    Construct::OrderByName,
    Construct::NullsFirstLast,
    Construct::Limit,
    Construct::Offset,
    Construct::Lower,
    Construct::Upper,
    Construct::Length,
    Construct::Substring,
    Construct::Coalesce,
    Construct::NullIf,
    Construct::Abs,
    Construct::Round,
    Construct::CaseWhen,
    Construct::ILike,
    Construct::Distinct,
    Construct::GroupBy,
    Construct::Aggregates,
    Construct::Having,
    Construct::Join,
    Construct::LeftJoin,
];

/// What Strand refuses today (docs/sql.md): the next constructs to add to the generator.
pub const NOT_YET: &[Construct] = &[];

/// Whether the generator may produce `construct` in this run.
pub fn enabled(construct: Construct) -> bool {
    static SKIPPED: OnceLock<Vec<String>> = OnceLock::new();
    let skipped = SKIPPED.get_or_init(|| {
        let text = std::env::var("STRAND_DIFF_SKIP").unwrap_or_default();
        text.split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .collect()
    });
    SUPPORTED.contains(&construct)
        && !skipped.contains(&format!("{construct:?}").to_ascii_lowercase())
}
