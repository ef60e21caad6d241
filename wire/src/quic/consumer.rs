//! [`GroupConsumer`]: a member of a consumer group over a [`Client`]: it joins, reads its
//! assigned partitions from the group's committed offsets, heartbeats while it polls, follows
//! rebalances (sync on `rebalance_in_progress`, rejoin on `unknown_member`) and commits what
//! the caller has processed. Delivery is at least once: what was returned by [`poll`] but not
//! committed when a partition moves (or the member dies) is read again by the next owner.
//!
//! [`poll`]: GroupConsumer::poll

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::client::{Client, ClientError};
use super::{
    CommittedOffset, Fetch, Generation, GroupAssignment, GroupCommit, GroupJoin, GroupMember,
    GroupStatus, MemberId, Message, PartitionIndex, ReadFrom, Records, Seq,
};
use crate::limits::{
    CONSUMER_FETCH_BYTES_DEFAULT, CONSUMER_FETCH_RECORDS_DEFAULT, CONSUMER_HEARTBEATS_PER_SESSION,
    CONSUMER_REBALANCE_ATTEMPTS_MAX, CONSUMER_SESSION_TIMEOUT_MS_DEFAULT,
};

/// How a [`GroupConsumer`] reads.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// The consumer group: its members share the topic's partitions and its committed offsets.
    pub group: String,
    /// The topic the group consumes (one per group).
    pub topic: String,
    /// The group's session timeout (set by its first member).
    pub session_timeout_ms: u32,
    /// Where to start in a partition the group has never committed.
    pub start: ReadFrom,
    /// Records per partition per fetch.
    pub records_max: u32,
    /// Key+value bytes per partition per fetch (about).
    pub bytes_max: u32,
}

impl ConsumerConfig {
    /// A member of `group` reading `topic` from its earliest record, with the defaults of
    /// [`crate::limits`] for the session timeout and the fetch sizes.
    pub fn new(group: &str, topic: &str) -> ConsumerConfig {
        ConsumerConfig {
            group: group.to_string(),
            topic: topic.to_string(),
            session_timeout_ms: CONSUMER_SESSION_TIMEOUT_MS_DEFAULT,
            start: ReadFrom::Earliest,
            records_max: CONSUMER_FETCH_RECORDS_DEFAULT,
            bytes_max: CONSUMER_FETCH_BYTES_DEFAULT,
        }
    }
}

/// A change of this member's assignment, for callers that log or react to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The member's id in the group (new after a rejoin).
    pub member: MemberId,
    /// The group generation the assignment belongs to.
    pub generation: Generation,
    /// The partitions this member reads now.
    pub partitions: Vec<PartitionIndex>,
}

/// Reads a set of partitions of one topic from positions it keeps: all at once when records
/// are there, else long-polling all of them until the first has some. The building block of
/// [`GroupConsumer`] and of plain (group-less) consumers.
pub struct PartitionReader {
    client: Arc<Client>,
    topic: String,
    records_max: u32,
    bytes_max: u32,
    /// Where to read next in each partition.
    positions: BTreeMap<u32, ReadFrom>,
}

impl PartitionReader {
    /// A reader of `topic` over `client` with no partitions yet ([`Self::read_from`] adds
    /// them); each fetch asks for at most `records_max` records and about `bytes_max` key and
    /// value bytes per partition.
    pub fn new(client: Arc<Client>, topic: &str, records_max: u32, bytes_max: u32) -> Self {
        PartitionReader {
            client,
            topic: topic.to_string(),
            records_max,
            bytes_max,
            positions: BTreeMap::new(),
        }
    }

    /// Reads `partition` from `from` on (replacing its position).
    pub fn read_from(&mut self, partition: u32, from: ReadFrom) {
        self.positions.insert(partition, from);
    }

    /// The partitions read, ascending.
    pub fn partitions(&self) -> impl Iterator<Item = u32> + '_ {
        self.positions.keys().copied()
    }

    /// Records of the partitions: at once when some are there, else after up to `wait_ms` for
    /// the first to arrive. Positions move past what is returned.
    pub async fn poll(&mut self, wait_ms: u32) -> Result<Vec<Records>, ClientError> {
        self.poll_at_most(wait_ms, usize::MAX).await
    }

    /// As [`Self::poll`], but at most `records_max` records in all (lower partitions first).
    /// Positions move past what is returned only: the records fetched beyond it are read
    /// again by the next poll, so a caller that stops after N records has consumed exactly N.
    pub async fn poll_at_most(
        &mut self,
        wait_ms: u32,
        records_max: usize,
    ) -> Result<Vec<Records>, ClientError> {
        if self.positions.is_empty() || records_max == 0 {
            // Nothing to read (e.g. a group member without partitions): wait, do not spin.
            tokio::time::sleep(Duration::from_millis(u64::from(wait_ms))).await;
            return Ok(Vec::new());
        }
        let found = self.fetch_all(0).await?;
        let found = advance(&mut self.positions, found, records_max);
        if !found.is_empty() || wait_ms == 0 {
            return Ok(found);
        }
        let found = self.fetch_all(wait_ms).await?;
        Ok(advance(&mut self.positions, found, records_max))
    }

    /// Fetches every assigned partition concurrently; with `wait_ms`, returns as soon as one
    /// of them has records (the others are cancelled).
    async fn fetch_all(&mut self, wait_ms: u32) -> Result<Vec<Records>, ClientError> {
        let mut fetches = JoinSet::new();
        for (&partition, &from) in &self.positions {
            let client = self.client.clone();
            let fetch = Fetch {
                topic: self.topic.clone(),
                partition: PartitionIndex(partition),
                from,
                records_max: self.records_max,
                bytes_max: self.bytes_max,
                wait_ms,
            };
            fetches.spawn(async move { fetch_one(&client, fetch).await });
        }
        let mut fetched = Vec::new();
        while let Some(joined) = fetches.join_next().await {
            let records = joined.map_err(|e| ClientError::Unexpected(e.to_string()))??;
            let first_found = wait_ms > 0 && !records.records.is_empty();
            fetched.push(records);
            if first_found {
                break;
            }
        }
        fetches.abort_all();
        fetched.sort_by_key(|records| records.partition);
        Ok(fetched)
    }
}

/// A member of a consumer group: [`GroupConsumer::poll`] returns records of the partitions
/// the group assigned it, heartbeating and following rebalances on the way; the caller
/// commits what it has processed. See the module comment for the delivery guarantee.
pub struct GroupConsumer {
    client: Arc<Client>,
    config: ConsumerConfig,
    member: MemberId,
    generation: Generation,
    reader: PartitionReader,
    /// The last `_seq` returned by `poll` per partition, not yet committed.
    delivered: BTreeMap<u32, Seq>,
    next_heartbeat: Instant,
    /// Set when the assignment changed since the caller last asked.
    changed: Option<Assignment>,
}

impl GroupConsumer {
    /// Joins the group as a new member.
    pub async fn join(client: Arc<Client>, config: ConsumerConfig) -> Result<Self, ClientError> {
        let reader = PartitionReader::new(
            client.clone(),
            &config.topic,
            config.records_max,
            config.bytes_max,
        );
        let mut consumer = GroupConsumer {
            client,
            config,
            member: MemberId(String::new()),
            generation: Generation(0),
            reader,
            delivered: BTreeMap::new(),
            next_heartbeat: Instant::now(),
            changed: None,
        };
        consumer.rejoin().await?;
        Ok(consumer)
    }

    /// The member id the group gave this consumer.
    pub fn member(&self) -> &MemberId {
        &self.member
    }

    /// The current generation and assigned partitions.
    pub fn assignment(&self) -> Assignment {
        Assignment {
            member: self.member.clone(),
            generation: self.generation,
            partitions: self.reader.partitions().map(PartitionIndex).collect(),
        }
    }

    /// The assignment, if it changed since the last call (the first join counts).
    pub fn take_assignment_change(&mut self) -> Option<Assignment> {
        self.changed.take()
    }

    /// Records of the assigned partitions: at once when some are there, else after up to
    /// `wait` for the first to arrive (capped so the member keeps heartbeating). Heartbeats and
    /// follows rebalances as needed. What it returns counts as delivered: [`Self::commit`]
    /// commits it.
    pub async fn poll(&mut self, wait: Duration) -> Result<Vec<Records>, ClientError> {
        self.poll_at_most(wait, usize::MAX).await
    }

    /// As [`Self::poll`], but at most `records_max` records: a caller that processes only N
    /// more asks for N, so [`Self::commit`] never commits a record it did not process.
    pub async fn poll_at_most(
        &mut self,
        wait: Duration,
        records_max: usize,
    ) -> Result<Vec<Records>, ClientError> {
        self.heartbeat_if_due().await?;
        let cap = Duration::from_millis(u64::from(self.heartbeat_interval_ms()));
        let wait_ms = u32::try_from(wait.min(cap).as_millis()).unwrap_or(u32::MAX);
        let found = self.reader.poll_at_most(wait_ms, records_max).await?;
        for records in &found {
            if let Some(last) = records.records.last() {
                self.delivered.insert(records.partition.0, last.seq);
            }
        }
        Ok(found)
    }

    /// Commits every `_seq` delivered since the last commit. Returns `false` when the group
    /// refused because this member lost partitions in a rebalance (their uncommitted records
    /// will be read again by the new owner); the consumer has then already followed the
    /// rebalance.
    pub async fn commit(&mut self) -> Result<bool, ClientError> {
        if self.delivered.is_empty() {
            return Ok(true);
        }
        let offsets: Vec<CommittedOffset> = self
            .delivered
            .iter()
            .map(|(&partition, &seq)| CommittedOffset {
                partition: PartitionIndex(partition),
                seq,
            })
            .collect();
        let request = GroupCommit {
            member: self.member_request(),
            offsets: offsets.clone(),
        };
        let status = match self.one(Message::GroupCommit(request)).await? {
            Message::GroupCommitResponse(reply) => reply.status,
            other => return Err(unexpected(&other)),
        };
        if status == GroupStatus::Ok {
            self.delivered.clear();
            self.schedule_heartbeat();
            return Ok(true);
        }
        self.recover(status).await?;
        // What is still ours may be committed in the new generation.
        let reader = &self.reader;
        self.delivered
            .retain(|partition, _| reader.positions.contains_key(partition));
        Ok(false)
    }

    /// Leaves the group (after committing, if the caller wants that): its partitions move at
    /// once instead of after the session timeout.
    pub async fn leave(self) -> Result<(), ClientError> {
        match self.one(Message::GroupLeave(self.member_request())).await? {
            Message::GroupLeaveResponse(_) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn heartbeat_if_due(&mut self) -> Result<(), ClientError> {
        if Instant::now() < self.next_heartbeat {
            return Ok(());
        }
        let status = match self
            .one(Message::GroupHeartbeat(self.member_request()))
            .await?
        {
            Message::GroupHeartbeatResponse(reply) => reply.status,
            other => return Err(unexpected(&other)),
        };
        if status == GroupStatus::Ok {
            self.schedule_heartbeat();
            return Ok(());
        }
        self.recover(status).await
    }

    /// Follows a refusal: sync for a new assignment, or join again as a new member.
    async fn recover(&mut self, mut status: GroupStatus) -> Result<(), ClientError> {
        for _ in 0..CONSUMER_REBALANCE_ATTEMPTS_MAX {
            match status {
                GroupStatus::Ok => return Ok(()),
                GroupStatus::RebalanceInProgress | GroupStatus::IllegalGeneration => {
                    let reply = self.one(Message::GroupSync(self.member_request())).await?;
                    let Message::GroupSyncResponse(assignment) = reply else {
                        return Err(unexpected(&reply));
                    };
                    status = assignment.status;
                    if status == GroupStatus::Ok {
                        self.adopt(assignment);
                    }
                }
                GroupStatus::UnknownMember => return self.rejoin().await,
                GroupStatus::UnknownTopic | GroupStatus::NotAuthorized => {
                    return Err(ClientError::Unexpected(format!(
                        "group {} cannot consume topic {}: {status:?}",
                        self.config.group, self.config.topic
                    )))
                }
            }
        }
        Err(ClientError::Unexpected(format!(
            "group {} kept rebalancing",
            self.config.group
        )))
    }

    async fn rejoin(&mut self) -> Result<(), ClientError> {
        let join = GroupJoin {
            group: self.config.group.clone(),
            topic: self.config.topic.clone(),
            member: MemberId(String::new()),
            session_timeout_ms: self.config.session_timeout_ms,
        };
        let reply = self.one(Message::GroupJoin(join)).await?;
        let Message::GroupJoinResponse(assignment) = reply else {
            return Err(unexpected(&reply));
        };
        if assignment.status != GroupStatus::Ok {
            return Err(ClientError::Unexpected(format!(
                "joining group {} on topic {}: {:?}",
                self.config.group, self.config.topic, assignment.status
            )));
        }
        // A new member: nothing delivered before is ours to commit.
        self.reader.positions.clear();
        self.delivered.clear();
        self.adopt(assignment);
        Ok(())
    }

    /// Takes a new generation's assignment: partitions kept go on where they were, new ones
    /// start after the group's committed offset (or at `start`).
    fn adopt(&mut self, assignment: GroupAssignment) {
        let committed: BTreeMap<u32, Seq> = assignment
            .committed
            .iter()
            .map(|offset| (offset.partition.0, offset.seq))
            .collect();
        let mut positions = BTreeMap::new();
        for partition in &assignment.partitions {
            let p = partition.0;
            let from = self.reader.positions.get(&p).copied().unwrap_or_else(|| {
                committed
                    .get(&p)
                    .map_or(self.config.start, |&seq| ReadFrom::After(seq))
            });
            positions.insert(p, from);
        }
        self.reader.positions = positions;
        let reader = &self.reader;
        self.delivered
            .retain(|partition, _| reader.positions.contains_key(partition));
        self.member = assignment.member;
        self.generation = assignment.generation;
        self.changed = Some(self.assignment());
        self.schedule_heartbeat();
    }

    fn heartbeat_interval_ms(&self) -> u32 {
        (self.config.session_timeout_ms / CONSUMER_HEARTBEATS_PER_SESSION).max(1)
    }

    fn schedule_heartbeat(&mut self) {
        let interval = Duration::from_millis(u64::from(self.heartbeat_interval_ms()));
        self.next_heartbeat = Instant::now() + interval;
    }

    fn member_request(&self) -> GroupMember {
        GroupMember {
            group: self.config.group.clone(),
            member: self.member.clone(),
            generation: self.generation,
        }
    }

    async fn one(&self, message: Message) -> Result<Message, ClientError> {
        single_answer(&self.client, message).await
    }
}

/// Keeps at most `records_max` of the fetched records (the non-empty responses, in partition
/// order) and moves each partition's read position past what it keeps.
fn advance(
    positions: &mut BTreeMap<u32, ReadFrom>,
    fetched: Vec<Records>,
    records_max: usize,
) -> Vec<Records> {
    let mut budget = records_max;
    let mut found = Vec::with_capacity(fetched.len());
    for mut records in fetched {
        let partition = records.partition.0;
        let first = records.records.first().map(|record| record.seq);
        records.records.truncate(budget);
        budget -= records.records.len();
        match records.records.last() {
            Some(last) => {
                positions.insert(partition, ReadFrom::After(last.seq));
                found.push(records);
            }
            // `Latest` means "after the end when first asked": pin it, or records that arrive
            // between two polls would be skipped. Records fetched but not kept are read again:
            // pin to just before the first of them.
            None => {
                if let Some(from @ ReadFrom::Latest) = positions.get_mut(&partition) {
                    *from = match first {
                        Some(first) => ReadFrom::After(Seq(first.0.saturating_sub(1))),
                        None => ReadFrom::After(records.high_seq),
                    };
                }
            }
        }
    }
    found
}

async fn fetch_one(client: &Client, fetch: Fetch) -> Result<Records, ClientError> {
    match single_answer(client, Message::Fetch(fetch)).await? {
        Message::FetchResponse(records) => Ok(records),
        other => Err(unexpected(&other)),
    }
}

/// The one answer of a request; an `error` frame becomes [`ClientError::Rejected`].
pub async fn single_answer(client: &Client, message: Message) -> Result<Message, ClientError> {
    let frames = client.request(message).await?;
    match frames.into_iter().next().map(|frame| frame.message) {
        Some(Message::Error(error)) => Err(ClientError::Rejected(error)),
        Some(message) => Ok(message),
        None => Err(ClientError::Unexpected("no answer".to_string())),
    }
}

fn unexpected(message: &Message) -> ClientError {
    ClientError::Unexpected(format!("unexpected {}", message.name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quic::Record;

    fn records(partition: u32, seqs: &[u64]) -> Records {
        Records {
            partition: PartitionIndex(partition),
            high_seq: Seq(seqs.last().copied().unwrap_or(0)),
            records: seqs
                .iter()
                .map(|&seq| Record {
                    seq: Seq(seq),
                    timestamp_ms: 0,
                    key: Default::default(),
                    value: Default::default(),
                })
                .collect(),
        }
    }

    fn seqs(found: &[Records]) -> Vec<(u32, Vec<u64>)> {
        found
            .iter()
            .map(|r| (r.partition.0, r.records.iter().map(|r| r.seq.0).collect()))
            .collect()
    }

    #[test]
    fn at_most_n_records_are_returned_and_only_they_are_passed() {
        let mut positions = BTreeMap::from([
            (0, ReadFrom::Earliest),
            (1, ReadFrom::After(Seq(3))),
            (2, ReadFrom::Latest),
        ]);
        let fetched = vec![
            records(0, &[10, 11, 12, 13]),
            records(1, &[20, 21]),
            records(2, &[30]),
        ];
        let found = advance(&mut positions, fetched, 3);
        assert_eq!(seqs(&found), vec![(0, vec![10, 11, 12])]);
        assert_eq!(
            positions,
            BTreeMap::from([
                (0, ReadFrom::After(Seq(12))),
                (1, ReadFrom::After(Seq(3))),
                // Pinned just before the record it did not return.
                (2, ReadFrom::After(Seq(29))),
            ])
        );
        let fetched = vec![records(0, &[13]), records(1, &[20, 21]), records(2, &[])];
        let found = advance(&mut positions, fetched, usize::MAX);
        assert_eq!(seqs(&found), vec![(0, vec![13]), (1, vec![20, 21])]);
        assert_eq!(positions[&1], ReadFrom::After(Seq(21)));
        assert_eq!(positions[&2], ReadFrom::After(Seq(29)));
    }

    #[test]
    fn an_empty_latest_partition_is_pinned_to_its_end() {
        let mut positions = BTreeMap::from([(0, ReadFrom::Latest)]);
        let mut empty = records(0, &[]);
        empty.high_seq = Seq(7);
        assert!(advance(&mut positions, vec![empty], 5).is_empty());
        assert_eq!(positions[&0], ReadFrom::After(Seq(7)));
    }
}
