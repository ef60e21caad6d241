//! `produce_topic` and `produce_table` on a cluster member that does not lead: sent on to the
//! leader (`cluster/forward.rs`), whose answer frames become the client's
//! ([`forwarded_produce`]); and the leader's side, [`ProduceRunnerOnLeader`], which produces a
//! forwarded request as its user.
//!
//! Only a produce refused with `not_leader` before anything was written is sent on (see
//! [`super::topics::ProduceAnswer`]), so the leader producing all of it writes nothing twice.
//! An idempotent producer's id and batch number travel in the frame: the leader's producer
//! state answers a retry of a forwarded batch as a duplicate.

use std::sync::Arc;

use strand_wire::quic::{codes, decode_frame, DecodeStep, Frame, Message, RequestId};

use super::sql::table_produce_answer;
use super::topics::{error_message, TopicService};
use crate::cluster::forward::{
    ForwardError, ForwardedFrames, ForwardedProduce, ForwardedProduceRun, ForwardedProduceRunner,
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
pub(super) async fn forwarded_produce(
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
    let forwarded = ForwardedProduce {
        user: session.user().to_string(),
        incarnation: session.incarnation().0,
        frame,
    };
    match forwarder.forward_produce(forwarded).await {
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

/// The leader's frames as messages for the client: `produce_ack`s and `error`s only.
fn leaders_answer(answer: ForwardedFrames) -> Vec<Message> {
    if answer.frames.is_empty() {
        let text = "the leader is starting and does not take produces yet; send it again";
        return vec![error_message(codes::UNAVAILABLE, text)];
    }
    let mut messages = Vec::with_capacity(answer.frames.len());
    for bytes in &answer.frames {
        match decode_frame(bytes) {
            Ok(DecodeStep::Frame { frame, .. })
                if matches!(frame.message, Message::ProduceAck(_) | Message::Error(_)) =>
            {
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

/// Produces what other members forward, as the user each names.
pub struct ProduceRunnerOnLeader {
    topics: Arc<TopicService>,
    engine: Arc<Engine>,
    users: Arc<UserDirectory>,
}

impl ProduceRunnerOnLeader {
    /// Produces to topics through `topics` and to tables through `engine`, as the users of
    /// `users`.
    pub(super) fn new(
        topics: Arc<TopicService>,
        engine: Arc<Engine>,
        users: Arc<UserDirectory>,
    ) -> Self {
        ProduceRunnerOnLeader {
            topics,
            engine,
            users,
        }
    }
}

impl ForwardedProduceRunner for ProduceRunnerOnLeader {
    fn produce(&self, request: ForwardedProduce) -> ForwardedProduceRun {
        let (topics, engine) = (self.topics.clone(), self.engine.clone());
        let users = self.users.clone();
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
                Ok(_) => vec![not_a_produce()],
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

fn not_a_produce() -> Message {
    let text = "a forwarded produce is not one produce_topic or produce_table frame";
    error_message(codes::MALFORMED_FRAME, text)
}

/// The forwarded request's session and message, or the `error` frame to answer.
fn decoded(
    users: &UserDirectory,
    request: &ForwardedProduce,
) -> Result<(Session, Message), Message> {
    let session = forwarded_session(users, &request.user, request.incarnation)
        .map_err(|error| error_message(codes::USER_DROPPED, error.message))?;
    match decode_frame(&request.frame) {
        Ok(DecodeStep::Frame { frame, consumed }) if consumed == request.frame.len() => {
            Ok((session, frame.message))
        }
        _ => Err(not_a_produce()),
    }
}

#[cfg(test)]
mod tests {
    use strand_wire::quic::{PartitionIndex, ProduceAck, ProduceTopic, Seq};

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
}
