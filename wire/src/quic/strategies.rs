//! Proptest strategies for every QUIC message, shared by the codec's tests.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::*;

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn bytes() -> impl Strategy<Value = bytes::Bytes> {
    vec(any::<u8>(), 0..24).prop_map(bytes::Bytes::from)
}

fn partition() -> impl Strategy<Value = PartitionIndex> {
    any::<u32>().prop_map(PartitionIndex)
}

fn idempotence() -> impl Strategy<Value = Option<Idempotence>> {
    option::of((any::<u64>(), any::<u64>()).prop_map(|(p, b)| Idempotence {
        producer: ProducerId(p),
        batch: BatchSequence(b),
    }))
}

fn read_from() -> impl Strategy<Value = ReadFrom> {
    prop_oneof![
        Just(ReadFrom::Earliest),
        Just(ReadFrom::Latest),
        any::<u64>().prop_map(|s| ReadFrom::After(Seq(s))),
    ]
}

fn status() -> impl Strategy<Value = GroupStatus> {
    prop_oneof![
        Just(GroupStatus::Ok),
        Just(GroupStatus::UnknownMember),
        Just(GroupStatus::RebalanceInProgress),
        Just(GroupStatus::IllegalGeneration),
        Just(GroupStatus::UnknownTopic),
        Just(GroupStatus::NotAuthorized),
    ]
}

fn offsets() -> impl Strategy<Value = Vec<CommittedOffset>> {
    vec(
        (partition(), any::<u64>()).prop_map(|(partition, s)| CommittedOffset {
            partition,
            seq: Seq(s),
        }),
        0..4,
    )
}

fn auth() -> impl Strategy<Value = Message> {
    let password = (text(), text())
        .prop_map(|(username, password)| Credentials::Password { username, password });
    let jwt = text().prop_map(|token| Credentials::Jwt { token });
    prop_oneof![password, jwt].prop_map(|credentials| Message::Auth(Auth { credentials }))
}

fn produce() -> impl Strategy<Value = Message> {
    let partitioning = prop_oneof![
        Just(Partitioning::ByKeyHash),
        partition().prop_map(Partitioning::Explicit)
    ];
    let record = (bytes(), bytes()).prop_map(|(key, value)| ProduceRecord { key, value });
    let topic = (text(), partitioning, idempotence(), vec(record, 0..4)).prop_map(
        |(topic, partitioning, idempotence, records)| {
            Message::ProduceTopic(ProduceTopic {
                topic,
                partitioning,
                idempotence,
                records,
            })
        },
    );
    let table =
        (text(), idempotence(), vec(text(), 0..4)).prop_map(|(table, idempotence, rows_json)| {
            Message::ProduceTable(ProduceTable {
                table,
                idempotence,
                rows_json,
            })
        });
    let ack = (
        partition(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(|(partition, first, last, count, duplicate)| {
            Message::ProduceAck(ProduceAck {
                partition,
                first: Seq(first),
                last: Seq(last),
                count,
                duplicate,
            })
        });
    prop_oneof![topic, table, ack]
}

fn fetch() -> impl Strategy<Value = Message> {
    let request = (
        text(),
        partition(),
        read_from(),
        any::<[u32; 3]>(),
        any::<bool>(),
    )
        .prop_map(
            |(topic, partition, from, [records_max, bytes_max, wait_ms], tail)| {
                let fetch = Fetch {
                    topic,
                    partition,
                    from,
                    records_max,
                    bytes_max,
                    wait_ms,
                };
                if tail {
                    Message::Tail(fetch)
                } else {
                    Message::Fetch(fetch)
                }
            },
        );
    let records = (records(), any::<bool>()).prop_map(|(records, push)| {
        if push {
            Message::TailPush(records)
        } else {
            Message::FetchResponse(records)
        }
    });
    prop_oneof![request, records]
}

/// The payload of a `fetch_response` or `tail_push`.
pub(super) fn records() -> impl Strategy<Value = Records> {
    let record =
        (any::<u64>(), any::<u64>(), bytes(), bytes()).prop_map(|(s, t, key, value)| Record {
            seq: Seq(s),
            timestamp_ms: t,
            key,
            value,
        });
    (partition(), any::<u64>(), vec(record, 0..4)).prop_map(|(partition, high, records)| Records {
        partition,
        high_seq: Seq(high),
        records,
    })
}

fn group_member() -> impl Strategy<Value = GroupMember> {
    (text(), text(), any::<u32>()).prop_map(|(group, member, generation)| GroupMember {
        group,
        member: MemberId(member),
        generation: Generation(generation),
    })
}

fn group_messages() -> impl Strategy<Value = Message> {
    let join = (text(), text(), text(), any::<u32>()).prop_map(|(group, topic, member, ms)| {
        Message::GroupJoin(GroupJoin {
            group,
            topic,
            member: MemberId(member),
            session_timeout_ms: ms,
        })
    });
    let assignment = (
        status(),
        text(),
        any::<u32>(),
        vec(partition(), 0..5),
        offsets(),
        0..2u8,
    )
        .prop_map(
            |(status, member, generation, partitions, committed, which)| {
                let assignment = GroupAssignment {
                    status,
                    member: MemberId(member),
                    generation: Generation(generation),
                    partitions,
                    committed,
                };
                match which {
                    0 => Message::GroupJoinResponse(assignment),
                    _ => Message::GroupSyncResponse(assignment),
                }
            },
        );
    let named = (group_member(), 0..3u8).prop_map(|(member, which)| match which {
        0 => Message::GroupHeartbeat(member),
        1 => Message::GroupSync(member),
        _ => Message::GroupLeave(member),
    });
    let commit = (group_member(), offsets())
        .prop_map(|(member, offsets)| Message::GroupCommit(GroupCommit { member, offsets }));
    let reply = (status(), 0..3u8).prop_map(|(status, which)| {
        let reply = GroupReply { status };
        match which {
            0 => Message::GroupHeartbeatResponse(reply),
            1 => Message::GroupCommitResponse(reply),
            _ => Message::GroupLeaveResponse(reply),
        }
    });
    prop_oneof![join, assignment, named, commit, reply]
}

fn other() -> impl Strategy<Value = Message> {
    prop_oneof![
        (text(), text()).prop_map(|(username, role)| Message::AuthOk(AuthOk { username, role })),
        (text(), text()).prop_map(|(code, message)| Message::Error(ErrorReply { code, message })),
        (text(), text()).prop_map(|(sql, params_json)| Message::Sql(Sql { sql, params_json })),
        text().prop_map(|body_json| Message::SqlResult(SqlResult { body_json })),
    ]
}

pub(super) fn frame() -> impl Strategy<Value = Frame> {
    let message = prop_oneof![auth(), produce(), fetch(), group_messages(), other()];
    (any::<u64>(), message).prop_map(|(id, message)| Frame {
        request_id: RequestId(id),
        message,
    })
}
