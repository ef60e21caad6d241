use proptest::prelude::*;
use serde_json::json;

use super::*;

fn row() -> impl Strategy<Value = Row> {
    prop::collection::btree_map(
        "[a-z_]{1,6}",
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
        ],
        0..4,
    )
    .prop_map(|m| m.into_iter().collect())
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    let id = ".{0,10}";
    prop_oneof![
        (id, ".{0,8}").prop_map(|(user, role)| ServerMessage::AuthSuccess { user, role }),
        id.prop_map(|message| ServerMessage::AuthError { message }),
        (
            id,
            any::<u64>(),
            prop::collection::vec(("[a-z]{1,5}", "[A-Z]{1,6}"), 0..3),
            any::<bool>()
        )
            .prop_map(|(subscription_id, seq, schema, keyed)| {
                ServerMessage::SubscriptionAck {
                    subscription_id,
                    schema: schema
                        .into_iter()
                        .map(|(name, data_type)| ColumnSchema { name, data_type })
                        .collect(),
                    snapshot_end_seq: SeqText(seq),
                    resume: keyed.then_some(ResumeMode::Keyed),
                }
            }),
        (
            id,
            prop::collection::vec(row(), 0..3),
            any::<u64>(),
            any::<bool>(),
            any::<u64>()
        )
            .prop_map(|(subscription_id, rows, batch_num, has_more, seq)| {
                ServerMessage::InitialDataBatch {
                    subscription_id,
                    rows,
                    batch_control: BatchControl {
                        batch_num,
                        status: if has_more {
                            BatchStatus::Loading
                        } else {
                            BatchStatus::Ready
                        },
                        has_more,
                        snapshot_end_seq: SeqText(seq),
                    },
                }
            }),
        change(),
        (
            prop::option::of(id),
            "[a-z_]{1,12}",
            id,
            prop::option::of(any::<u64>())
        )
            .prop_map(
                |(subscription_id, code, message, lowest)| ServerMessage::Error {
                    subscription_id,
                    code,
                    message,
                    lowest_seq: lowest.map(SeqText),
                }
            ),
        Just(ServerMessage::Pong),
    ]
}

fn change() -> impl Strategy<Value = ServerMessage> {
    let kind = prop_oneof![
        Just(ChangeType::Insert),
        Just(ChangeType::Update),
        Just(ChangeType::Delete)
    ];
    (
        ".{0,10}",
        kind,
        prop::collection::vec(row(), 0..3),
        prop::option::of(prop::collection::vec(row(), 0..3)),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(subscription_id, change_type, rows, old_rows, seq)| {
            ServerMessage::Change {
                subscription_id,
                change_type,
                rows,
                old_rows,
                seq: seq.map(SeqText),
            }
        })
}

proptest! {
    #[test]
    fn server_messages_round_trip(message in server_message()) {
        let text = message.encode();
        prop_assert_eq!(ServerMessage::decode(&text).ok(), Some(message));
    }

    #[test]
    fn encode_change_is_the_serialized_change(message in change()) {
        let ServerMessage::Change { subscription_id, change_type, rows, old_rows, seq } = &message
        else { unreachable!("the strategy makes changes") };
        let rows_json = serde_json::to_string(rows).unwrap_or_default();
        let old_json = old_rows.as_ref().map(|o| serde_json::to_string(o).unwrap_or_default());
        let text = match seq {
            Some(seq) => encode_change_at(
                subscription_id, *change_type, &rows_json, old_json.as_deref(), seq.0,
            ),
            None => encode_change(subscription_id, *change_type, &rows_json, old_json.as_deref()),
        };
        prop_assert_eq!(&text, &message.encode());
    }

    #[test]
    fn client_messages_round_trip(
        id in ".{0,10}", sql in ".{0,30}", batch in prop::option::of(any::<u32>()),
        from in prop::option::of(any::<u64>()),
        bigint in prop::option::of(prop_oneof![Just(BigIntAs::Number), Just(BigIntAs::String)]),
    ) {
        for message in [
            ClientMessage::Subscribe { subscription: Subscription {
                id: id.clone(), sql: sql.clone(),
                options: SubscribeOptions {
                    batch_size: batch, from_seq_id: from.map(SeqText), bigint,
                    params: vec![json!(1), json!("x")],
                    as_of_seq: None,
                },
            } },
            ClientMessage::NextBatch { subscription_id: Some(id.clone()) },
            ClientMessage::Unsubscribe { subscription_id: id.clone() },
            ClientMessage::Authenticate { method: AuthMethod::Jwt, username: None,
                password: None, token: Some(sql.clone()) },
            ClientMessage::Ping,
        ] {
            prop_assert_eq!(ClientMessage::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn decoding_any_text_never_panics(text in ".{0,64}") {
        let _ = ClientMessage::decode(&text);
    }
}

#[test]
fn the_spec_examples_decode() {
    let subscribe = r#"{"type":"subscribe","subscription":{"id":"tickets","sql":"SELECT id, title, status, _seq FROM app.tickets WHERE status = 'open'","options":{"batch_size":1000,"from_seq_id":13001}}}"#;
    let Ok(ClientMessage::Subscribe { subscription }) = ClientMessage::decode(subscribe) else {
        panic!("subscribe did not decode");
    };
    assert_eq!(subscription.id, "tickets");
    assert_eq!(subscription.options.batch_size, Some(1000));
    assert_eq!(subscription.options.from_seq_id, Some(SeqText(13001)));
    let as_string = r#"{"type":"subscribe","subscription":{"id":"t","sql":"x","options":{"from_seq_id":"13001"}}}"#;
    let Ok(ClientMessage::Subscribe { subscription }) = ClientMessage::decode(as_string) else {
        panic!("subscribe with a string _seq did not decode");
    };
    assert_eq!(subscription.options.from_seq_id, Some(SeqText(13001)));
    let auth = r#"{"type":"authenticate","method":"basic","username":"alice","password":"pw"}"#;
    assert!(matches!(
        ClientMessage::decode(auth),
        Ok(ClientMessage::Authenticate {
            method: AuthMethod::Basic,
            ..
        })
    ));
}

#[test]
fn the_bigint_option_is_a_choice_of_two_words() {
    let decode = |bigint: &str| {
        let text = format!(
            r#"{{"type":"subscribe","subscription":{{"id":"t","sql":"x","options":{{"bigint":{bigint}}}}}}}"#
        );
        match ClientMessage::decode(&text) {
            Ok(ClientMessage::Subscribe { subscription }) => Ok(subscription.options.bigint),
            Ok(other) => panic!("decoded as {other:?}"),
            Err(error) => Err(error),
        }
    };
    assert_eq!(decode(r#""string""#), Ok(Some(BigIntAs::String)));
    assert_eq!(decode(r#""number""#), Ok(Some(BigIntAs::Number)));
    let absent =
        ClientMessage::decode(r#"{"type":"subscribe","subscription":{"id":"t","sql":"x"}}"#);
    assert!(
        matches!(&absent, Ok(ClientMessage::Subscribe { subscription }) if subscription.options.bigint.is_none()),
        "{absent:?}"
    );
    for wrong in [r#""float""#, "1", "null"] {
        let decoded = decode(wrong);
        match &decoded {
            Err(DecodeError::BadFields { message, .. }) => {
                assert!(
                    wrong != r#""float""# || message.contains("float"),
                    "{message}"
                )
            }
            // `null` is an absent option to serde's `Option`.
            Ok(None) if wrong == "null" => {}
            other => panic!("{wrong}: {other:?}"),
        }
    }
}

#[test]
fn decode_errors_say_what_is_wrong() {
    assert_eq!(
        ClientMessage::decode("{not json").map_err(|e| e.code()),
        Err(codes::INVALID_JSON)
    );
    assert_eq!(
        ClientMessage::decode("[1]").map_err(|e| e.code()),
        Err(codes::INVALID_JSON)
    );
    assert_eq!(ClientMessage::decode("{}"), Err(DecodeError::MissingType));
    assert_eq!(
        ClientMessage::decode(r#"{"type":"fly"}"#),
        Err(DecodeError::UnknownType("fly".into()))
    );
    let missing = ClientMessage::decode(r#"{"type":"subscribe"}"#);
    assert!(
        matches!(missing, Err(DecodeError::BadFields { .. })),
        "{missing:?}"
    );
    let negative =
        r#"{"type":"subscribe","subscription":{"id":"a","sql":"x","options":{"from_seq_id":-1}}}"#;
    assert!(matches!(
        ClientMessage::decode(negative),
        Err(DecodeError::BadFields { .. })
    ));
}

#[test]
fn seq_is_written_as_a_string() {
    let ack = ServerMessage::SubscriptionAck {
        subscription_id: "t".into(),
        schema: vec![],
        snapshot_end_seq: SeqText(u64::MAX),
        resume: None,
    };
    let value: Value = serde_json::from_str(&ack.encode()).unwrap_or_default();
    assert_eq!(value["snapshot_end_seq"], json!(u64::MAX.to_string()));
}
