//! The messages nodes send each other, one request and one response per QUIC stream: the
//! dialer writes a postcard-encoded [`PeerRequest`] and finishes its side; the listener
//! answers one [`PeerResponse`] and finishes. Sans-IO: encoding and decoding only, each
//! decode bounded by `CLUSTER_RPC_BYTES_MAX` (checked by the reader before it gets here).

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use super::forward::{ForwardedAnswer, ForwardedFrame, ForwardedFrames, ForwardedSql};
use super::members::{Member, MembershipChange, MembershipError};
use super::types::{ClusterTypes, NodeId};

/// The ALPN of node-to-node connections on the QUIC listener.
pub const CLUSTER_ALPN: &[u8] = b"strand-cluster/1";

/// Which Raft group a message is for: 0 is the meta group; data groups follow.
pub type GroupId = u32;

/// A message from one node to another: Raft's, or a forwarded SQL request.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Entries (or a heartbeat) from a leader.
    AppendEntries {
        /// The group.
        group: GroupId,
        /// openraft's request.
        rpc: AppendEntriesRequest<ClusterTypes>,
    },
    /// A candidate asks for a vote.
    Vote {
        /// The group.
        group: GroupId,
        /// openraft's request.
        rpc: VoteRequest<NodeId>,
    },
    /// A chunk of a snapshot from a leader.
    InstallSnapshot {
        /// The group.
        group: GroupId,
        /// openraft's request.
        rpc: InstallSnapshotRequest<ClusterTypes>,
    },
    /// A SQL request a member that does not lead sends on to the leader (`forward.rs`).
    ForwardSql(ForwardedSql),
    /// A QUIC request (a produce, a group request) a member that does not lead sends on to
    /// the leader. Last, so the older variants keep their postcard tags.
    ForwardFrame(ForwardedFrame),
    /// A membership change a member that does not lead sends on to the leader (last, for
    /// the tags).
    ForwardMembership(MembershipChange),
}

/// The answer to a [`PeerRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    /// To `AppendEntries`.
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// To `Vote`.
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// To `InstallSnapshot`.
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// The request could not be taken (a group this node does not have, a bad message).
    Refused(String),
    /// To `ForwardSql`: the leader's results or error. Last, so the older variants keep
    /// their postcard tags.
    ForwardedSql(ForwardedAnswer),
    /// To `ForwardFrame`: the frames the leader answered.
    ForwardedFrames(ForwardedFrames),
    /// To `ForwardMembership`: the members after the change, or why the leader did not
    /// make it.
    ForwardedMembership(Result<Vec<Member>, MembershipError>),
}

/// Why bytes are not a message.
#[derive(Debug, thiserror::Error)]
#[error("malformed cluster message: {0}")]
pub struct MalformedMessage(#[from] postcard::Error);

/// Encodes a message for the wire.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, MalformedMessage> {
    Ok(postcard::to_stdvec(message)?)
}

/// Decodes a message read from the wire.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, MalformedMessage> {
    Ok(postcard::from_bytes(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{LeaderId, Vote};
    use proptest::prelude::*;

    #[test]
    fn a_vote_round_trips() {
        let rpc = VoteRequest::new(Vote::new(3, 2), None);
        let bytes = encode(&PeerRequest::Vote { group: 0, rpc }).unwrap();
        let PeerRequest::Vote { group, rpc } = decode(&bytes).unwrap() else {
            panic!("not a vote");
        };
        assert_eq!(group, 0);
        assert_eq!(rpc.vote.leader_id, LeaderId::new(3, 2));
    }

    #[test]
    fn a_forwarded_request_and_its_answer_round_trip() {
        let request = ForwardedSql {
            user: "alice".to_string(),
            incarnation: 42,
            sql: "INSERT INTO app.t VALUES ($1)".to_string(),
            params_json: "[7]".to_string(),
            bigint_as_strings: true,
        };
        let bytes = encode(&PeerRequest::ForwardSql(request.clone())).unwrap();
        let PeerRequest::ForwardSql(decoded) = decode(&bytes).unwrap() else {
            panic!("not a forwarded request");
        };
        assert_eq!(decoded, request);
        let mut error = super::super::forward::ForwardedError::new("duplicate_key", "taken");
        error.position = Some((1, 8));
        error.statement = Some((2, 3));
        let answer = ForwardedAnswer::Failed(error);
        let bytes = encode(&PeerResponse::ForwardedSql(answer.clone())).unwrap();
        let PeerResponse::ForwardedSql(decoded) = decode(&bytes).unwrap() else {
            panic!("not a forwarded answer");
        };
        assert_eq!(decoded, answer);
    }

    #[test]
    fn a_forwarded_produce_and_its_frames_round_trip() {
        let request = ForwardedFrame {
            user: "bob".to_string(),
            incarnation: 7,
            frame: vec![1, 0, 3, 0, 9, 9],
        };
        let bytes = encode(&PeerRequest::ForwardFrame(request.clone())).unwrap();
        let PeerRequest::ForwardFrame(decoded) = decode(&bytes).unwrap() else {
            panic!("not a forwarded produce");
        };
        assert_eq!(decoded, request);
        let answer = ForwardedFrames {
            frames: vec![vec![1, 2], vec![], vec![3]],
        };
        let bytes = encode(&PeerResponse::ForwardedFrames(answer.clone())).unwrap();
        let PeerResponse::ForwardedFrames(decoded) = decode(&bytes).unwrap() else {
            panic!("not forwarded frames");
        };
        assert_eq!(decoded, answer);
        // The variants added last keep the earlier ones' tags: a forwarded SQL request still
        // encodes as it did.
        let sql = PeerRequest::ForwardSql(ForwardedSql {
            user: String::new(),
            incarnation: 0,
            sql: String::new(),
            params_json: String::new(),
            bigint_as_strings: false,
        });
        assert_eq!(encode(&sql).unwrap()[0], 3);
    }

    #[test]
    fn a_forwarded_membership_change_and_its_answer_round_trip() {
        let change = MembershipChange::Add {
            node: 4,
            addr: "127.0.0.1:7004".parse().unwrap(),
        };
        let bytes = encode(&PeerRequest::ForwardMembership(change.clone())).unwrap();
        // The fifth variant: added last, after the ones older members speak.
        assert_eq!(bytes[0], 5);
        let PeerRequest::ForwardMembership(decoded) = decode(&bytes).unwrap() else {
            panic!("not a forwarded membership change");
        };
        assert_eq!(decoded, change);
        let members = vec![Member {
            id: 4,
            addr: "127.0.0.1:7004".to_string(),
            role: "learner".to_string(),
        }];
        let bytes = encode(&PeerResponse::ForwardedMembership(Ok(members.clone()))).unwrap();
        let PeerResponse::ForwardedMembership(Ok(decoded)) = decode(&bytes).unwrap() else {
            panic!("not the members");
        };
        assert_eq!(decoded, members);
        let refused = PeerResponse::ForwardedMembership(Err(MembershipError::LastVoter(1)));
        let bytes = encode(&refused).unwrap();
        let PeerResponse::ForwardedMembership(Err(MembershipError::LastVoter(1))) =
            decode(&bytes).unwrap()
        else {
            panic!("not the leader's refusal");
        };
    }

    proptest! {
        /// Whatever a peer sends, decoding answers a message or an error, never a panic.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<PeerRequest>(&bytes);
            let _ = decode::<PeerResponse>(&bytes);
        }

        /// A forwarded request's variant tag followed by anything: an error or a message,
        /// never a panic (the strings' lengths are checked against the bytes there are).
        #[test]
        fn decoding_a_forwarded_request_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
            for tag in [3u8, 4] {
                let mut bytes = vec![tag];
                bytes.extend_from_slice(&tail);
                let _ = decode::<PeerRequest>(&bytes);
                let _ = decode::<PeerResponse>(&bytes);
            }
        }
    }
}
