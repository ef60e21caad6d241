//! [`Session`]: who is running a request, as established by authentication. The SQL engine
//! receives one with every call and decides from it what the statement may touch.
//!
//! It owns no credentials and checks nothing: the authenticator builds sessions only for
//! users that exist in the directory at the time of the request.

use crate::users::UserIncarnation;
use strand_sql_view::{Role, UserName};

/// How the client proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// `Authorization: Basic` (user name and password on every request).
    Basic,
    /// `Authorization: Bearer` with a token from `/v1/api/auth/login`.
    Token,
    /// Forwarded by a cluster member that does not lead: that member authenticated the
    /// user, and proved the cluster secret (`cluster/forward.rs`).
    Forwarded,
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    user: UserName,
    role: Role,
    /// Which user of the name authenticated: a user dropped and created again is another.
    incarnation: UserIncarnation,
    method: AuthMethod,
}

impl Session {
    /// A session for `user` as the directory has it now: its role and incarnation.
    pub fn new(
        user: UserName,
        role: Role,
        incarnation: UserIncarnation,
        method: AuthMethod,
    ) -> Session {
        Session {
            user,
            role,
            incarnation,
            method,
        }
    }

    /// Which user of the name this is; rows and tokens belong to one incarnation.
    pub fn incarnation(&self) -> UserIncarnation {
        self.incarnation
    }

    /// The same session with the user's current role (a stream re-checks after ALTER USER).
    pub fn with_role(&self, role: Role) -> Session {
        Session {
            role,
            ..self.clone()
        }
    }

    /// Whose rows the request reads and writes.
    pub fn user(&self) -> &UserName {
        &self.user
    }

    /// The user's role when the request was authenticated (read from the directory, not
    /// from the token, so a changed role applies to the next request).
    pub fn role(&self) -> Role {
        self.role
    }

    /// How the caller authenticated.
    pub fn method(&self) -> AuthMethod {
        self.method
    }
}
