//! A table change as a topic message: its key and its JSON envelope (the format is documented
//! in `source.rs` and docs/topics.md, "Table sources").

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value as Json;
use strand_log::Seq;
use strand_sql_view::{seq_json, RowView, TableDef, ValueRef, SEQ_COLUMN};

use crate::catalog::TopicSource;
use crate::realtime::{ChangeKind, VersionPair};

pub(super) fn wants(source: &TopicSource, kind: ChangeKind) -> bool {
    match kind {
        ChangeKind::Insert => source.on_insert,
        ChangeKind::Update => source.on_update,
        ChangeKind::Delete => source.on_delete,
    }
}

fn change_type(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Insert => "insert",
        ChangeKind::Update => "update",
        ChangeKind::Delete => "delete",
    }
}

/// The value of a message: its fields serialize in this order.
#[derive(serde::Serialize)]
struct Envelope<'a> {
    #[serde(rename = "_seq")]
    seq: String,
    change_type: &'static str,
    table: String,
    owner: Option<&'a str>,
    row: RowJson<'a>,
}

/// A row version as a JSON object: its columns in table order, then its `_seq` (as text).
struct RowJson<'a> {
    def: &'a TableDef,
    row: &'a RowView<'a>,
    seq: Seq,
}

impl Serialize for RowJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let columns = self.def.columns();
        let mut map = serializer.serialize_map(Some(columns.len() + 1))?;
        for (index, column) in columns.iter().enumerate() {
            let value = self.row.field(index).to_json();
            map.serialize_entry(column.name.as_str(), &value)?;
        }
        map.serialize_entry(SEQ_COLUMN, &seq_json(self.seq.0))?;
        map.end()
    }
}

/// The key and value of the message for one change of a row owned by `owner` (`None` in a
/// SHARED table). `None` when the change has no row version to show (never for a change
/// `classify` returned).
pub(super) fn message(
    def: &TableDef,
    owner: Option<&str>,
    pair: &VersionPair<'_>,
    kind: ChangeKind,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let version = match kind {
        ChangeKind::Insert | ChangeKind::Update => pair.new.as_ref(),
        ChangeKind::Delete => pair.old.as_ref(),
    }?;
    let key = match def.primary_key() {
        Some(pk) => key(owner, version.row.field(pk)),
        None => String::new(),
    };
    let envelope = Envelope {
        seq: pair.seq.0.to_string(),
        change_type: change_type(kind),
        table: def.name().to_string(),
        owner,
        row: RowJson {
            def,
            row: &version.row,
            seq: version.seq,
        },
    };
    // Serializing strings, numbers and JSON values into memory cannot fail.
    let value = serde_json::to_vec(&envelope).ok()?;
    Some((key.into_bytes(), value))
}

/// The key of a row with primary key `pk`: for an owned row (USER and STREAM tables) the JSON
/// array `["<owner>",<primary key as JSON>]`, so two users' rows with one primary key are two
/// keys; in a SHARED table the primary key as text (strings as they are, other values as
/// their JSON text).
fn key(owner: Option<&str>, pk: ValueRef<'_>) -> String {
    let pk = pk.to_json();
    match owner {
        Some(owner) => Json::Array(vec![Json::from(owner), pk]).to_string(),
        None => match pk {
            Json::String(text) => text,
            Json::Null => String::new(),
            other => other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use strand_sql_view::Value;

    use super::*;

    #[test]
    fn keys_of_owned_rows_name_the_owner() {
        let id = Value::BigInt(1);
        assert_eq!(key(Some("alice"), id.as_ref()), r#"["alice",1]"#);
        assert_eq!(key(Some("bob"), id.as_ref()), r#"["bob",1]"#);
        assert_eq!(key(None, id.as_ref()), "1");
        let text = Value::Text("a\"b".into());
        assert_eq!(key(Some("al\"ice"), text.as_ref()), r#"["al\"ice","a\"b"]"#);
        assert_eq!(key(None, text.as_ref()), "a\"b");
    }
}
