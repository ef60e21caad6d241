//! Payloads of the consumer-group messages: join, heartbeat, sync, commit, leave and their
//! responses. The membership state machine lives in the broker; this is only their layout.

use super::buf::{put_len, put_text, put_u32, put_u64, put_u8, Reader};
use super::error::PayloadError;
use super::message::Payload;
use super::types::{Generation, GroupStatus, MemberId, PartitionIndex, Seq};
use crate::limits::{FRAME_BYTES_MAX, NAME_BYTES_MAX, PARTITIONS_PER_MESSAGE_MAX};

/// Bytes of one partition in a list: its index, u32.
const PARTITION_BYTES: usize = 4;
/// Bytes of one committed offset: partition u32, seq u64.
const OFFSET_BYTES: usize = 12;

// The largest group frame, an assignment (status, member id, generation, then as many
// partitions and offsets as a message may hold), fits a frame: every list the decoder accepts
// can be answered.
const _: () = assert!(
    1 + (4 + NAME_BYTES_MAX)
        + 4
        + 2 * 4
        + PARTITIONS_PER_MESSAGE_MAX * (PARTITION_BYTES + OFFSET_BYTES)
        <= FRAME_BYTES_MAX
);

fn put_partitions(out: &mut Vec<u8>, partitions: &[PartitionIndex]) {
    put_len(out, partitions.len());
    for p in partitions {
        put_u32(out, p.0);
    }
}

fn read_partitions(r: &mut Reader<'_>) -> Result<Vec<PartitionIndex>, PayloadError> {
    let count = r.count("partitions", PARTITION_BYTES, PARTITIONS_PER_MESSAGE_MAX)?;
    let mut partitions = Vec::with_capacity(count);
    for _ in 0..count {
        partitions.push(PartitionIndex(r.u32("partition")?));
    }
    Ok(partitions)
}

fn put_offsets(out: &mut Vec<u8>, offsets: &[CommittedOffset]) {
    put_len(out, offsets.len());
    for offset in offsets {
        put_u32(out, offset.partition.0);
        put_u64(out, offset.seq.0);
    }
}

fn read_offsets(r: &mut Reader<'_>) -> Result<Vec<CommittedOffset>, PayloadError> {
    let count = r.count("offsets", OFFSET_BYTES, PARTITIONS_PER_MESSAGE_MAX)?;
    let mut offsets = Vec::with_capacity(count);
    for _ in 0..count {
        offsets.push(CommittedOffset {
            partition: PartitionIndex(r.u32("partition")?),
            seq: Seq(r.u64("seq")?),
        });
    }
    Ok(offsets)
}

/// `group_join`: join (or rejoin) a group consuming one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupJoin {
    /// The group.
    pub group: String,
    /// The topic the group consumes.
    pub topic: String,
    /// The member's id from an earlier join, or empty for a new member.
    pub member: MemberId,
    /// Without a heartbeat for this long the member is removed and its partitions move.
    pub session_timeout_ms: u32,
}

impl Payload for GroupJoin {
    fn encode(&self, out: &mut Vec<u8>) {
        put_text(out, &self.group);
        put_text(out, &self.topic);
        put_text(out, &self.member.0);
        put_u32(out, self.session_timeout_ms);
    }

    fn decode(r: &mut Reader<'_>) -> Result<GroupJoin, PayloadError> {
        Ok(GroupJoin {
            group: r.name("group")?,
            topic: r.name("topic")?,
            member: MemberId(r.name("member")?),
            session_timeout_ms: r.u32("session_timeout_ms")?,
        })
    }
}

/// `group_join_response` and `group_sync_response`: the member's id, the group's generation
/// and the partitions this member owns in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupAssignment {
    /// `Ok`, or why not.
    pub status: GroupStatus,
    /// The member's id.
    pub member: MemberId,
    /// The generation the assignment belongs to.
    pub generation: Generation,
    /// The partitions assigned to this member.
    pub partitions: Vec<PartitionIndex>,
    /// The group's committed offset of each assigned partition that has one; the member reads
    /// `After(seq)` there and from `Earliest` elsewhere.
    pub committed: Vec<CommittedOffset>,
}

impl Payload for GroupAssignment {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u8(out, self.status.number());
        put_text(out, &self.member.0);
        put_u32(out, self.generation.0);
        put_partitions(out, &self.partitions);
        put_offsets(out, &self.committed);
    }

    fn decode(r: &mut Reader<'_>) -> Result<GroupAssignment, PayloadError> {
        Ok(GroupAssignment {
            status: GroupStatus::decode(r)?,
            member: MemberId(r.name("member")?),
            generation: Generation(r.u32("generation")?),
            partitions: read_partitions(r)?,
            committed: read_offsets(r)?,
        })
    }
}

/// `group_heartbeat`, `group_sync` and `group_leave`: a member names itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMember {
    /// The group.
    pub group: String,
    /// The member.
    pub member: MemberId,
    /// The generation the member believes current (ignored by `group_leave`).
    pub generation: Generation,
}

impl Payload for GroupMember {
    fn encode(&self, out: &mut Vec<u8>) {
        put_text(out, &self.group);
        put_text(out, &self.member.0);
        put_u32(out, self.generation.0);
    }

    fn decode(r: &mut Reader<'_>) -> Result<GroupMember, PayloadError> {
        Ok(GroupMember {
            group: r.name("group")?,
            member: MemberId(r.name("member")?),
            generation: Generation(r.u32("generation")?),
        })
    }
}

/// `group_heartbeat_response`, `group_commit_response`, `group_leave_response`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupReply {
    /// `Ok`, or why not (`RebalanceInProgress` on a heartbeat: sync now).
    pub status: GroupStatus,
}

impl Payload for GroupReply {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u8(out, self.status.number());
    }

    fn decode(r: &mut Reader<'_>) -> Result<GroupReply, PayloadError> {
        Ok(GroupReply {
            status: GroupStatus::decode(r)?,
        })
    }
}

/// A committed offset: the member has processed everything up to and including `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The partition.
    pub partition: PartitionIndex,
    /// The last processed `_seq`; a restarted member reads `After(seq)`.
    pub seq: Seq,
}

/// `group_commit`: store offsets durably for (group, partition).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupCommit {
    /// The member committing, in its generation.
    pub member: GroupMember,
    /// The offsets.
    pub offsets: Vec<CommittedOffset>,
}

impl Payload for GroupCommit {
    fn encode(&self, out: &mut Vec<u8>) {
        self.member.encode(out);
        put_offsets(out, &self.offsets);
    }

    fn decode(r: &mut Reader<'_>) -> Result<GroupCommit, PayloadError> {
        let member = GroupMember::decode(r)?;
        let offsets = read_offsets(r)?;
        Ok(GroupCommit { member, offsets })
    }
}
