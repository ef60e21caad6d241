//! Concurrent read-modify-write UPDATEs of one row lose nothing: each UPDATE reads and writes
//! its row under the partition's write lock, so `qty = qty + 1` from several clients at once
//! adds up exactly.
//!
//! Regression: UPDATE first scanned without the lock and appended afterwards, so two clients
//! could both read version n and both write n + 1 (a lost update).

use std::sync::Arc;

use serde_json::json;
use strand_tests::{rows, sql_ok, AdminServer};

const CLIENTS: usize = 4;
const UPDATES_PER_CLIENT: usize = 25;

#[test]
fn concurrent_updates_lose_nothing() {
    let AdminServer {
        server,
        admin,
        dir: _dir,
    } = AdminServer::start();
    let server = Arc::new(server);
    let setup = "CREATE NAMESPACE app; \
        CREATE TABLE app.counters (id BIGINT PRIMARY KEY, qty BIGINT) WITH (TYPE = 'SHARED'); \
        INSERT INTO app.counters (id, qty) VALUES (1, 0)";
    sql_ok(&server, &admin, setup, &[]);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (server, admin) = (server.clone(), admin.clone());
            std::thread::spawn(move || {
                for _ in 0..UPDATES_PER_CLIENT {
                    let update = "UPDATE app.counters SET qty = qty + 1 WHERE id = 1";
                    sql_ok(&server, &admin, update, &[]);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
    let counted = rows(
        &server,
        &admin,
        "SELECT qty FROM app.counters WHERE id = 1",
        &[],
    );
    let expected = (CLIENTS * UPDATES_PER_CLIENT) as i64;
    assert_eq!(counted, vec![json!({ "qty": expected })]);
}
