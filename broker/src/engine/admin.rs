//! User and grant statements: CREATE/ALTER/DROP USER, GRANT, REVOKE. Administrators only; the
//! work is done by the [`UserDirectory`](crate::users::UserDirectory).

use strand_sql_view::ast::{Grant, UserChange};
use strand_sql_view::{self as sql, Statement, TableKind};

use super::{errors, Caller, Engine, EngineResult};
use crate::error::{ApiError, ErrorCode};
use crate::sql::StatementResult;
use crate::users::{Privilege, Role, TableName, UserName};

fn user_name(name: &sql::UserName) -> Result<UserName, ApiError> {
    UserName::new(name.as_str()).map_err(errors::from_users)
}

fn role(role: sql::Role) -> Role {
    match role {
        sql::Role::User => Role::User,
        sql::Role::Service => Role::Service,
        sql::Role::Dba => Role::Dba,
        sql::Role::System => Role::System,
    }
}

fn privilege(privilege: sql::Privilege) -> Privilege {
    match privilege {
        sql::Privilege::Select => Privilege::Select,
        sql::Privilege::Insert => Privilege::Insert,
        sql::Privilege::Update => Privilege::Update,
        sql::Privilege::Delete => Privilege::Delete,
    }
}

impl Engine {
    pub(super) fn administer(&self, caller: &Caller, statement: &Statement) -> EngineResult {
        caller.require_admin("managing users and grants")?;
        let users = &self.users;
        let message = match statement {
            Statement::CreateUser {
                user,
                password,
                role: r,
                if_not_exists,
            } => {
                let name = user_name(user)?;
                if *if_not_exists && users.user(name.as_str()).is_some() {
                    format!("user {name} already exists")
                } else {
                    users
                        .create_user(&name, password.expose(), role(*r))
                        .map_err(errors::from_users)?;
                    format!("user {name} created with role {}", role(*r))
                }
            }
            Statement::AlterUser { user, change } => {
                let name = user_name(user)?;
                match change {
                    UserChange::Password(password) => users.set_password(&name, password.expose()),
                    UserChange::Role(r) => users.set_role(&name, role(*r)),
                }
                .map_err(errors::from_users)?;
                format!("user {name} altered")
            }
            Statement::DropUser { user, if_exists } => {
                let name = user_name(user)?;
                match users
                    .drop_user(&name, *if_exists)
                    .map_err(errors::from_users)?
                {
                    true => format!("user {name} dropped"),
                    false => format!("user {name} does not exist"),
                }
            }
            Statement::ShowUsers => return Ok(self.show_users()),
            Statement::Grant(grant) => self.change_grant(grant, true)?,
            Statement::Revoke(grant) => self.change_grant(grant, false)?,
            _ => return Err(ApiError::internal(&"not a user statement")),
        };
        Ok(StatementResult::message(message))
    }

    fn show_users(&self) -> StatementResult {
        let rows: Vec<serde_json::Map<String, serde_json::Value>> = self
            .users
            .list_users()
            .into_iter()
            .map(|user| {
                let mut row = serde_json::Map::new();
                row.insert("user".into(), user.name.as_str().into());
                row.insert("role".into(), user.role.as_str().into());
                row.insert("created_unix_ms".into(), user.created_unix_ms.into());
                row
            })
            .collect();
        let column = |name: &str, data_type: &str| crate::sql::Column {
            name: name.into(),
            data_type: data_type.into(),
        };
        StatementResult {
            columns: vec![
                column("user", "TEXT"),
                column("role", "TEXT"),
                column("created_unix_ms", "BIGINT"),
            ],
            row_count: rows.len() as u64,
            rows,
            message: None,
        }
    }

    fn change_grant(&self, grant: &Grant, give: bool) -> Result<String, ApiError> {
        let object = &grant.object.name;
        let topic = strand_sql_view::TopicName {
            namespace: object.namespace.clone(),
            topic: object.table.clone(),
        };
        // A topic: INSERT lets a user produce to it, SELECT consume from it.
        let is_topic = self.catalog.entry(object).is_none() && self.catalog.topic(&topic).is_some();
        let table = match is_topic {
            true => None,
            false => Some(self.table(object)?),
        };
        if let Some(table) = table.as_ref().filter(|t| t.def.kind() != TableKind::Shared) {
            let text = format!(
                "{} is a {} table: its rows belong to their users, grants apply to SHARED tables",
                table.def.name(),
                table.def.kind().name()
            );
            return Err(ApiError::new(ErrorCode::InvalidValue, text));
        }
        let user = user_name(&grant.user)?;
        let name = TableName::new(object.to_string()).map_err(errors::from_users)?;
        let privileges: Vec<Privilege> = grant.privileges.iter().copied().map(privilege).collect();
        let outcome = match give {
            true => self.users.grant(&user, &name, &privileges),
            false => self.users.revoke(&user, &name, &privileges),
        };
        outcome.map_err(errors::from_users)?;
        Ok(format!(
            "{} on {name} for {user}",
            if give { "granted" } else { "revoked" }
        ))
    }
}
