//! User and grant statements: CREATE/ALTER/DROP USER, GRANT, REVOKE. Administrators only; the
//! work is done by the [`UserDirectory`](crate::users::UserDirectory).

use strand_sql_view::ast::{Grant, UserChange};
use strand_sql_view::Privilege;
use strand_sql_view::{Statement, TableKind};

use super::{errors, Caller, Engine, EngineResult};
use crate::error::{ApiError, ErrorCode};
use crate::sql::StatementResult;

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
                let name = user.clone();
                if *if_not_exists && users.user(name.as_str()).is_some() {
                    format!("user {name} already exists")
                } else {
                    users
                        .create_user(&name, password.expose(), *r)
                        .map_err(errors::from_users)?;
                    format!("user {name} created with role {}", *r)
                }
            }
            Statement::AlterUser { user, change } => {
                let name = user.clone();
                match change {
                    UserChange::Password(password) => users.set_password(&name, password.expose()),
                    UserChange::Role(r) => users.set_role(&name, *r),
                }
                .map_err(errors::from_users)?;
                format!("user {name} altered")
            }
            Statement::DropUser { user, if_exists } => {
                let name = user.clone();
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
                row.insert("role".into(), user.role.name().into());
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
        let user = grant.user.clone();
        let name = object.clone();
        let privileges: &[Privilege] = &grant.privileges;
        let outcome = match give {
            true => self.users.grant(&user, &name, privileges),
            false => self.users.revoke(&user, &name, privileges),
        };
        outcome.map_err(errors::from_users)?;
        Ok(format!(
            "{} on {name} for {user}",
            if give { "granted" } else { "revoked" }
        ))
    }
}
