//! Hand-written recognizers for the statements sqlparser does not parse (or parses in a
//! shape far from ours): namespaces, users, grants, SHOW / DESCRIBE, topics and
//! `EXECUTE AS USER`. Each is recognized by its first keywords; everything else goes to
//! sqlparser.

use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::cursor::{position_of, Cursor};
use crate::ast::{ChangeKind, CreateTopic, Grant, Statement, TableRef, UserChange};
use crate::error::{code, Position, Result, SqlError};
use crate::limits;
use crate::users::{Password, Privilege, Role, UserName};

/// Parses the statement inside `EXECUTE AS USER u (...)`: its tokens and where it ends.
pub(crate) type InnerParser = dyn Fn(&[TokenWithSpan], Option<Position>) -> Result<Statement>;

/// The statement, if its head is one of ours; `None` hands it to sqlparser. An inner
/// statement of `EXECUTE AS` is parsed with `parse_inner`.
pub(crate) fn recognize(
    cursor: &mut Cursor<'_>,
    parse_inner: &InnerParser,
) -> Option<Result<Statement>> {
    let statement = if cursor.eat_keywords(&["CREATE", "NAMESPACE"]) {
        create_namespace(cursor)
    } else if cursor.eat_keywords(&["DROP", "NAMESPACE"]) {
        drop_namespace(cursor)
    } else if cursor.eat_keywords(&["CREATE", "USER"]) {
        create_user(cursor)
    } else if cursor.eat_keywords(&["ALTER", "USER"]) {
        alter_user(cursor)
    } else if cursor.eat_keywords(&["DROP", "USER"]) {
        drop_user(cursor)
    } else if cursor.eat_keywords(&["CREATE", "TOPIC"]) {
        create_topic(cursor)
    } else if cursor.eat_keywords(&["DROP", "TOPIC"]) {
        drop_topic(cursor)
    } else if cursor.eat_keywords(&["ALTER", "TOPIC"]) {
        alter_topic(cursor)
    } else if cursor.eat_keyword("GRANT") {
        grant(cursor, "TO").map(Statement::Grant)
    } else if cursor.eat_keyword("REVOKE") {
        grant(cursor, "FROM").map(Statement::Revoke)
    } else if cursor.eat_keyword("SHOW") {
        show(cursor)
    } else if cursor.eat_keyword("DESCRIBE") || cursor.eat_keyword("DESC") {
        describe(cursor)
    } else if cursor.eat_keywords(&["EXECUTE", "AS"]) {
        execute_as(cursor, parse_inner)
    } else {
        return None;
    };
    Some(statement.and_then(|statement| cursor.finish().map(|()| statement)))
}

fn if_not_exists(cursor: &mut Cursor<'_>) -> bool {
    cursor.eat_keywords(&["IF", "NOT", "EXISTS"])
}

fn if_exists(cursor: &mut Cursor<'_>) -> bool {
    cursor.eat_keywords(&["IF", "EXISTS"])
}

fn create_namespace(cursor: &mut Cursor<'_>) -> Result<Statement> {
    let if_not_exists = if_not_exists(cursor);
    Ok(Statement::CreateNamespace {
        name: cursor.name()?,
        if_not_exists,
    })
}

fn drop_namespace(cursor: &mut Cursor<'_>) -> Result<Statement> {
    let if_exists = if_exists(cursor);
    Ok(Statement::DropNamespace {
        name: cursor.name()?,
        if_exists,
    })
}

fn user_name(cursor: &mut Cursor<'_>) -> Result<UserName> {
    let (text, position) = cursor.string_or_identifier()?;
    UserName::new(&text).map_err(|error| error.or_at(position))
}

fn password(cursor: &mut Cursor<'_>) -> Result<Password> {
    let (text, position) = cursor.string()?;
    Password::new(&text).map_err(|error| error.or_at(position))
}

fn role(cursor: &mut Cursor<'_>) -> Result<Role> {
    let (text, position) = cursor.string_or_identifier()?;
    Role::from_name(&text).ok_or_else(|| {
        SqlError::new(
            code::INVALID_VALUE,
            format!("unknown role '{text}': use user, service, dba or system"),
            position,
        )
    })
}

/// `CREATE USER [IF NOT EXISTS] u [WITH] PASSWORD 'p' [ROLE r]` (options in any order).
fn create_user(cursor: &mut Cursor<'_>) -> Result<Statement> {
    let if_not_exists = if_not_exists(cursor);
    let user = user_name(cursor)?;
    cursor.eat_keyword("WITH");
    let (mut password_given, mut role_given) = (None, None);
    loop {
        if password_given.is_none() && cursor.eat_keyword("PASSWORD") {
            password_given = Some(password(cursor)?);
        } else if role_given.is_none() && cursor.eat_keyword("ROLE") {
            role_given = Some(role(cursor)?);
        } else {
            break;
        }
    }
    let Some(password) = password_given else {
        return Err(cursor.error("PASSWORD"));
    };
    let role = role_given.unwrap_or(Role::User);
    Ok(Statement::CreateUser {
        user,
        password,
        role,
        if_not_exists,
    })
}

/// `ALTER USER u SET PASSWORD 'p'` or `ALTER USER u SET ROLE r`.
fn alter_user(cursor: &mut Cursor<'_>) -> Result<Statement> {
    let user = user_name(cursor)?;
    cursor.expect_keyword("SET")?;
    let change = if cursor.eat_keyword("PASSWORD") {
        UserChange::Password(password(cursor)?)
    } else if cursor.eat_keyword("ROLE") {
        UserChange::Role(role(cursor)?)
    } else {
        return Err(cursor.error("PASSWORD or ROLE"));
    };
    Ok(Statement::AlterUser { user, change })
}

fn drop_user(cursor: &mut Cursor<'_>) -> Result<Statement> {
    let if_exists = if_exists(cursor);
    Ok(Statement::DropUser {
        user: user_name(cursor)?,
        if_exists,
    })
}

/// `CREATE TOPIC [IF NOT EXISTS] ns.t [WITH (PARTITIONS = n, RETENTION_SECONDS = n)]`.
fn create_topic(cursor: &mut Cursor<'_>) -> Result<Statement> {
    let if_not_exists = if_not_exists(cursor);
    let topic = cursor.topic_name()?;
    let mut create = CreateTopic {
        topic,
        partitions: None,
        retention_seconds: None,
        if_not_exists,
    };
    if cursor.eat_keyword("WITH") {
        cursor.expect_token(&Token::LParen)?;
        loop {
            let (option, position) = cursor.identifier()?;
            cursor.expect_token(&Token::Eq)?;
            let (value, value_position) = cursor.unsigned()?;
            match option.as_str() {
                "partitions" => {
                    let partitions = u32::try_from(value)
                        .ok()
                        .filter(|p| (1..=limits::TOPIC_PARTITIONS_MAX).contains(p))
                        .ok_or_else(|| {
                            SqlError::new(
                                code::INVALID_VALUE,
                                format!("PARTITIONS is 1 to {}", limits::TOPIC_PARTITIONS_MAX),
                                value_position,
                            )
                        })?;
                    create.partitions = Some(partitions);
                }
                "retention_seconds" => create.retention_seconds = Some(value),
                other => {
                    let message = format!("topic option {other}");
                    return Err(SqlError::unsupported(message, position));
                }
            }
            if !cursor.eat_token(&Token::Comma) {
                break;
            }
        }
        cursor.expect_token(&Token::RParen)?;
    }
    Ok(Statement::CreateTopic(create))
}

fn drop_topic(cursor: &mut Cursor<'_>) -> Result<Statement> {
    let if_exists = if_exists(cursor);
    Ok(Statement::DropTopic {
        topic: cursor.topic_name()?,
        if_exists,
    })
}

/// `ALTER TOPIC ns.t ADD SOURCE ns.table [ON INSERT, UPDATE, DELETE]` (default: all three) or
/// `ALTER TOPIC ns.t DROP SOURCE [IF EXISTS] ns.table`.
fn alter_topic(cursor: &mut Cursor<'_>) -> Result<Statement> {
    let topic = cursor.topic_name()?;
    if cursor.eat_keyword("DROP") {
        cursor.expect_keyword("SOURCE")?;
        let if_exists = if_exists(cursor);
        let (name, position) = cursor.table_name()?;
        return Ok(Statement::DropTopicSource {
            topic,
            table: TableRef { name, position },
            if_exists,
        });
    }
    if !cursor.eat_keyword("ADD") {
        return Err(cursor.error("ADD SOURCE or DROP SOURCE"));
    }
    cursor.expect_keyword("SOURCE")?;
    let (name, position) = cursor.table_name()?;
    let mut operations = Vec::new();
    if cursor.eat_keyword("ON") {
        loop {
            let kind = if cursor.eat_keyword("INSERT") {
                ChangeKind::Insert
            } else if cursor.eat_keyword("UPDATE") {
                ChangeKind::Update
            } else if cursor.eat_keyword("DELETE") {
                ChangeKind::Delete
            } else {
                return Err(cursor.error("INSERT, UPDATE or DELETE"));
            };
            if !operations.contains(&kind) {
                operations.push(kind);
            }
            if !cursor.eat_token(&Token::Comma) {
                break;
            }
        }
    } else {
        operations = vec![ChangeKind::Insert, ChangeKind::Update, ChangeKind::Delete];
    }
    Ok(Statement::AddTopicSource {
        topic,
        table: TableRef { name, position },
        operations,
    })
}

/// `privileges ON [TABLE|TOPIC] ns.t TO|FROM user`.
fn grant(cursor: &mut Cursor<'_>, direction: &str) -> Result<Grant> {
    let mut privileges = Vec::new();
    if cursor.eat_keyword("ALL") {
        cursor.eat_keyword("PRIVILEGES");
        privileges.extend(Privilege::ALL);
    } else {
        loop {
            let privilege = Privilege::ALL
                .into_iter()
                .find(|p| cursor.eat_keyword(p.name()))
                .ok_or_else(|| cursor.error("SELECT, INSERT, UPDATE, DELETE or ALL"))?;
            if !privileges.contains(&privilege) {
                privileges.push(privilege);
            }
            if !cursor.eat_token(&Token::Comma) {
                break;
            }
        }
    }
    cursor.expect_keyword("ON")?;
    let _ = cursor.eat_keyword("TABLE") || cursor.eat_keyword("TOPIC");
    let (name, position) = cursor.table_name()?;
    cursor.expect_keyword(direction)?;
    let user = user_name(cursor)?;
    Ok(Grant {
        privileges,
        object: TableRef { name, position },
        user,
    })
}

/// `SHOW NAMESPACES`, `SHOW USERS`, `SHOW TABLES [IN|FROM ns]`, `SHOW TOPICS [IN|FROM ns]`.
fn show(cursor: &mut Cursor<'_>) -> Result<Statement> {
    if cursor.eat_keyword("NAMESPACES") {
        return Ok(Statement::ShowNamespaces);
    }
    if cursor.eat_keyword("USERS") {
        return Ok(Statement::ShowUsers);
    }
    let tables = if cursor.eat_keyword("TABLES") {
        true
    } else if cursor.eat_keyword("TOPICS") {
        false
    } else {
        return Err(cursor.error("NAMESPACES, USERS, TABLES or TOPICS"));
    };
    let namespace = if cursor.eat_keyword("IN") || cursor.eat_keyword("FROM") {
        Some(cursor.name()?)
    } else {
        None
    };
    Ok(if tables {
        Statement::ShowTables { namespace }
    } else {
        Statement::ShowTopics { namespace }
    })
}

fn describe(cursor: &mut Cursor<'_>) -> Result<Statement> {
    cursor.eat_keyword("TABLE");
    let (name, position) = cursor.table_name()?;
    Ok(Statement::DescribeTable {
        table: TableRef { name, position },
    })
}

/// `EXECUTE AS USER u (statement)`: the statement inside the parentheses is parsed like any
/// other (but may not be another EXECUTE AS).
fn execute_as(cursor: &mut Cursor<'_>, parse_inner: &InnerParser) -> Result<Statement> {
    cursor.expect_keyword("USER")?;
    let user = user_name(cursor)?;
    let open = cursor.position();
    cursor.expect_token(&Token::LParen)?;
    let rest = cursor.rest();
    if rest.last().map(|t| &t.token) != Some(&Token::RParen) {
        return Err(SqlError::syntax(
            "EXECUTE AS needs (<statement>) at its end",
            open,
        ));
    }
    let inner_tokens = &rest[..rest.len() - 1];
    if inner_tokens.is_empty() {
        return Err(SqlError::syntax(
            "EXECUTE AS needs a statement inside (...)",
            open,
        ));
    }
    let close = rest.last().and_then(position_of);
    let inner_cursor = Cursor::new(inner_tokens, close);
    if inner_cursor.is_keyword_at(0, "EXECUTE") {
        return Err(SqlError::unsupported(
            "EXECUTE AS inside EXECUTE AS",
            inner_cursor.position(),
        ));
    }
    let statement = parse_inner(inner_tokens, close)?;
    while cursor.bump().is_some() {}
    Ok(Statement::ExecuteAs {
        user,
        statement: Box::new(statement),
    })
}
