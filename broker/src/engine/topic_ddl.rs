//! Topic DDL: `CREATE TOPIC`, `DROP TOPIC`, `ALTER TOPIC ... ADD SOURCE`, `SHOW TOPICS`. Each
//! change is one catalog record (`CatalogChange::PutTopic` / `DropTopic`); administrators only,
//! like the table DDL in `ddl.rs`.

use serde_json::{Map, Value as Json};
use strand_sql_view::ast::{ChangeKind, CreateTopic};
use strand_sql_view::{Name, Statement, TableName, TopicName};

use super::ddl::{column, exists, missing, no_op_or, rows_result, Planned};
use crate::error::{ApiError, ErrorCode};
use crate::sql::StatementResult;
use crate::tables::catalog::{Catalog, CatalogChange};
use crate::topics::{TopicDef, TopicSource, TOPIC_PARTITIONS_DEFAULT, TOPIC_PARTITIONS_MAX};

/// The catalog change of a topic statement (see `ddl::plan_change`).
pub(super) fn plan_topic_change(
    catalog: &Catalog,
    statement: &Statement,
) -> Result<Planned, ApiError> {
    match statement {
        Statement::CreateTopic(create) => create_topic(catalog, create),
        Statement::DropTopic { topic, if_exists } => {
            if catalog.topic(topic).is_none() {
                return no_op_or(*if_exists, || missing(format!("topic {topic}")));
            }
            let change = CatalogChange::DropTopic(topic.clone());
            Ok((Some(change), format!("topic {topic} dropped")))
        }
        Statement::AddTopicSource {
            topic,
            table,
            operations,
        } => {
            let current = catalog
                .topic(topic)
                .ok_or_else(|| missing(format!("topic {topic}")))?;
            if catalog.entry(&table.name).is_none() {
                return Err(missing(format!("table {}", table.name)));
            }
            let mut def = (*current.def).clone();
            def.sources.retain(|s| s.table != table.name);
            def.sources.push(TopicSource {
                table: table.name.clone(),
                on_insert: operations.contains(&ChangeKind::Insert),
                on_update: operations.contains(&ChangeKind::Update),
                on_delete: operations.contains(&ChangeKind::Delete),
            });
            let text = format!("table {} now feeds topic {topic}", table.name);
            Ok((Some(CatalogChange::PutTopic(def)), text))
        }
        _ => Err(ApiError::internal(&"not a topic statement")),
    }
}

fn create_topic(catalog: &Catalog, create: &CreateTopic) -> Result<Planned, ApiError> {
    let name = &create.topic;
    if !catalog.has_namespace(&name.namespace) {
        return Err(missing(format!("namespace {}", name.namespace)));
    }
    if catalog.topic(name).is_some() {
        return no_op_or(create.if_not_exists, || exists(format!("topic {name}")));
    }
    if catalog.entry(&as_table_name(name)).is_some() {
        let text = format!("{name} is a table; a topic needs another name");
        return Err(ApiError::new(ErrorCode::AlreadyExists, text));
    }
    let partitions = create.partitions.unwrap_or(TOPIC_PARTITIONS_DEFAULT);
    if !(1..=TOPIC_PARTITIONS_MAX).contains(&partitions) {
        let text = format!("PARTITIONS = {partitions}: use 1 to {TOPIC_PARTITIONS_MAX}");
        return Err(ApiError::new(ErrorCode::LimitExceeded, text));
    }
    let def = TopicDef {
        name: name.clone(),
        partitions,
        retention_seconds: create.retention_seconds,
        sources: Vec::new(),
    };
    let text = format!("topic {name} created with {partitions} partition(s)");
    Ok((Some(CatalogChange::PutTopic(def)), text))
}

/// The table a topic's name would clash with (tables and topics share GRANT's namespace).
pub(super) fn as_table_name(topic: &TopicName) -> TableName {
    TableName {
        namespace: topic.namespace.clone(),
        table: topic.topic.clone(),
    }
}

pub(super) fn show_topics(catalog: &Catalog, namespace: Option<&Name>) -> StatementResult {
    let rows = catalog.topics(namespace).into_iter().map(|topic| {
        let def = &topic.def;
        let mut row = Map::new();
        row.insert("namespace".into(), Json::from(def.name.namespace.as_str()));
        row.insert("topic".into(), Json::from(def.name.topic.as_str()));
        row.insert("partitions".into(), Json::from(def.partitions));
        row.insert(
            "retention_seconds".into(),
            def.retention_seconds.map_or(Json::Null, Json::from),
        );
        let sources: Vec<String> = def.sources.iter().map(|s| s.table.to_string()).collect();
        row.insert("sources".into(), Json::from(sources.join(", ")));
        row
    });
    let columns = vec![
        column("namespace", "TEXT"),
        column("topic", "TEXT"),
        column("partitions", "INT"),
        column("retention_seconds", "BIGINT"),
        column("sources", "TEXT"),
    ];
    rows_result(columns, rows.collect())
}
