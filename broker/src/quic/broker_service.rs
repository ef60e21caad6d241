//! [`BrokerService`]: the broker's [`QuicService`], one request kind to each part: topics
//! (`produce_topic`, `fetch`: `topics.rs`; `tail`: `tail.rs`), consumer groups (`groups.rs`)
//! and SQL with table produce (`sql.rs`).

use std::sync::Arc;

use strand_wire::quic::{
    Fetch, GroupCommit, GroupJoin, GroupMember, ProduceTable, ProduceTopic, Sql,
};

use super::access::TopicAccess;
use super::groups::GroupService;
use super::service::{Handled, QuicService, Responder};
use super::sql::SqlOverQuic;
use super::topics::TopicService;
use crate::session::Session;
use crate::sql::SqlEngine;
use crate::tables::catalog::Catalog;
use crate::topics::{GroupOffsets, TopicData};
use crate::users::UserDirectory;

pub struct BrokerService {
    topics: TopicService,
    topic_data: Arc<TopicData>,
    access: TopicAccess,
    groups: GroupService,
    sql: SqlOverQuic,
}

impl BrokerService {
    pub fn new(
        catalog: Arc<Catalog>,
        topics: Arc<TopicData>,
        users: Arc<UserDirectory>,
        offsets: Arc<GroupOffsets>,
        engine: Arc<dyn SqlEngine>,
        group_limits: super::groups::GroupLimits,
    ) -> BrokerService {
        let access = TopicAccess::new(catalog.clone(), users.clone());
        BrokerService {
            topics: TopicService::new(catalog, topics.clone(), users),
            topic_data: topics,
            groups: GroupService::new(access.clone(), offsets, group_limits),
            access,
            sql: SqlOverQuic::new(engine),
        }
    }
}

impl QuicService for BrokerService {
    fn produce_topic<'a>(
        &'a self,
        session: &'a Session,
        request: ProduceTopic,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        self.topics.produce_topic(session, request, reply)
    }

    fn produce_table<'a>(
        &'a self,
        session: &'a Session,
        request: ProduceTable,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        Box::pin(self.sql.produce_table(session, request, reply))
    }

    fn fetch<'a>(
        &'a self,
        session: &'a Session,
        request: Fetch,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        self.topics.fetch(session, request, reply)
    }

    fn tail<'a>(
        &'a self,
        session: &'a Session,
        request: Fetch,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        Box::pin(super::tail::tail(
            &self.access,
            &self.topic_data,
            session,
            request,
            reply,
        ))
    }

    fn group_join<'a>(
        &'a self,
        session: &'a Session,
        request: GroupJoin,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        Box::pin(self.groups.join(session, request, reply))
    }

    fn group_heartbeat<'a>(
        &'a self,
        session: &'a Session,
        request: GroupMember,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        Box::pin(self.groups.heartbeat(session, request, reply))
    }

    fn group_sync<'a>(
        &'a self,
        session: &'a Session,
        request: GroupMember,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        Box::pin(self.groups.sync(session, request, reply))
    }

    fn group_commit<'a>(
        &'a self,
        session: &'a Session,
        request: GroupCommit,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        Box::pin(self.groups.commit(session, request, reply))
    }

    fn group_leave<'a>(
        &'a self,
        session: &'a Session,
        request: GroupMember,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        Box::pin(self.groups.leave(session, request, reply))
    }

    fn sql<'a>(
        &'a self,
        session: &'a Session,
        request: Sql,
        reply: &'a mut Responder,
    ) -> Handled<'a> {
        Box::pin(self.sql.sql(session, request, reply))
    }
}
