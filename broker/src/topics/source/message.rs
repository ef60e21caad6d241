//! A table change as a topic message: its key (the primary key as text) and its JSON value
//! (see the documentation of `source.rs`).

use serde_json::{Map, Value as Json};
use strand_sql_view::{TableDef, ValueRef, SEQ_COLUMN};

use crate::realtime::{ChangeKind, VersionPair};
use crate::topics::TopicSource;

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

/// The key and value of the message for one change (see the documentation of `source.rs`).
pub(super) fn message(
    def: &TableDef,
    pair: &VersionPair<'_>,
    kind: ChangeKind,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let version = match kind {
        ChangeKind::Insert | ChangeKind::Update => pair.new.as_ref(),
        ChangeKind::Delete => pair.old.as_ref(),
    }?;
    let key = def
        .primary_key()
        .map(|pk| key_text(version.row.field(pk)))
        .unwrap_or_default();
    let mut row = Map::with_capacity(def.columns().len() + 1);
    for (index, column) in def.columns().iter().enumerate() {
        let value = version.row.field(index).to_json();
        row.insert(column.name.as_str().to_owned(), value);
    }
    row.insert(SEQ_COLUMN.to_owned(), Json::from(version.seq.0.to_string()));
    let mut value = Map::with_capacity(4);
    value.insert(SEQ_COLUMN.to_owned(), Json::from(pair.seq.0.to_string()));
    value.insert("change_type".to_owned(), Json::from(change_type(kind)));
    value.insert("table".to_owned(), Json::from(def.name().to_string()));
    value.insert("row".to_owned(), Json::Object(row));
    Some((
        key.into_bytes(),
        Json::Object(value).to_string().into_bytes(),
    ))
}

/// A primary key value as text: strings as they are, other values as their JSON text.
fn key_text(value: ValueRef<'_>) -> String {
    match value.to_json() {
        Json::String(text) => text,
        Json::Null => String::new(),
        other => other.to_string(),
    }
}
