//! [`TopicDef`]: a topic as the catalog stores it (JSON in `system/catalog`, key
//! `topic/<ns>.<topic>`): its partitions, retention and the tables that feed it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use strand_log::Seq;
use strand_sql_view::{TableName, TopicName};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDef {
    pub name: TopicName,
    pub partitions: u32,
    /// Messages older than this are removed by retention; `None` keeps them.
    pub retention_seconds: Option<u64>,
    /// Tables whose committed changes are published to the topic.
    #[serde(default)]
    pub sources: Vec<TopicSource>,
}

/// `ALTER TOPIC t ADD SOURCE table ON ...`: which changes of `table` the topic receives, from
/// which `_seq` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSource {
    pub table: TableName,
    pub on_insert: bool,
    pub on_update: bool,
    pub on_delete: bool,
    /// The store's last issued `_seq` when the source was added: changes with a greater
    /// `_seq` are published, none at or below it (see `source.rs`). A source stored before
    /// this field existed reads as [`Seq::ZERO`]: it publishes the table's retained history,
    /// which is what such a source was added to do (what it already published is not
    /// published again; the topic's log holds its position).
    #[serde(default, with = "seq_number")]
    pub start_seq: Seq,
}

impl TopicSource {
    /// The change kinds it publishes, as `ALTER TOPIC ... ON` names them (`INSERT, DELETE`).
    pub fn change_kinds(&self) -> String {
        let kinds = [
            (self.on_insert, "INSERT"),
            (self.on_update, "UPDATE"),
            (self.on_delete, "DELETE"),
        ];
        let named: Vec<&str> = kinds
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| *name)
            .collect();
        named.join(", ")
    }
}

/// A [`Seq`] as a JSON number (the catalog's format; `strand-log` has no serde).
mod seq_number {
    use super::*;

    pub fn serialize<S: Serializer>(seq: &Seq, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(seq.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Seq, D::Error> {
        u64::deserialize(deserializer).map(Seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> strand_sql_view::Name {
        strand_sql_view::Name::new(text).expect("name")
    }

    #[test]
    fn a_source_stored_without_a_start_reads_as_start_zero_and_round_trips() {
        let old = r#"{"name":{"namespace":"app","topic":"feed"},"partitions":2,
            "retention_seconds":null,"sources":[{"table":{"namespace":"app","table":"t"},
            "on_insert":true,"on_update":false,"on_delete":true}]}"#;
        let def: TopicDef = serde_json::from_str(old).expect("an old definition loads");
        assert_eq!(def.sources[0].start_seq, Seq::ZERO);
        assert_eq!(def.sources[0].change_kinds(), "INSERT, DELETE");

        let mut def = def;
        def.sources[0].start_seq = Seq(7_212);
        let text = serde_json::to_string(&def).expect("serialize");
        assert!(text.contains(r#""start_seq":7212"#), "{text}");
        let back: TopicDef = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, def);
        assert_eq!(back.name.topic, name("feed"));
    }
}
