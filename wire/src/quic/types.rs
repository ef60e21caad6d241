//! Newtypes and small shared values of the QUIC messages, with their payload layouts. Parse,
//! don't validate: a decoded value of these types is already in range.

use super::buf::{put_u32, put_u64, put_u8, Reader};
use super::error::PayloadError;

/// The id a client gives each request; every response and push repeats it. Unique per
/// connection while the request is open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// A `_seq`: the Snowflake id the server assigns each record of a partition, in append order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

/// The index of a partition within a topic, from 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionIndex(pub u32);

/// A producer's id for idempotent produce, chosen by the client (random 64 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProducerId(pub u64);

/// A producer's batch counter: a retried batch carries the same value as the original.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchSequence(pub u64);

/// A consumer group's generation, raised by every rebalance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(pub u32);

/// A member's id within a group, issued by the server on join; empty asks for a new one.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub String);

/// Producer id and batch sequence: a batch retried with the same pair is acknowledged with its
/// original range and written once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Idempotence {
    /// The producer.
    pub producer: ProducerId,
    /// The batch.
    pub batch: BatchSequence,
}

impl Idempotence {
    /// Layout: present u8 (0/1), then producer id u64 and batch sequence u64 when present.
    pub(crate) fn encode_option(value: &Option<Idempotence>, out: &mut Vec<u8>) {
        match value {
            None => put_u8(out, 0),
            Some(v) => {
                put_u8(out, 1);
                put_u64(out, v.producer.0);
                put_u64(out, v.batch.0);
            }
        }
    }

    pub(crate) fn decode_option(r: &mut Reader<'_>) -> Result<Option<Idempotence>, PayloadError> {
        if !r.bool("idempotence")? {
            return Ok(None);
        }
        Ok(Some(Idempotence {
            producer: ProducerId(r.u64("producer_id")?),
            batch: BatchSequence(r.u64("batch_sequence")?),
        }))
    }
}

/// Where a fetch or tail starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadFrom {
    /// The oldest retained record.
    Earliest,
    /// Only records appended after the request arrives.
    Latest,
    /// Records with a `_seq` greater than this one (a committed offset).
    After(Seq),
}

impl ReadFrom {
    /// Layout: tag u8 (0 earliest, 1 latest, 2 after), then `_seq` u64 for `after`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ReadFrom::Earliest => put_u8(out, 0),
            ReadFrom::Latest => put_u8(out, 1),
            ReadFrom::After(seq) => {
                put_u8(out, 2);
                put_u64(out, seq.0);
            }
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<ReadFrom, PayloadError> {
        match r.u8("from")? {
            0 => Ok(ReadFrom::Earliest),
            1 => Ok(ReadFrom::Latest),
            2 => Ok(ReadFrom::After(Seq(r.u64("from_seq")?))),
            tag => Err(PayloadError::BadTag { field: "from", tag }),
        }
    }
}

/// How a topic produce picks its partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Partitioning {
    /// Each record goes to the partition its key hashes to (the server's hash).
    ByKeyHash,
    /// Every record of the batch goes to this partition.
    Explicit(PartitionIndex),
}

impl Partitioning {
    /// Layout: tag u8 (0 by key hash, 1 explicit), then partition u32 for `explicit`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Partitioning::ByKeyHash => put_u8(out, 0),
            Partitioning::Explicit(p) => {
                put_u8(out, 1);
                put_u32(out, p.0);
            }
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Partitioning, PayloadError> {
        match r.u8("partitioning")? {
            0 => Ok(Partitioning::ByKeyHash),
            1 => Ok(Partitioning::Explicit(PartitionIndex(r.u32("partition")?))),
            tag => Err(PayloadError::BadTag {
                field: "partitioning",
                tag,
            }),
        }
    }
}

/// The outcome of a group request. Anything but `Ok` tells the member what to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupStatus {
    /// Done.
    Ok,
    /// The member id is not (or no longer) in the group: join again with an empty id.
    UnknownMember,
    /// A rebalance is running: sync to learn the new assignment.
    RebalanceInProgress,
    /// The generation is not the group's current one: sync, and do not commit.
    IllegalGeneration,
    /// The group's topic does not exist.
    UnknownTopic,
    /// The user may not consume this topic.
    NotAuthorized,
}

impl GroupStatus {
    const ALL: [GroupStatus; 6] = [
        GroupStatus::Ok,
        GroupStatus::UnknownMember,
        GroupStatus::RebalanceInProgress,
        GroupStatus::IllegalGeneration,
        GroupStatus::UnknownTopic,
        GroupStatus::NotAuthorized,
    ];

    /// The wire number (u8), as in `PROTOCOL.md`.
    pub fn number(self) -> u8 {
        match self {
            GroupStatus::Ok => 0,
            GroupStatus::UnknownMember => 1,
            GroupStatus::RebalanceInProgress => 2,
            GroupStatus::IllegalGeneration => 3,
            GroupStatus::UnknownTopic => 4,
            GroupStatus::NotAuthorized => 5,
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<GroupStatus, PayloadError> {
        let tag = r.u8("status")?;
        GroupStatus::ALL
            .into_iter()
            .find(|s| s.number() == tag)
            .ok_or(PayloadError::BadTag {
                field: "status",
                tag,
            })
    }
}
