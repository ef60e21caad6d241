//! [`QuicHandlers`]: the broker's handler of each QUIC request kind, reached from a decoded
//! request by one `match` ([`QuicHandlers::serve`]): topics (`produce_topic`, `fetch`:
//! `topics.rs`; `tail`: `tail.rs`), consumer groups (`groups.rs`) and SQL with table produce
//! (`sql.rs`). Each call owns its request's stream: it writes zero or more frames with the
//! [`Responder`] and returns; the connection then ends the stream.

use std::sync::Arc;

use strand_wire::quic::{codes, Message};

use super::access::TopicAccess;
use super::frame_forward::{group_request_via_leader, FrameRunnerOnLeader};
use super::groups::GroupService;
use super::responder::{ReplyError, Responder};
use super::sql::SqlOverQuic;
use super::topics::TopicService;
use crate::catalog::Catalog;
use crate::cluster::forward::SqlForwarder;
use crate::config::GroupLimits;
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::session::Session;
use crate::topics::{GroupOffsets, TopicData};
use crate::users::UserDirectory;

/// The concrete services behind the QUIC listener, built by the composition root.
pub struct QuicHandlers {
    topics: Arc<TopicService>,
    topic_data: Arc<TopicData>,
    access: TopicAccess,
    groups: Arc<GroupService>,
    sql: SqlOverQuic,
    metrics: Arc<Metrics>,
    /// On a cluster member: where requests refused with `not_leader` are sent on.
    forwarder: Option<Arc<SqlForwarder>>,
}

/// What the QUIC handlers are built from: the broker's parts they serve.
pub struct QuicParts {
    pub catalog: Arc<Catalog>,
    pub topics: Arc<TopicData>,
    pub users: Arc<UserDirectory>,
    pub offsets: Arc<GroupOffsets>,
    pub engine: Arc<Engine>,
    /// Counts connections, streams and each topic's traffic.
    pub metrics: Arc<Metrics>,
    pub group_limits: GroupLimits,
}

impl QuicHandlers {
    pub fn new(parts: QuicParts) -> QuicHandlers {
        let QuicParts {
            catalog,
            topics,
            users,
            offsets,
            engine,
            metrics,
            group_limits,
        } = parts;
        let access = TopicAccess::new(catalog.clone(), users.clone());
        QuicHandlers {
            topics: Arc::new(TopicService::new(
                catalog,
                topics.clone(),
                users,
                metrics.clone(),
            )),
            topic_data: topics,
            groups: Arc::new(GroupService::new(access.clone(), offsets, group_limits)),
            access,
            sql: SqlOverQuic::new(engine),
            metrics,
            forwarder: None,
        }
    }

    /// The same handlers, forwarding `sql`, produces and consumer-group requests that fail
    /// with `not_leader` to the cluster's leader through `forwarder`.
    pub fn with_sql_forwarder(mut self, forwarder: Option<Arc<SqlForwarder>>) -> Self {
        if let Some(forwarder) = &forwarder {
            self.topics.forward_through(forwarder.clone());
        }
        self.forwarder = forwarder.clone();
        self.sql = self.sql.with_forwarder(forwarder);
        self
    }

    /// What produces a `produce_topic` other members forward to this one, as its user.
    pub fn frame_runner(&self, users: Arc<UserDirectory>) -> FrameRunnerOnLeader {
        FrameRunnerOnLeader::new(
            self.topics.clone(),
            self.sql.engine(),
            self.groups.clone(),
            users,
        )
    }

    /// The server's metrics, for the listener's connection and stream counts.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serves one request of an authenticated connection. Frames a client may not send
    /// (responses, pushes, a second `auth`) are answered `unexpected_frame`. `Err` only when
    /// writing the answer failed.
    pub(crate) async fn serve(
        &self,
        session: &Session,
        message: Message,
        reply: &mut Responder,
    ) -> Result<(), ReplyError> {
        match message {
            Message::ProduceTopic(request) => {
                self.topics.produce_topic(session, request, reply).await
            }
            Message::Fetch(request) => self.topics.fetch(session, request, reply).await,
            Message::Tail(request) => {
                let (topics, metrics) = (&self.topic_data, &*self.metrics);
                super::tail::tail(&self.access, topics, metrics, session, request, reply).await
            }
            Message::GroupJoin(_)
            | Message::GroupHeartbeat(_)
            | Message::GroupSync(_)
            | Message::GroupCommit(_)
            | Message::GroupLeave(_) => match &self.forwarder {
                None => self.groups.serve(session, message, reply).await,
                Some(forwarder) => {
                    group_request_via_leader(&self.groups, forwarder, session, message, reply).await
                }
            },
            Message::Sql(request) => self.sql.sql(session, request, reply).await,
            Message::ProduceTable(request) => self.sql.produce_table(session, request, reply).await,
            Message::Auth(_) => {
                let message = "the connection is already authenticated; open a new connection \
                               to change user";
                reply.error(codes::UNEXPECTED_FRAME, message).await
            }
            other => {
                let message = format!("`{}` is a server-to-client frame", other.name());
                reply.error(codes::UNEXPECTED_FRAME, message).await
            }
        }
    }
}
