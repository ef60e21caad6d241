//! [`TopicAccess`]: who may use a topic over QUIC. Administrators may use every topic; other
//! users need a grant naming it like a table (`GRANT INSERT, SELECT ON ns.topic`): INSERT to
//! produce, SELECT to fetch, tail or consume in a group.

use std::sync::Arc;

use strand_sql_view::{Name, TopicName};
use strand_wire::quic::codes;

use crate::session::Session;
use crate::tables::catalog::{Catalog, CatalogTopic};
use crate::users::{Privilege, Standing, UserDirectory};

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
        let granted_object = crate::users::TableName::new(format!("{namespace}.{topic}"));
        let found = self
            .catalog
            .topic(&TopicName { namespace, topic })
            .ok_or_else(unknown)?;
        let granted = granted_object
            .is_ok_and(|object| self.users.has_privilege(session.user(), &object, privilege));
        if session.role().is_admin() || granted {
            return Ok(found);
        }
        let text = format!(
            "{} has no {} privilege on topic {name}",
            session.user(),
            privilege.as_str()
        );
        Err((codes::FORBIDDEN, text))
    }

    /// Whether the session's user may still read topic `name` as the directory says now
    /// (its current role, not the session's): an open `tail` checks this after every user or
    /// grant change and before every push.
    pub(crate) fn still_readable(&self, session: &Session, name: &str) -> Result<(), Refusal> {
        let object = crate::users::TableName::new(name).ok();
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
            Standing::Dropped => Err((
                codes::USER_DROPPED,
                format!("user {} was dropped; the tail has ended", session.user()),
            )),
        }
    }

    /// Changes after every user or grant change (see [`UserDirectory::access_changes`]).
    pub(crate) fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.users.access_changes()
    }
}
