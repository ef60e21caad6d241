//! The gateway's per-connection protocol state, without I/O: it decodes each text frame,
//! enforces "authenticate first", the subscription-id rules and the limits, and says what the
//! connection must do. The async shell (`connection.rs`) does it and reports back
//! ([`Protocol::authenticated`], [`Protocol::subscription_ended`]).

use std::collections::HashSet;

use strand_log::Seq;
use strand_wire::{codes, ClientMessage, ServerMessage, Subscription};

use crate::auth::Credentials;
use crate::limits::{
    SNAPSHOT_BATCH_ROWS_DEFAULT, SNAPSHOT_BATCH_ROWS_MAX, SUBSCRIPTIONS_PER_CONNECTION_MAX,
    SUBSCRIPTION_ID_BYTES_MAX,
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
    NextBatch {
        id: String,
    },
    Unsubscribe {
        id: String,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub struct SubscribeRequest {
    pub id: String,
    pub sql: String,
    pub batch_size: usize,
    /// Resume after this `_seq` instead of taking a snapshot.
    pub from_seq: Option<Seq>,
}

#[derive(Debug, Default)]
pub struct Protocol {
    authenticated: bool,
    /// Ids of subscriptions that are active (or starting) on this connection.
    ids: HashSet<String>,
}

impl Protocol {
    /// A connection that authenticated on the upgrade request is authenticated from the start.
    pub fn new(authenticated: bool) -> Protocol {
        Protocol {
            authenticated,
            ids: HashSet::new(),
        }
    }

    pub fn authenticated(&mut self) {
        self.authenticated = true;
    }

    /// A subscription is over (unsubscribed, failed, or its connection's end): its id is free.
    pub fn subscription_ended(&mut self, id: &str) {
        self.ids.remove(id);
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
                return Step::Reply(ServerMessage::error(None, error.code(), error.to_string()))
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
            ClientMessage::NextBatch { subscription_id } => {
                self.known(&subscription_id).unwrap_or(Step::NextBatch {
                    id: subscription_id,
                })
            }
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
        if self.ids.contains(&id) {
            let text = format!("subscription '{id}' is already active on this connection");
            return refuse(codes::DUPLICATE_SUBSCRIPTION, text);
        }
        if self.ids.len() >= SUBSCRIPTIONS_PER_CONNECTION_MAX {
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
        self.ids.insert(id.clone());
        Step::Subscribe(SubscribeRequest {
            id,
            sql,
            batch_size,
            from_seq: options.from_seq_id.map(|s| Seq(s.0)),
        })
    }

    /// `Some(error)` if no subscription `id` is active.
    fn known(&self, id: &str) -> Option<Step> {
        if self.ids.contains(id) {
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
