//! `strand user create|list|passwd`: each builds one SQL statement (the syntax of docs/sql.md, "Users")
//! and sends it like `strand sql -c`. The server's SQL engine does the work.

use std::process::ExitCode;

use strand_broker::limits::GENERATED_PASSWORD_CHARS;
use strand_broker::users::generate_password;

use super::client::Client;
use super::{run_and_print, ConnectArgs, Output};

/// `strand user`.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub action: UserAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum UserAction {
    /// Create a user (a password is generated and printed when none is given)
    Create {
        name: String,
        /// user | service | dba | system
        #[arg(long, default_value = "user")]
        role: String,
        /// The new user's password
        #[arg(long, value_name = "PASSWORD")]
        new_password: Option<String>,
    },
    /// List users
    List,
    /// Change a user's password (a password is generated and printed when none is given)
    Passwd {
        name: String,
        #[arg(long, value_name = "PASSWORD")]
        new_password: Option<String>,
    },
}

pub fn run(args: &UserArgs) -> anyhow::Result<ExitCode> {
    let (sql, generated) = statement(&args.action)?;
    let client = Client::login(&args.connect)?;
    let ok = run_and_print(&client, &sql, Output::Table)?;
    if let (true, Some(password)) = (ok, generated) {
        println!("generated password: {password}");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The SQL for `action`, and the password if one was generated.
fn statement(action: &UserAction) -> anyhow::Result<(String, Option<String>)> {
    let chosen = |given: &Option<String>| -> anyhow::Result<(String, Option<String>)> {
        match given {
            Some(password) => Ok((password.clone(), None)),
            None => {
                let password = generate_password(GENERATED_PASSWORD_CHARS)?;
                Ok((password.clone(), Some(password)))
            }
        }
    };
    Ok(match action {
        UserAction::Create {
            name,
            role,
            new_password,
        } => {
            let (password, generated) = chosen(new_password)?;
            let role = strand_broker::users::parse_role(role)?;
            let sql = format!(
                "CREATE USER {} WITH PASSWORD {} ROLE {role};",
                quote(name),
                quote(&password)
            );
            (sql, generated)
        }
        UserAction::List => ("SHOW USERS;".to_string(), None),
        UserAction::Passwd { name, new_password } => {
            let (password, generated) = chosen(new_password)?;
            let sql = format!(
                "ALTER USER {} SET PASSWORD {};",
                quote(name),
                quote(&password)
            );
            (sql, generated)
        }
    })
}

/// A SQL string literal: single quotes, with `'` doubled.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_quote_their_strings() {
        let create = UserAction::Create {
            name: "o'brien".into(),
            role: "DBA".into(),
            new_password: Some("p'w".into()),
        };
        let (sql, generated) = statement(&create).expect("valid");
        assert_eq!(sql, "CREATE USER 'o''brien' WITH PASSWORD 'p''w' ROLE dba;");
        assert_eq!(generated, None);

        let passwd = UserAction::Passwd {
            name: "alice".into(),
            new_password: None,
        };
        let (sql, generated) = statement(&passwd).expect("valid");
        let password = generated.expect("generated");
        assert_eq!(
            sql,
            format!("ALTER USER 'alice' SET PASSWORD '{password}';")
        );
        assert_eq!(
            statement(&UserAction::List).expect("valid").0,
            "SHOW USERS;"
        );

        let bad_role = UserAction::Create {
            name: "a".into(),
            role: "root".into(),
            new_password: None,
        };
        assert!(statement(&bad_role).is_err());
    }
}
