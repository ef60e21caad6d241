//! The PostgreSQL side of the SQL workloads: [`Connection`]s over the `postgres` crate, one
//! TCP connection per client, to the throwaway cluster of [`crate::peers::postgres`]. The
//! cluster keeps `synchronous_commit=on`; the relaxed [`PgSystem`] turns it off for its own
//! sessions only, so both run on one cluster and one table.

use anyhow::{ensure, Context};
use postgres::{Client, NoTls, SimpleQueryMessage, Statement};

use crate::peers::postgres::Postgres;
use crate::sql::workload::CREATE_TABLE_COLUMNS;
use crate::sql::workload::{row_name, row_qty, Connection, Reply, Statements, System};

/// `CREATE SCHEMA <schema>` and `<schema>.items` on `cluster`.
pub fn create_table(cluster: &Postgres, schema: &str) -> anyhow::Result<()> {
    let mut client = cluster.connect()?;
    let sql = format!("CREATE SCHEMA {schema}; CREATE TABLE {schema}.items {CREATE_TABLE_COLUMNS}");
    client
        .batch_execute(&sql)
        .with_context(|| format!("create {schema}.items in PostgreSQL"))
}

/// Sessions of one cluster with `synchronous_commit` on (the default) or off.
pub struct PgSystem {
    connection_string: String,
    synchronous_commit: bool,
    durability: String,
    statements: Statements,
}

impl PgSystem {
    pub fn new(cluster: &Postgres, schema: &str, synchronous_commit: bool) -> PgSystem {
        let setting = if synchronous_commit { "on" } else { "off" };
        PgSystem {
            connection_string: cluster.connection_string(),
            synchronous_commit,
            durability: format!("synchronous_commit={setting}"),
            statements: Statements::new(schema),
        }
    }
}

impl System for PgSystem {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn durability(&self) -> &str {
        &self.durability
    }

    fn class(&self) -> &'static str {
        if self.synchronous_commit {
            "durable"
        } else {
            "relaxed"
        }
    }

    fn connect(&self) -> anyhow::Result<Box<dyn Connection + '_>> {
        let mut client =
            Client::connect(&self.connection_string, NoTls).context("connect to PostgreSQL")?;
        if !self.synchronous_commit {
            client.batch_execute("SET synchronous_commit = off")?;
        }
        // Prepared once per connection, as an application would: each request is then one
        // round trip (Bind, Execute, Sync).
        let insert_row = client.prepare(&self.statements.insert_row)?;
        let select_row = client.prepare(&self.statements.select_by_id)?;
        Ok(Box::new(PgConnection {
            client,
            insert_row,
            select_row,
        }))
    }
}

struct PgConnection {
    client: Client,
    insert_row: Statement,
    select_row: Statement,
}

impl Connection for PgConnection {
    fn insert_row(&mut self, id: i64) -> anyhow::Result<Reply> {
        let name = row_name(id);
        let rows = self
            .client
            .execute(&self.insert_row, &[&id, &name, &row_qty(id)])?;
        Ok(Reply { rows, server: None })
    }

    /// The simple query protocol: one round trip, the same text Strand gets.
    fn insert_rows(&mut self, statement: &str) -> anyhow::Result<Reply> {
        let messages = self.client.simple_query(statement)?;
        let rows = messages.iter().find_map(|message| match message {
            SimpleQueryMessage::CommandComplete(rows) => Some(*rows),
            _ => None,
        });
        ensure!(rows.is_some(), "no CommandComplete for a multi-row INSERT");
        Ok(Reply {
            rows: rows.unwrap_or(0),
            server: None,
        })
    }

    fn select_row(&mut self, id: i64) -> anyhow::Result<Reply> {
        let rows = self.client.query(&self.select_row, &[&id])?;
        Ok(Reply {
            rows: rows.len() as u64,
            server: None,
        })
    }
}
