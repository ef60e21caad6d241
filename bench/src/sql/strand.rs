//! The Strand side of the SQL workloads: [`Connection`]s that speak `POST /v1/api/sql` over
//! keep-alive HTTP/1.1 with the Bearer token of one login (an HMAC check per request instead
//! of an argon2 verification), and the server's CPU time from `/proc` when it was spawned.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use serde::Deserialize;
use serde_json::json;

use crate::cli::Fsync;
use crate::http::HttpConnection;
use crate::sql::workload::CREATE_TABLE_COLUMNS;
use crate::sql::workload::{row_name, row_qty, Connection, Reply, Statements, System};
use crate::target::{Target, ROUTE_SQL};

/// A logged-in Strand server.
pub struct StrandSystem {
    pid: Option<u32>,
    http: SocketAddr,
    authorization: String,
    durability: String,
    class: &'static str,
    statements: Statements,
}

impl StrandSystem {
    /// Logs in to `target`; the statements name `<schema>.items`.
    pub fn new(target: &Target, schema: &str) -> anyhow::Result<StrandSystem> {
        let token = target.login()?;
        let class = match target.fsync {
            Some(Fsync::Always) => "durable",
            Some(_) => "relaxed",
            None => "server",
        };
        Ok(StrandSystem {
            pid: target.server_pid(),
            http: target.http,
            authorization: format!("Bearer {token}"),
            durability: target.durability(),
            class,
            statements: Statements::new(schema),
        })
    }

    /// `CREATE NAMESPACE <schema>` and the SHARED table `<schema>.items`.
    pub fn create_table(&self, schema: &str) -> anyhow::Result<()> {
        let mut connection = self.open()?;
        let sql = format!(
            "CREATE NAMESPACE {schema}; CREATE TABLE {schema}.items {CREATE_TABLE_COLUMNS} \
             WITH (TYPE = 'SHARED')"
        );
        connection
            .run(&sql, &[])
            .with_context(|| format!("create {schema}.items"))?;
        Ok(())
    }

    /// Drops `<schema>.items` and the namespace (a running server keeps what a run made).
    pub fn drop_table(&self, schema: &str) -> anyhow::Result<()> {
        let mut connection = self.open()?;
        let sql = format!("DROP TABLE IF EXISTS {schema}.items; DROP NAMESPACE IF EXISTS {schema}");
        connection
            .run(&sql, &[])
            .with_context(|| format!("drop {schema}.items"))?;
        Ok(())
    }

    fn open(&self) -> anyhow::Result<StrandConnection<'_>> {
        Ok(StrandConnection {
            http: HttpConnection::connect(self.http, Some(&self.authorization))?,
            statements: &self.statements,
        })
    }
}

impl System for StrandSystem {
    fn name(&self) -> &'static str {
        "strand"
    }

    fn durability(&self) -> &str {
        &self.durability
    }

    fn class(&self) -> &'static str {
        self.class
    }

    fn connect(&self) -> anyhow::Result<Box<dyn Connection + '_>> {
        Ok(Box::new(self.open()?))
    }

    fn cpu_ns(&self) -> Option<u64> {
        self.pid.map(crate::proc::cpu_ns)
    }
}

struct StrandConnection<'a> {
    http: HttpConnection,
    statements: &'a Statements,
}

/// The parts of a success answer the bench checks; `rows` and `columns` are skipped.
#[derive(Deserialize)]
struct SqlAnswer {
    status: String,
    results: Vec<StatementAnswer>,
    took_ms: f64,
}

#[derive(Deserialize)]
struct StatementAnswer {
    row_count: u64,
}

impl StrandConnection<'_> {
    /// `POST /v1/api/sql`; the row count of the last statement and the server's `took_ms`.
    fn run(&mut self, sql: &str, params: &[serde_json::Value]) -> anyhow::Result<Reply> {
        let body = json!({"sql": sql, "params": params}).to_string();
        let (status, answer) = self.http.post_json(ROUTE_SQL, body.as_bytes())?;
        if status != 200 {
            bail!("HTTP {status}: {}", String::from_utf8_lossy(answer));
        }
        let answer: SqlAnswer = serde_json::from_slice(answer).context("SQL answer")?;
        ensure!(answer.status == "success", "status {}", answer.status);
        Ok(Reply {
            rows: answer.results.last().map_or(0, |r| r.row_count),
            server: Some(Duration::from_secs_f64(answer.took_ms.max(0.0) / 1e3)),
        })
    }
}

impl Connection for StrandConnection<'_> {
    fn insert_row(&mut self, id: i64) -> anyhow::Result<Reply> {
        let params = [json!(id), json!(row_name(id)), json!(row_qty(id))];
        let statements = self.statements;
        self.run(&statements.insert_row, &params)
    }

    fn insert_rows(&mut self, statement: &str) -> anyhow::Result<Reply> {
        self.run(statement, &[])
    }

    fn select_row(&mut self, id: i64) -> anyhow::Result<Reply> {
        let statements = self.statements;
        self.run(&statements.select_by_id, &[json!(id)])
    }
}
