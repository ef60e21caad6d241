//! [`TopicAccess`]: who may use a topic over QUIC. Administrators may use every topic; other
//! users need a grant naming it like a table (`GRANT INSERT, SELECT ON ns.topic`): INSERT to
//! produce, SELECT to fetch, tail or consume in a group.
//!
//! Checked against the directory as it is now, not the connection's session: a QUIC
//! connection lives long, and its user may have been given another role or dropped since it
//! authenticated (then `user_dropped`).

use std::sync::Arc;

use strand_log::LogError;

use strand_sql_view::{Name, Privilege, TableName, TopicName};
use strand_wire::quic::codes;

use crate::catalog::{Catalog, CatalogTopic};
use crate::session::Session;
use crate::topics::TopicError;
use crate::users::{privilege_word, table_name, Standing, UserDirectory};

/// Why a request is refused: a protocol error code and a message.
pub(crate) type Refusal = (&'static str, String);

#[derive(Clone)]
pub(crate) struct TopicAccess {
    catalog: Arc<Catalog>,
    users: Arc<UserDirectory>,
}

impl TopicAccess {
    pub(crate) fn new(catalog: Arc<Catalog>, users: Arc<UserDirectory>) -> TopicAccess {
        TopicAccess { catalog, users }
    }

    /// The topic `name` (`ns.topic`), if it exists and the session holds `privilege` on it.
    pub(crate) fn topic(
        &self,
        session: &Session,
        name: &str,
        privilege: Privilege,
    ) -> Result<CatalogTopic, Refusal> {
        let unknown = || (codes::UNKNOWN_TOPIC, format!("topic {name} does not exist"));
        let (namespace, topic) = name.split_once('.').ok_or_else(unknown)?;
        let (Ok(namespace), Ok(topic)) = (Name::new(namespace), Name::new(topic)) else {
            return Err(unknown());
        };
        // Grants name a topic as they name a table: `namespace.name`.
        let object = TableName {
            namespace: namespace.clone(),
            table: topic.clone(),
        };
        let found = self
            .catalog
            .topic(&TopicName { namespace, topic })
            .ok_or_else(unknown)?;
        let standing = self.users.standing(
            session.user(),
            session.incarnation(),
            Some(&object),
            privilege,
        );
        match standing {
            Standing::Allowed => Ok(found),
            Standing::Dropped => Err(dropped(session)),
            Standing::Revoked => {
                let text = format!(
                    "{} has no {} privilege on topic {name}",
                    session.user(),
                    privilege_word(privilege)
                );
                Err((codes::FORBIDDEN, text))
            }
        }
    }

    /// Whether the session's user may still read topic `name` as the directory says now
    /// (its current role, not the session's): an open `tail` checks this after every user or
    /// grant change and before every push.
    pub(crate) fn still_readable(&self, session: &Session, name: &str) -> Result<(), Refusal> {
        let object = table_name(name).ok();
        let standing = match &object {
            Some(object) => self.users.standing(
                session.user(),
                session.incarnation(),
                Some(object),
                Privilege::Select,
            ),
            None => Standing::Revoked,
        };
        match standing {
            Standing::Allowed => Ok(()),
            Standing::Revoked => Err((
                codes::PERMISSION_REVOKED,
                format!(
                    "{} no longer holds SELECT on topic {name}; the tail has ended",
                    session.user()
                ),
            )),
            Standing::Dropped => Err(dropped(session)),
        }
    }

    /// Changes after every user or grant change (see [`UserDirectory::access_changes`]).
    pub(crate) fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.users.access_changes()
    }
}

/// The refusal for a session whose user was dropped (or dropped and created again).
fn dropped(session: &Session) -> Refusal {
    let text = format!(
        "user {} was dropped since this connection authenticated",
        session.user()
    );
    (codes::USER_DROPPED, text)
}

/// The error frame for a topic operation that failed: its code and text.
pub(super) fn refusal(error: &TopicError) -> Refusal {
    let code = match error {
        TopicError::NoSuchPartition { .. } => codes::UNKNOWN_PARTITION,
        TopicError::OutOfOrder { .. } => codes::OUT_OF_ORDER,
        TopicError::EmptyBatch | TopicError::TooLargeForFrame { .. } => codes::LIMIT_EXCEEDED,
        // A record or batch the log's limits refuse: nothing was written.
        TopicError::Log(LogError::InvalidRecord(_) | LogError::InvalidBatch(_)) => {
            codes::LIMIT_EXCEEDED
        }
        TopicError::Log(log) if log.is_storage_full() => codes::STORAGE_FULL,
        TopicError::Log(strand_log::LogError::BatchTooLarge { .. }) => codes::LIMIT_EXCEEDED,
        TopicError::Log(_) | TopicError::Corrupt(_) => codes::STORAGE_ERROR,
        TopicError::Replication(error) => crate::topics::replication_code(error),
    };
    (code, error.to_string())
}
