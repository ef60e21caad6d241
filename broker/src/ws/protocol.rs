//! The gateway's per-connection protocol state, without I/O: it decodes each text frame,
//! enforces "authenticate first", the subscription-id rules and the limits, and says what the
//! connection must do. The async shell (`connection.rs`) does it and reports back
//! ([`Protocol::authenticated`], [`Protocol::attach`], [`Protocol::subscription_ended`]).
//!
//! It also keeps the connection's subscriptions (`S`, opaque here) by id: one table for both,
//! because an idle subscription's memory is mostly such bookkeeping.

use std::collections::HashMap;
use std::sync::Arc;

use strand_log::Seq;
use strand_sql_view::BigIntJson;
use strand_wire::{codes, BigIntAs, ClientMessage, ServerMessage, Subscription};

use crate::auth::Credentials;
use strand_wire::limits::SUBSCRIPTION_ID_BYTES_MAX;

use crate::limits::{
    SNAPSHOT_BATCH_ROWS_DEFAULT, SNAPSHOT_BATCH_ROWS_MAX, SQL_PARAMS_MAX,
    SUBSCRIPTIONS_PER_CONNECTION_MAX,
};

/// What the connection must do about one client frame.
#[derive(Debug)]
pub enum Step {
    /// Answer with this message (errors, pong).
    Reply(ServerMessage),
    /// Check these credentials; on success call [`Protocol::authenticated`].
    Authenticate(Credentials),
    /// Start a subscription (its id is now taken).
    Subscribe(SubscribeRequest),
    /// `None`: the client named no subscription; the one with a batch pending is meant.
    NextBatch {
        id: Option<String>,
    },
    Unsubscribe {
        id: String,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// Shared with the protocol's set of active ids (one allocation per subscription).
    pub id: Arc<str>,
    pub sql: String,
    pub batch_size: usize,
    /// Resume after this `_seq` instead of taking a snapshot.
    pub from_seq: Option<Seq>,
    /// How the rows' BIGINT values are written.
    pub bigint: BigIntJson,
    /// The values of `$1`, `$2`, ... in `sql`.
    pub params: Vec<serde_json::Value>,
    /// AS OF: the snapshot as of this past `_seq`, then every change after it.
    pub as_of: Option<Seq>,
}

#[derive(Debug)]
pub struct Protocol<S> {
    authenticated: bool,
    /// Subscriptions active on this connection by id; `None` while one is starting.
    subscriptions: HashMap<Arc<str>, Option<S>>,
}

impl<S> Protocol<S> {
    /// A connection that authenticated on the upgrade request is authenticated from the start.
    pub fn new(authenticated: bool) -> Protocol<S> {
        Protocol {
            authenticated,
            subscriptions: HashMap::new(),
        }
    }

    pub fn authenticated(&mut self) {
        self.authenticated = true;
    }

    /// The subscription `id` (started by a [`Step::Subscribe`]) is running as `subscription`.
    pub fn attach(&mut self, id: &str, subscription: S) {
        if let Some(slot) = self.subscriptions.get_mut(id) {
            *slot = Some(subscription);
        }
    }

    pub fn subscription_mut(&mut self, id: &str) -> Option<&mut S> {
        self.subscriptions.get_mut(id)?.as_mut()
    }

    /// The id of the first running subscription `matches` accepts.
    pub fn find(&self, mut matches: impl FnMut(&S) -> bool) -> Option<Arc<str>> {
        self.subscriptions
            .iter()
            .find(|(_, s)| s.as_ref().is_some_and(&mut matches))
            .map(|(id, _)| id.clone())
    }

    /// The ids of every running subscription `matches` accepts.
    pub fn filter_ids(&self, mut matches: impl FnMut(&S) -> bool) -> Vec<Arc<str>> {
        self.subscriptions
            .iter()
            .filter(|(_, s)| s.as_ref().is_some_and(&mut matches))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// A subscription is over (unsubscribed, failed, or its connection's end): its id is free.
    pub fn subscription_ended(&mut self, id: &str) -> Option<S> {
        self.subscriptions.remove(id).flatten()
    }

    /// Every running subscription, removed (the connection is ending).
    pub fn take_all(&mut self) -> Vec<S> {
        self.subscriptions.drain().filter_map(|(_, s)| s).collect()
    }

    /// A binary frame: the gateway speaks JSON text only.
    pub fn on_binary(&self) -> Step {
        Step::Reply(ServerMessage::error(
            None,
            codes::INVALID_MESSAGE,
            "binary frames are not accepted; send JSON text",
        ))
    }

    pub fn on_text(&mut self, text: &str) -> Step {
        let message = match ClientMessage::decode(text) {
            Ok(message) => message,
            Err(error) => {
                let id = error.subscription_id();
                return Step::Reply(ServerMessage::error(id, error.code(), error.to_string()));
            }
        };
        match message {
            ClientMessage::Authenticate { .. } if self.authenticated => {
                let text = "this connection is already authenticated";
                Step::Reply(ServerMessage::error(
                    None,
                    codes::ALREADY_AUTHENTICATED,
                    text,
                ))
            }
            ClientMessage::Authenticate {
                username,
                password,
                token,
                method,
            } => match credentials(method, username, password, token) {
                Ok(credentials) => Step::Authenticate(credentials),
                Err(message) => Step::Reply(ServerMessage::AuthError { message }),
            },
            _ if !self.authenticated => {
                let text = "authenticate first: {\"type\":\"authenticate\", ...}";
                Step::Reply(ServerMessage::error(None, codes::NOT_AUTHENTICATED, text))
            }
            ClientMessage::Ping => Step::Reply(ServerMessage::Pong),
            ClientMessage::Subscribe { subscription } => self.subscribe(subscription),
            ClientMessage::NextBatch {
                subscription_id: None,
            } => Step::NextBatch { id: None },
            ClientMessage::NextBatch {
                subscription_id: Some(id),
            } => self.known(&id).unwrap_or(Step::NextBatch { id: Some(id) }),
            ClientMessage::Unsubscribe { subscription_id } => {
                self.known(&subscription_id).unwrap_or(Step::Unsubscribe {
                    id: subscription_id,
                })
            }
        }
    }

    fn subscribe(&mut self, subscription: Subscription) -> Step {
        let Subscription { id, sql, options } = subscription;
        let refuse =
            |code: &str, text: String| Step::Reply(ServerMessage::error(Some(&id), code, text));
        if id.is_empty() || id.len() > SUBSCRIPTION_ID_BYTES_MAX {
            let text = format!("a subscription id has 1 to {SUBSCRIPTION_ID_BYTES_MAX} bytes");
            return refuse(codes::INVALID_MESSAGE, text);
        }
        if self.subscriptions.contains_key(id.as_str()) {
            let text = format!("subscription '{id}' is already active on this connection");
            return refuse(codes::DUPLICATE_SUBSCRIPTION, text);
        }
        if self.subscriptions.len() >= SUBSCRIPTIONS_PER_CONNECTION_MAX {
            let text =
                format!("at most {SUBSCRIPTIONS_PER_CONNECTION_MAX} subscriptions per connection");
            return refuse(codes::LIMIT_EXCEEDED, text);
        }
        let batch_size = match options.batch_size {
            None => SNAPSHOT_BATCH_ROWS_DEFAULT,
            Some(n) if (1..=SNAPSHOT_BATCH_ROWS_MAX).contains(&(n as usize)) => n as usize,
            Some(n) => {
                let text = format!("batch_size {n}: use 1 to {SNAPSHOT_BATCH_ROWS_MAX}");
                return refuse(codes::LIMIT_EXCEEDED, text);
            }
        };
        if options.params.len() > SQL_PARAMS_MAX {
            let text = format!("more than {SQL_PARAMS_MAX} params");
            return refuse(codes::LIMIT_EXCEEDED, text);
        }
        if options.as_of_seq.is_some() && options.from_seq_id.is_some() {
            let text = "as_of_seq and from_seq_id exclude each other: one starts with a \
                        snapshot, the other resumes without one";
            return refuse(codes::INVALID_MESSAGE, text.to_owned());
        }
        let id: Arc<str> = Arc::from(id);
        self.subscriptions.insert(id.clone(), None);
        Step::Subscribe(SubscribeRequest {
            id,
            sql,
            batch_size,
            from_seq: options.from_seq_id.map(|s| Seq(s.0)),
            bigint: match options.bigint {
                None | Some(BigIntAs::Number) => BigIntJson::Number,
                Some(BigIntAs::String) => BigIntJson::String,
            },
            params: options.params,
            as_of: options.as_of_seq.map(|s| Seq(s.0)),
        })
    }

    /// `Some(error)` if no subscription `id` is active.
    fn known(&self, id: &str) -> Option<Step> {
        if self.subscriptions.contains_key(id) {
            return None;
        }
        let text = format!("no subscription '{id}' on this connection");
        Some(Step::Reply(ServerMessage::error(
            Some(id),
            codes::UNKNOWN_SUBSCRIPTION,
            text,
        )))
    }
}

fn credentials(
    method: strand_wire::AuthMethod,
    username: Option<String>,
    password: Option<String>,
    token: Option<String>,
) -> Result<Credentials, String> {
    match method {
        strand_wire::AuthMethod::Basic => match (username, password) {
            (Some(username), Some(password)) => Ok(Credentials::Basic { username, password }),
            _ => Err("method basic needs username and password".to_owned()),
        },
        strand_wire::AuthMethod::Jwt => match token {
            Some(token) => Ok(Credentials::Bearer(token)),
            None => Err("method jwt needs token".to_owned()),
        },
    }
}

#[cfg(test)]
mod tests;
