//! Consumer groups need SELECT on their topic: a user without the grant is refused with
//! `not_authorized` (join) and learns nothing about the group; with the grant it joins and
//! commits; once the grant is revoked its heartbeats and commits are refused. A group consumes
//! one topic: a join naming another is refused while the group has members, and the group is
//! rebound once they have left.

use std::sync::Arc;

use strand_tests::{bearer, sql_ok, ServerOptions, StrandServer};
use strand_wire::quic::client::{Client, ClientError};
use strand_wire::quic::consumer::{single_answer, ConsumerConfig, GroupConsumer};
use strand_wire::quic::{codes, GroupJoin, GroupMember, GroupStatus, MemberId, Message};

async fn connect(server: &StrandServer, user: &str, password: &str) -> Arc<Client> {
    Arc::new(server.quic_client(user, password).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_need_select_on_the_topic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = StrandServer::start(
        &dir.path().join("data"),
        &ServerOptions::with_admin_password("pw"),
    );
    let admin = bearer(&server, "admin", "pw");
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app;
         CREATE TOPIC app.events WITH (PARTITIONS = 2);
         CREATE USER 'erin' WITH PASSWORD 'erin-pw' ROLE user;
         CREATE USER 'frank' WITH PASSWORD 'frank-pw' ROLE user;
         GRANT SELECT ON app.events TO 'erin'",
        &[],
    );
    let frank = connect(&server, "frank", "frank-pw").await;
    let join = GroupJoin {
        group: "g".into(),
        topic: "app.events".into(),
        member: MemberId(String::new()),
        session_timeout_ms: 5_000,
    };
    let answer = single_answer(&frank, Message::GroupJoin(join.clone()))
        .await
        .expect("answer");
    let Message::GroupJoinResponse(refused) = answer else {
        panic!("group_join_response expected, got {answer:?}");
    };
    assert_eq!(refused.status, GroupStatus::NotAuthorized);
    assert!(refused.partitions.is_empty() && refused.member.0.is_empty());

    let erin = connect(&server, "erin", "erin-pw").await;
    let mut config = ConsumerConfig::new("g", "app.events");
    config.session_timeout_ms = 5_000;
    let mut consumer = GroupConsumer::join(erin.clone(), config)
        .await
        .expect("erin joins");
    assert_eq!(consumer.assignment().partitions.len(), 2);
    assert!(consumer.commit().await.expect("nothing to commit is fine"));

    // Frank cannot act for erin's member even knowing its id.
    let as_erin = GroupMember {
        group: "g".into(),
        member: consumer.member().clone(),
        generation: consumer.assignment().generation,
    };
    let answer = single_answer(&frank, Message::GroupLeave(as_erin.clone()))
        .await
        .expect("answer");
    assert!(
        matches!(&answer, Message::GroupLeaveResponse(r) if r.status == GroupStatus::NotAuthorized),
        "{answer:?}"
    );

    sql_ok(
        &server,
        &admin,
        "REVOKE SELECT ON app.events FROM 'erin'",
        &[],
    );
    let answer = single_answer(&erin, Message::GroupHeartbeat(as_erin))
        .await
        .expect("answer");
    assert!(
        matches!(&answer, Message::GroupHeartbeatResponse(r) if r.status == GroupStatus::NotAuthorized),
        "{answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_consumes_one_topic_while_it_has_members() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = StrandServer::start(
        &dir.path().join("data"),
        &ServerOptions::with_admin_password("pw"),
    );
    let admin = bearer(&server, "admin", "pw");
    sql_ok(
        &server,
        &admin,
        "CREATE NAMESPACE app;
         CREATE TOPIC app.a WITH (PARTITIONS = 2);
         CREATE TOPIC app.b WITH (PARTITIONS = 3)",
        &[],
    );
    let client = connect(&server, "admin", "pw").await;
    let config = |topic: &str| {
        let mut config = ConsumerConfig::new("shared-name", topic);
        config.session_timeout_ms = 5_000;
        config
    };
    let on_a = GroupConsumer::join(client.clone(), config("app.a"))
        .await
        .expect("join a");
    let join_b = GroupJoin {
        group: "shared-name".into(),
        topic: "app.b".into(),
        member: MemberId(String::new()),
        session_timeout_ms: 5_000,
    };
    let refused = single_answer(&client, Message::GroupJoin(join_b)).await;
    match refused {
        Err(ClientError::Rejected(error)) => {
            assert_eq!(error.code, codes::INVALID_REQUEST);
            assert!(error.message.contains("app.a"), "{error:?}");
        }
        other => panic!("another topic is refused, got {other:?}"),
    }

    on_a.leave().await.expect("leave");
    let on_b = GroupConsumer::join(client.clone(), config("app.b"))
        .await
        .expect("rebound to b once empty");
    assert_eq!(on_b.assignment().partitions.len(), 3);
}
