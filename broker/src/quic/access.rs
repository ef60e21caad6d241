//! [`TopicAccess`]: who may use a topic over QUIC. Administrators may use every topic; other
//! users need a grant naming it like a table (`GRANT INSERT, SELECT ON ns.topic`): INSERT to
//! produce, SELECT to fetch, tail or consume in a group.

use std::sync::Arc;

use strand_sql_view::{Name, TopicName};
use strand_wire::quic::codes;

use crate::session::Session;
use crate::tables::catalog::{Catalog, CatalogTopic};
use crate::users::{Privilege, UserDirectory};

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
}
