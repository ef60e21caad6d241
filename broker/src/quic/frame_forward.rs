//! `produce_topic`, `produce_table` and consumer-group requests on a cluster member that does
//! not lead: sent on to the leader (`cluster/forward.rs`), whose answer frames become the
//! client's ([`forwarded_frame`]); and the leader's side, [`FrameRunnerOnLeader`], which runs
//! a forwarded request as its user.
//!
//! Only a produce refused with `not_leader` before anything was written is sent on (see
//! [`super::topics::ProduceAnswer`]), so the leader producing all of it writes nothing twice.
//! An idempotent producer's id and batch number travel in the frame: the leader's producer
//! state answers a retry of a forwarded batch as a duplicate. A group request is answered
//! `not_leader` before anything is looked at (`groups/leadership.rs`), so it is sent on whole;
//! coordinators live on the leader only, and a member's requests reach them through whichever
//! member it is connected to.

use std::sync::Arc;

use strand_wire::quic::{codes, decode_frame, DecodeStep, Frame, Message, RequestId};

use super::groups::GroupService;
use super::responder::{ReplyError, Responder};
use super::sql::table_produce_answer;
use super::topics::{error_message, TopicService};
use crate::cluster::forward::{
    ForwardError, ForwardedFrame, ForwardedFrameRun, ForwardedFrameRunner, ForwardedFrames,
    SqlForwarder,
};
use crate::engine::Engine;
use crate::forwarding::forwarded_session;
use crate::session::Session;
use crate::users::UserDirectory;

/// The frames to answer `request` (a `produce_topic` or `produce_table`) with, by the leader:
/// its answer, or `here` (this node's `not_leader`) when no other member is known to lead, or
/// `unavailable` when the leader did not answer (the produce may or may not have been written
/// there).
pub(super) async fn forwarded_frame(
    forwarder: &SqlForwarder,
    session: &Session,
    request: Message,
    here: Vec<Message>,
) -> Vec<Message> {
    let frame = Frame {
        request_id: RequestId(0),
        message: request,
    };
    // It arrived as a frame, so it encodes as one.
    let Ok(frame) = frame.to_bytes() else {
        return here;
    };
    let forwarded = ForwardedFrame {
        user: session.user().to_string(),
        incarnation: session.incarnation().0,
        frame,
    };
    match forwarder.forward_frame(forwarded).await {
        Ok(answer) => leaders_answer(answer),
        Err(ForwardError::NoLeader) => here,
        Err(error) => {
            tracing::warn!(%error, user = %session.user(), "a forwarded produce got no answer");
            let text = format!(
                "{error}; the produce was sent on to the leader and may or may not have been \
                 written there: send it again (an idempotent producer's retry is not written \
                 twice)"
            );
            vec![error_message(codes::UNAVAILABLE, text)]
        }
    }
}

/// Answers a consumer-group request on a cluster member: here if this member coordinates
/// groups, else the leader's answer (the request refused with `not_leader` here is sent on).
pub(super) async fn group_request_via_leader(
    groups: &GroupService,
    forwarder: &SqlForwarder,
    session: &Session,
    message: Message,
    reply: &mut Responder,
) -> Result<(), ReplyError> {
    let mut here = Responder::collecting(reply.request_id());
    groups.serve(session, message.clone(), &mut here).await?;
    let mut messages = here.into_messages();
    if is_not_leader(&messages) {
        messages = forwarded_frame(forwarder, session, message, messages).await;
    }
    relay(messages, reply).await
}

/// Whether an answer is this member's `not_leader` refusal.
fn is_not_leader(messages: &[Message]) -> bool {
    matches!(messages, [Message::Error(error)] if error.code == codes::NOT_LEADER)
}

/// Sends `messages` on `reply`; an `error` through [`Responder::error`], so a refusal for a
/// limit is counted as if it were this member's.
async fn relay(messages: Vec<Message>, reply: &mut Responder) -> Result<(), ReplyError> {
    for message in messages {
        match message {
            Message::Error(error) => reply.error(&error.code, error.message).await?,
            other => reply.send(other).await?,
        }
    }
    Ok(())
}

/// Whether the leader may answer a forwarded request with `message`: what a produce or a
/// group request is answered with.
fn is_relayed_answer(message: &Message) -> bool {
    matches!(
        message,
        Message::ProduceAck(_)
            | Message::Error(_)
            | Message::GroupJoinResponse(_)
            | Message::GroupHeartbeatResponse(_)
            | Message::GroupSyncResponse(_)
            | Message::GroupCommitResponse(_)
            | Message::GroupLeaveResponse(_)
    )
}

/// The leader's frames as messages for the client: `produce_ack`s, group responses and
/// `error`s only.
fn leaders_answer(answer: ForwardedFrames) -> Vec<Message> {
    if answer.frames.is_empty() {
        let text = "the leader is starting and does not take produces yet; send it again";
        return vec![error_message(codes::UNAVAILABLE, text)];
    }
    let mut messages = Vec::with_capacity(answer.frames.len());
    for bytes in &answer.frames {
        match decode_frame(bytes) {
            Ok(DecodeStep::Frame { frame, .. }) if is_relayed_answer(&frame.message) => {
                messages.push(frame.message);
            }
            _ => {
                // Members of one cluster run builds that speak the same frames.
                let text = "the leader answered a frame this member cannot relay";
                return vec![error_message(codes::UNAVAILABLE, text)];
            }
        }
    }
    messages
}

/// Runs what other members forward, as the user each names.
pub struct FrameRunnerOnLeader {
    topics: Arc<TopicService>,
    engine: Arc<Engine>,
    groups: Arc<GroupService>,
    users: Arc<UserDirectory>,
}

impl FrameRunnerOnLeader {
    /// Produces to topics through `topics` and to tables through `engine`, and answers group
    /// requests through `groups`, as the users of `users`.
    pub(super) fn new(
        topics: Arc<TopicService>,
        engine: Arc<Engine>,
        groups: Arc<GroupService>,
        users: Arc<UserDirectory>,
    ) -> Self {
        FrameRunnerOnLeader {
            topics,
            engine,
            groups,
            users,
        }
    }
}

impl ForwardedFrameRunner for FrameRunnerOnLeader {
    fn run_frame(&self, request: ForwardedFrame) -> ForwardedFrameRun {
        let (topics, engine) = (self.topics.clone(), self.engine.clone());
        let (groups, users) = (self.groups.clone(), self.users.clone());
        Box::pin(async move {
            // Answered here, never sent on again: a leader that no longer leads answers
            // `not_leader`, and the client gets that.
            let messages = match decoded(&users, &request) {
                Ok((session, Message::ProduceTopic(produce))) => {
                    let produce = Arc::new(produce);
                    topics.produce_answer(&session, produce).await.messages
                }
                Ok((session, Message::ProduceTable(produce))) => {
                    let produce = Arc::new(produce);
                    table_produce_answer(&engine, &session, produce)
                        .await
                        .messages
                }
                Ok((
                    session,
                    request @ (Message::GroupJoin(_)
                    | Message::GroupHeartbeat(_)
                    | Message::GroupSync(_)
                    | Message::GroupCommit(_)
                    | Message::GroupLeave(_)),
                )) => {
                    let mut answer = Responder::collecting(RequestId(0));
                    match groups.serve(&session, request, &mut answer).await {
                        Ok(()) => answer.into_messages(),
                        Err(error) => vec![error_message(codes::UNAVAILABLE, error.to_string())],
                    }
                }
                Ok(_) => vec![not_forwardable()],
                Err(refused) => vec![refused],
            };
            let frames = messages
                .into_iter()
                .filter_map(|message| {
                    let frame = Frame {
                        request_id: RequestId(0),
                        message,
                    };
                    frame.to_bytes().ok()
                })
                .collect();
            ForwardedFrames { frames }
        })
    }
}

fn not_forwardable() -> Message {
    let text = "a forwarded request is not one produce or consumer-group frame";
    error_message(codes::MALFORMED_FRAME, text)
}

/// The forwarded request's session and message, or the `error` frame to answer.
fn decoded(users: &UserDirectory, request: &ForwardedFrame) -> Result<(Session, Message), Message> {
    let session = forwarded_session(users, &request.user, request.incarnation)
        .map_err(|error| error_message(codes::USER_DROPPED, error.message))?;
    match decode_frame(&request.frame) {
        Ok(DecodeStep::Frame { frame, consumed }) if consumed == request.frame.len() => {
            Ok((session, frame.message))
        }
        _ => Err(not_forwardable()),
    }
}

#[cfg(test)]
mod tests {
    use strand_wire::quic::{
        GroupReply, GroupStatus, PartitionIndex, ProduceAck, ProduceTopic, Seq,
    };

    use super::*;

    fn encoded(message: Message) -> Vec<u8> {
        let frame = Frame {
            request_id: RequestId(0),
            message,
        };
        frame.to_bytes().unwrap()
    }

    fn code_of(messages: &[Message]) -> Option<&str> {
        match messages {
            [Message::Error(error)] => Some(error.code.as_str()),
            _ => None,
        }
    }

    #[test]
    fn the_leaders_acks_and_errors_are_relayed_and_nothing_else() {
        let ack = Message::ProduceAck(ProduceAck {
            partition: PartitionIndex(2),
            first: Seq(10),
            last: Seq(11),
            count: 2,
            duplicate: false,
        });
        let relayed = leaders_answer(ForwardedFrames {
            frames: vec![encoded(ack.clone()), encoded(ack.clone())],
        });
        assert_eq!(relayed, vec![ack.clone(), ack.clone()]);
        let refused = error_message(codes::OUT_OF_ORDER, "batch 1 after 2");
        let relayed = leaders_answer(ForwardedFrames {
            frames: vec![encoded(refused.clone())],
        });
        assert_eq!(relayed, vec![refused]);

        // No frames (a leader still starting), damaged bytes, or a frame that is no answer
        // to a produce: `unavailable`, never a panic or a relayed stray frame.
        for frames in [
            vec![],
            vec![vec![0xff; 7]],
            vec![encoded(ack.clone()), b"garbage".to_vec()],
            vec![encoded(Message::ProduceTopic(ProduceTopic {
                topic: "app.t".to_string(),
                partitioning: strand_wire::quic::Partitioning::ByKeyHash,
                idempotence: None,
                records: Vec::new(),
            }))],
        ] {
            let relayed = leaders_answer(ForwardedFrames { frames });
            assert_eq!(code_of(&relayed), Some(codes::UNAVAILABLE), "{relayed:?}");
        }
    }

    #[test]
    fn group_answers_are_relayed_and_only_not_leader_is_sent_on() {
        let reply = Message::GroupHeartbeatResponse(GroupReply {
            status: GroupStatus::RebalanceInProgress,
        });
        let relayed = leaders_answer(ForwardedFrames {
            frames: vec![encoded(reply.clone())],
        });
        assert_eq!(relayed, vec![reply.clone()]);

        assert!(is_not_leader(&[error_message(
            codes::NOT_LEADER,
            "node 2 is"
        )]));
        // An answer of this member's own (a refusal or a group reply) is the client's.
        assert!(!is_not_leader(&[error_message(codes::FORBIDDEN, "no")]));
        assert!(!is_not_leader(&[reply]));
        assert!(!is_not_leader(&[]));
    }
}
