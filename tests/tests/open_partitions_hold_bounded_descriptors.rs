//! Issue 17, defect 5 (the descriptors of open partitions): with `--open-partitions-max 16`,
//! 100 SHARED tables (one partition each, all kept by the server's table cache) are written,
//! read and written again, and the server's open descriptors stay within its count after
//! start plus the bound plus a small slack. Every row is there. (600 subscribed users used to
//! hold 1,236 descriptors: one per partition, however many.)

use serde_json::json;
use strand_tests::{bearer, rows, sql_ok, ServerOptions, StrandServer, ADMIN_PASSWORD};

const TABLES: usize = 100;
const OPEN_PARTITIONS_MAX: usize = 16;
/// Descriptors the server may open besides segment files meanwhile (HTTP connections, a
/// sealed segment being mapped, the catalog's and users' partitions, the runtime's).
const DESCRIPTOR_SLACK: usize = 24;

fn server_descriptors(server: &StrandServer) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .expect("the server's /proc/PID/fd")
        .count()
}

#[test]
fn open_partitions_hold_bounded_descriptors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions {
        args: vec![
            "--open-partitions-max".into(),
            OPEN_PARTITIONS_MAX.to_string(),
        ],
        ..ServerOptions::with_admin_password(ADMIN_PASSWORD)
    };
    let server = StrandServer::start(dir.path(), &options);
    let admin = bearer(&server, "admin", ADMIN_PASSWORD);
    sql_ok(&server, &admin, "CREATE NAMESPACE app", &[]);
    let baseline = server_descriptors(&server);
    let bound = baseline + OPEN_PARTITIONS_MAX + DESCRIPTOR_SLACK;
    let check = |at: &str| {
        let open = server_descriptors(&server);
        assert!(
            open <= bound,
            "{at}: the server holds {open} descriptors, bound {bound}"
        );
    };
    let ddl: Vec<String> = (0..TABLES)
        .map(|i| {
            format!("CREATE TABLE app.t{i} (id BIGINT PRIMARY KEY, v TEXT) WITH (TYPE = 'SHARED')")
        })
        .collect();
    sql_ok(&server, &admin, &ddl.join(";\n"), &[]);
    for round in 0..2 {
        for i in 0..TABLES {
            let insert = format!("INSERT INTO app.t{i} (id, v) VALUES ($1, $2)");
            sql_ok(
                &server,
                &admin,
                &insert,
                &[json!(round), json!(format!("t{i} r{round}"))],
            );
            if i % 10 == 0 {
                check(&format!("round {round}, table {i}"));
            }
        }
    }
    for i in 0..TABLES {
        let found = rows(
            &server,
            &admin,
            &format!("SELECT id, v FROM app.t{i} ORDER BY id"),
            &[],
        );
        let expected: Vec<_> = (0..2)
            .map(|round| json!({"id": round, "v": format!("t{i} r{round}")}))
            .collect();
        assert_eq!(found, expected, "app.t{i}");
    }
    check("after reading every table");
}
