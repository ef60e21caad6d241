use strand_wire::codes;

use super::*;

fn code_of(step: &Step) -> Option<&str> {
    match step {
        Step::Reply(ServerMessage::Error { code, .. }) => Some(code),
        _ => None,
    }
}

const SUBSCRIBE: &str =
    r#"{"type":"subscribe","subscription":{"id":"t","sql":"SELECT * FROM a.b"}}"#;

#[test]
fn nothing_but_authenticate_before_authentication() {
    let mut protocol = Protocol::<()>::new(false);
    assert_eq!(
        code_of(&protocol.on_text(SUBSCRIBE)),
        Some(codes::NOT_AUTHENTICATED)
    );
    let next = r#"{"type":"next_batch","subscription_id":"t"}"#;
    assert_eq!(
        code_of(&protocol.on_text(next)),
        Some(codes::NOT_AUTHENTICATED)
    );
    let ping = r#"{"type":"ping"}"#;
    assert_eq!(
        code_of(&protocol.on_text(ping)),
        Some(codes::NOT_AUTHENTICATED)
    );
    let auth = r#"{"type":"authenticate","method":"jwt","token":"x"}"#;
    assert!(matches!(
        protocol.on_text(auth),
        Step::Authenticate(Credentials::Bearer(_))
    ));
    protocol.authenticated();
    assert_eq!(
        code_of(&protocol.on_text(auth)),
        Some(codes::ALREADY_AUTHENTICATED)
    );
    assert!(matches!(protocol.on_text(SUBSCRIBE), Step::Subscribe(_)));
    assert!(matches!(
        protocol.on_text(ping),
        Step::Reply(ServerMessage::Pong)
    ));
}

#[test]
fn authenticate_without_its_fields_is_an_auth_error() {
    let mut protocol = Protocol::<()>::new(false);
    let basic = r#"{"type":"authenticate","method":"basic","username":"a"}"#;
    assert!(matches!(
        protocol.on_text(basic),
        Step::Reply(ServerMessage::AuthError { .. })
    ));
}

#[test]
fn ids_are_unique_while_active_and_free_after() {
    let mut protocol = Protocol::<()>::new(true);
    let Step::Subscribe(request) = protocol.on_text(SUBSCRIBE) else {
        panic!("first subscribe starts");
    };
    assert_eq!(request.batch_size, SNAPSHOT_BATCH_ROWS_DEFAULT);
    assert_eq!(request.from_seq, None);
    assert_eq!(
        code_of(&protocol.on_text(SUBSCRIBE)),
        Some(codes::DUPLICATE_SUBSCRIPTION)
    );
    let next = r#"{"type":"next_batch","subscription_id":"t"}"#;
    assert!(matches!(protocol.on_text(next), Step::NextBatch { .. }));
    protocol.subscription_ended("t");
    assert_eq!(
        code_of(&protocol.on_text(next)),
        Some(codes::UNKNOWN_SUBSCRIPTION)
    );
    let unsubscribe = r#"{"type":"unsubscribe","subscription_id":"t"}"#;
    assert_eq!(
        code_of(&protocol.on_text(unsubscribe)),
        Some(codes::UNKNOWN_SUBSCRIPTION)
    );
    assert!(matches!(protocol.on_text(SUBSCRIBE), Step::Subscribe(_)));
}

#[test]
fn limits_are_enforced() {
    let mut protocol = Protocol::<()>::new(true);
    for size in [0, SNAPSHOT_BATCH_ROWS_MAX + 1] {
        let text = format!(
            r#"{{"type":"subscribe","subscription":{{"id":"b","sql":"x","options":{{"batch_size":{size}}}}}}}"#
        );
        assert_eq!(
            code_of(&protocol.on_text(&text)),
            Some(codes::LIMIT_EXCEEDED),
            "{size}"
        );
    }
    for n in 0..SUBSCRIPTIONS_PER_CONNECTION_MAX {
        let text = format!(r#"{{"type":"subscribe","subscription":{{"id":"s{n}","sql":"x"}}}}"#);
        assert!(matches!(protocol.on_text(&text), Step::Subscribe(_)), "{n}");
    }
    assert_eq!(
        code_of(&protocol.on_text(SUBSCRIBE)),
        Some(codes::LIMIT_EXCEEDED)
    );
    let resume = r#"{"type":"subscribe","subscription":{"id":"","sql":"x"}}"#;
    assert_eq!(
        code_of(&protocol.on_text(resume)),
        Some(codes::INVALID_MESSAGE)
    );
}

#[test]
fn bad_frames_get_their_codes() {
    let mut protocol = Protocol::<()>::new(true);
    assert_eq!(
        code_of(&protocol.on_text("{nope")),
        Some(codes::INVALID_JSON)
    );
    assert_eq!(
        code_of(&protocol.on_text("{}")),
        Some(codes::INVALID_MESSAGE)
    );
    assert_eq!(
        code_of(&protocol.on_text(r#"{"type":"x"}"#)),
        Some(codes::UNKNOWN_TYPE)
    );
    assert_eq!(code_of(&protocol.on_binary()), Some(codes::INVALID_MESSAGE));
    let resume = r#"{"type":"subscribe","subscription":{"id":"r","sql":"x","options":{"from_seq_id":"42"}}}"#;
    let Step::Subscribe(request) = protocol.on_text(resume) else {
        panic!("resume subscribes");
    };
    assert_eq!(request.from_seq, Some(Seq(42)));
}

/// Issue 16, defect 10: a misspelt subscription option (`batchsize`) was ignored silently, so
/// the client got the default batch size without knowing why. Unknown options are refused,
/// with the subscription's id and the option's name, and no subscription is started.
#[test]
fn an_unknown_subscription_option_is_refused_with_the_id_and_the_name() {
    let mut protocol = Protocol::<()>::new(true);
    let misspelt = r#"{"type":"subscribe","subscription":{"id":"t","sql":"SELECT * FROM a.b",
        "options":{"batchsize":10}}}"#;
    let step = protocol.on_text(misspelt);
    let Step::Reply(ServerMessage::Error {
        subscription_id,
        code,
        message,
        ..
    }) = step
    else {
        panic!("refused, got {step:?}");
    };
    assert_eq!(code, codes::INVALID_MESSAGE);
    assert_eq!(subscription_id.as_deref(), Some("t"));
    assert!(message.contains("batchsize"), "{message}");
    // The id was not taken: the corrected message subscribes.
    let fixed = r#"{"type":"subscribe","subscription":{"id":"t","sql":"SELECT * FROM a.b",
        "options":{"batch_size":10}}}"#;
    assert!(matches!(protocol.on_text(fixed), Step::Subscribe(_)));
}

/// Issue 16, defect 10: `next_batch` without `subscription_id` was refused even when only one
/// subscription was loading. The protocol passes it on without an id; the connection picks
/// the one subscription with a batch pending.
#[test]
fn next_batch_without_an_id_is_passed_on() {
    let mut protocol = Protocol::<()>::new(true);
    let step = protocol.on_text(r#"{"type":"next_batch"}"#);
    assert!(matches!(step, Step::NextBatch { id: None }), "{step:?}");
    let step = protocol.on_text(r#"{"type":"next_batch","subscription_id":"nope"}"#);
    assert_eq!(code_of(&step), Some(codes::UNKNOWN_SUBSCRIPTION));
}
