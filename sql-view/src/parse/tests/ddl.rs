//! DDL, users, grants, topics, SHOW / DESCRIBE and EXECUTE AS.

use super::*;

#[test]
fn namespaces() {
    let Statement::CreateNamespace {
        name,
        if_not_exists,
    } = one("CREATE NAMESPACE app")
    else {
        panic!()
    };
    assert_eq!((name.as_str(), if_not_exists), ("app", false));
    let Statement::CreateNamespace { if_not_exists, .. } =
        one("create namespace if not exists App")
    else {
        panic!()
    };
    assert!(if_not_exists);
    let Statement::DropNamespace { name, if_exists } = one("DROP NAMESPACE IF EXISTS app;") else {
        panic!()
    };
    assert_eq!((name.as_str(), if_exists), ("app", true));
}

#[test]
fn create_table_with_inline_key_and_type() {
    let sql = "CREATE TABLE app.tickets (id BIGINT PRIMARY KEY, title TEXT NOT NULL, \
               priority INT, status TEXT, updated_at TIMESTAMP) WITH (TYPE = 'USER')";
    let Statement::CreateTable {
        table: def,
        if_not_exists: false,
    } = one(sql)
    else {
        panic!()
    };
    assert_eq!(def.name(), &table("app", "tickets"));
    assert_eq!(def.kind(), TableKind::User);
    assert_eq!(def.primary_key(), Some(0));
    let types: Vec<DataType> = def.columns().iter().map(|c| c.data_type).collect();
    assert_eq!(
        types,
        [
            DataType::BigInt,
            DataType::Text,
            DataType::Int,
            DataType::Text,
            DataType::Timestamp
        ]
    );
    assert!(def.columns()[1].not_null && !def.columns()[2].not_null);
}

#[test]
fn create_table_with_constraint_key_stream_and_all_types() {
    let sql = "CREATE TABLE IF NOT EXISTS app.typing (room TEXT, who TEXT, b BOOLEAN, d DOUBLE, \
               j JSON, raw BYTES, PRIMARY KEY (room)) WITH (TYPE = 'STREAM', TTL_SECONDS = 30)";
    let Statement::CreateTable {
        table: def,
        if_not_exists: true,
    } = one(sql)
    else {
        panic!()
    };
    assert_eq!(def.kind(), TableKind::Stream { ttl_seconds: 30 });
    assert_eq!(def.primary_key(), Some(0));
    assert_eq!(def.columns()[5].data_type, DataType::Bytes);
    let Statement::CreateTable { table: def, .. } = one("CREATE TABLE a.b (x INT PRIMARY KEY)")
    else {
        panic!()
    };
    assert_eq!(def.kind(), TableKind::Shared, "TYPE defaults to SHARED");
}

#[test]
fn create_table_errors_point_at_their_cause() {
    let missing_key = error("CREATE TABLE app.t (a INT) WITH (TYPE = 'USER')");
    assert_eq!(
        (missing_key.code, missing_key.position),
        (code::INVALID_DEFINITION, at(1, 1))
    );
    let bad_type = error("CREATE TABLE app.t (a INT PRIMARY KEY) WITH (TYPE = 'WIDE')");
    assert_eq!(
        (bad_type.code, bad_type.position),
        (code::INVALID_DEFINITION, at(1, 53))
    );
    let no_ttl = error("CREATE TABLE app.t (a INT) WITH (TYPE = 'STREAM')");
    assert_eq!(no_ttl.code, code::INVALID_DEFINITION);
    let unqualified = error("CREATE TABLE t (a INT PRIMARY KEY)");
    assert_eq!(
        (unqualified.code, unqualified.position),
        (code::INVALID_NAME, at(1, 14))
    );
    let bad_column_type = error("CREATE TABLE app.t (a INT PRIMARY KEY, b MONEY)");
    assert_eq!(
        (bad_column_type.code, bad_column_type.position),
        (code::UNSUPPORTED, at(1, 40))
    );
    let check = error("CREATE TABLE app.t (a INT PRIMARY KEY, b INT CHECK (b > 0))");
    assert_eq!(check.code, code::UNSUPPORTED);
    let composite = error("CREATE TABLE app.t (a INT, b INT, PRIMARY KEY (a, b))");
    assert_eq!(composite.code, code::UNSUPPORTED);
}

#[test]
fn drop_and_alter_table() {
    let Statement::DropTable {
        table: t,
        if_exists,
    } = one("DROP TABLE IF EXISTS app.t")
    else {
        panic!()
    };
    assert_eq!(
        (t.name, t.position, if_exists),
        (table("app", "t"), at(1, 22), true)
    );
    let Statement::AddColumn {
        table: t,
        column,
        if_not_exists,
    } = one("ALTER TABLE app.t ADD COLUMN note TEXT")
    else {
        panic!()
    };
    assert_eq!(
        (t.name, column.name.as_str(), column.data_type),
        (table("app", "t"), "note", DataType::Text)
    );
    assert!(!if_not_exists);
    assert_eq!(
        error("ALTER TABLE app.t ADD COLUMN n INT NOT NULL").code,
        code::INVALID_DEFINITION
    );
    assert_eq!(
        error("ALTER TABLE app.t DROP COLUMN n").code,
        code::UNSUPPORTED
    );
    assert_eq!(error("DROP VIEW app.v").code, code::UNSUPPORTED);
}

#[test]
fn show_and_describe() {
    assert_eq!(one("SHOW NAMESPACES"), Statement::ShowNamespaces);
    assert_eq!(one("SHOW USERS"), Statement::ShowUsers);
    assert_eq!(
        one("SHOW TABLES"),
        Statement::ShowTables { namespace: None }
    );
    let Statement::ShowTables {
        namespace: Some(ns),
    } = one("SHOW TABLES IN app")
    else {
        panic!()
    };
    assert_eq!(ns.as_str(), "app");
    let Statement::ShowTopics { namespace: Some(_) } = one("show topics from app") else {
        panic!()
    };
    let Statement::DescribeTable { table: t } = one("DESCRIBE TABLE app.t") else {
        panic!()
    };
    assert_eq!(t.name, table("app", "t"));
    let Statement::DescribeTable { .. } = one("DESC app.t") else {
        panic!()
    };
    assert_eq!(error("SHOW GRANTS").code, code::SYNTAX_ERROR);
}

#[test]
fn users() {
    let Statement::CreateUser {
        user,
        password,
        role,
        if_not_exists: false,
    } = one("CREATE USER 'alice' WITH PASSWORD 'x' ROLE service")
    else {
        panic!()
    };
    assert_eq!(
        (user.as_str(), password.expose(), role),
        ("alice", "x", Role::Service)
    );
    let Statement::CreateUser { role, .. } = one("CREATE USER bob PASSWORD 'y'") else {
        panic!()
    };
    assert_eq!(role, Role::User, "role defaults to user");
    let Statement::AlterUser {
        change: UserChange::Password(p),
        ..
    } = one("ALTER USER 'alice' SET PASSWORD 'z'")
    else {
        panic!()
    };
    assert_eq!(p.expose(), "z");
    let Statement::AlterUser {
        change: UserChange::Role(Role::Dba),
        ..
    } = one("ALTER USER 'alice' SET ROLE dba")
    else {
        panic!()
    };
    let Statement::DropUser {
        user,
        if_exists: true,
    } = one("DROP USER IF EXISTS 'alice'")
    else {
        panic!()
    };
    assert_eq!(user.as_str(), "alice");
    let bad_role = error("CREATE USER 'a' WITH PASSWORD 'x' ROLE root");
    assert_eq!(
        (bad_role.code, bad_role.position),
        (code::INVALID_VALUE, at(1, 40))
    );
    let no_password = error("CREATE USER 'a' ROLE dba");
    assert_eq!(
        (no_password.code, no_password.position),
        (code::SYNTAX_ERROR, at(1, 25))
    );
}

#[test]
fn grants() {
    let Statement::Grant(grant) =
        one("GRANT SELECT, INSERT, UPDATE, DELETE ON app.rooms TO 'alice'")
    else {
        panic!()
    };
    assert_eq!(grant.privileges, Privilege::ALL.to_vec());
    assert_eq!(
        (grant.object.name, grant.user.as_str()),
        (table("app", "rooms"), "alice")
    );
    let Statement::Revoke(revoke) = one("REVOKE insert ON TABLE app.rooms FROM 'alice'") else {
        panic!()
    };
    assert_eq!(revoke.privileges, vec![Privilege::Insert]);
    let Statement::Grant(all) = one("GRANT ALL PRIVILEGES ON app.rooms TO bob") else {
        panic!()
    };
    assert_eq!(all.privileges.len(), 4);
    let wrong = error("GRANT SELECT ON app.rooms FROM 'alice'");
    assert_eq!(
        (wrong.code, wrong.position),
        (code::SYNTAX_ERROR, at(1, 27))
    );
}

#[test]
fn topics() {
    let Statement::CreateTopic(topic) =
        one("CREATE TOPIC app.events WITH (PARTITIONS = 4, RETENTION_SECONDS = 604800)")
    else {
        panic!()
    };
    assert_eq!(
        (topic.partitions, topic.retention_seconds),
        (Some(4), Some(604_800))
    );
    let Statement::AddTopicSource { operations, .. } =
        one("ALTER TOPIC app.events ADD SOURCE app.messages ON INSERT, DELETE")
    else {
        panic!()
    };
    assert_eq!(operations, vec![ChangeKind::Insert, ChangeKind::Delete]);
    let Statement::DropTopic {
        if_exists: true, ..
    } = one("DROP TOPIC IF EXISTS app.events")
    else {
        panic!()
    };
}

#[test]
fn alter_topic_drop_source() {
    let Statement::DropTopicSource {
        topic,
        table: source,
        if_exists,
    } = one("ALTER TOPIC app.events DROP SOURCE app.messages")
    else {
        panic!()
    };
    assert_eq!(
        (topic.to_string(), source.name, if_exists),
        ("app.events".to_owned(), table("app", "messages"), false)
    );
    assert_eq!(source.position, at(1, 36));
    let Statement::DropTopicSource {
        if_exists: true, ..
    } = one("alter topic app.events drop source if exists app.messages;")
    else {
        panic!()
    };
    let neither = error("ALTER TOPIC app.events REMOVE SOURCE app.messages");
    assert_eq!(
        (neither.code, neither.position),
        (code::SYNTAX_ERROR, at(1, 24))
    );
    assert!(
        neither.message.contains("ADD SOURCE or DROP SOURCE"),
        "{}",
        neither.message
    );
    let trailing = error("ALTER TOPIC app.events DROP SOURCE app.messages ON INSERT");
    assert_eq!(trailing.code, code::SYNTAX_ERROR);
}

#[test]
fn execute_as_parses_the_inner_statement() {
    let Statement::ExecuteAs { user, statement } =
        one("EXECUTE AS USER 'alice' (INSERT INTO app.t (id) VALUES (1))")
    else {
        panic!()
    };
    assert_eq!(user.as_str(), "alice");
    assert!(matches!(*statement, Statement::Insert(_)));
    let Statement::ExecuteAs { statement, .. } = one("EXECUTE AS USER bob (SHOW TABLES)") else {
        panic!()
    };
    assert_eq!(*statement, Statement::ShowTables { namespace: None });
    let inner = error("EXECUTE AS USER 'a' (SELEC 1)");
    assert_eq!(
        (inner.code, inner.position),
        (code::SYNTAX_ERROR, at(1, 22))
    );
    assert_eq!(
        error("EXECUTE AS USER 'a' SELECT 1").code,
        code::SYNTAX_ERROR
    );
}
