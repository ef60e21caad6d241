use super::*;

fn name(text: &str) -> Name {
    Name::new(text).unwrap()
}

fn column(text: &str, data_type: DataType) -> ColumnDef {
    ColumnDef {
        name: name(text),
        data_type,
        not_null: false,
        default: None,
    }
}

fn table_name() -> TableName {
    TableName {
        namespace: name("app"),
        table: name("t"),
    }
}

#[test]
fn names_are_identifiers() {
    assert!(Name::new("_tickets2").is_ok());
    for bad in ["", "2x", "a-b", "a.b", "é", &"x".repeat(64)] {
        assert_eq!(
            Name::new(bad).unwrap_err().code,
            code::INVALID_NAME,
            "{bad}"
        );
    }
}

#[test]
fn user_and_shared_tables_need_a_primary_key() {
    for kind in [TableKind::User, TableKind::Shared] {
        let error = TableDef::new(table_name(), kind, vec![column("a", DataType::Int)], None);
        assert_eq!(error.unwrap_err().code, code::INVALID_DEFINITION);
    }
    let stream = TableKind::Stream { ttl_seconds: 60 };
    assert!(TableDef::new(table_name(), stream, vec![column("a", DataType::Int)], None).is_ok());
    let no_ttl = TableKind::Stream { ttl_seconds: 0 };
    assert!(TableDef::new(table_name(), no_ttl, vec![column("a", DataType::Int)], None).is_err());
}

#[test]
fn definition_rules() {
    let columns = vec![column("a", DataType::Int), column("a", DataType::Text)];
    assert!(TableDef::new(table_name(), TableKind::Shared, columns, Some(0)).is_err());
    let columns = vec![column("_seq", DataType::Int)];
    assert!(TableDef::new(table_name(), TableKind::Shared, columns, Some(0)).is_err());
    let columns = vec![column("d", DataType::Double)];
    assert!(TableDef::new(table_name(), TableKind::Shared, columns, Some(0)).is_err());
    let columns = vec![column("a", DataType::Int)];
    assert!(TableDef::new(table_name(), TableKind::Shared, columns, Some(1)).is_err());
    let columns = vec![column("id", DataType::BigInt), column("b", DataType::Text)];
    let table = TableDef::new(table_name(), TableKind::User, columns, Some(0)).unwrap();
    assert!(table.columns()[0].not_null, "the primary key is NOT NULL");
    assert_eq!(table.column_index("b"), Some(1));
}

#[test]
fn added_columns_append_and_may_not_be_not_null() {
    let table = TableDef::new(
        table_name(),
        TableKind::User,
        vec![column("id", DataType::Int)],
        Some(0),
    )
    .unwrap();
    let wider = table
        .with_added_column(column("x", DataType::Text))
        .unwrap();
    assert_eq!(wider.columns().len(), 2);
    assert!(wider.with_added_column(column("x", DataType::Int)).is_err());
    let strict = ColumnDef {
        not_null: true,
        default: None,
        ..column("y", DataType::Int)
    };
    assert!(table.with_added_column(strict).is_err());
}

#[test]
fn definitions_survive_serde_and_are_validated_on_the_way_in() {
    let table = TableDef::new(
        table_name(),
        TableKind::User,
        vec![column("id", DataType::Int)],
        Some(0),
    )
    .unwrap();
    let text = serde_json::to_string(&table).unwrap();
    assert_eq!(serde_json::from_str::<TableDef>(&text).unwrap(), table);
    let broken = text.replace("\"primary_key\":0", "\"primary_key\":null");
    assert!(serde_json::from_str::<TableDef>(&broken).is_err());
    assert!(CatalogView::table(&table, &table_name()).is_some());
}
