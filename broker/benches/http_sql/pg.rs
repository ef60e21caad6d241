//! The PostgreSQL side: a throwaway cluster (`initdb` into a temporary directory beside the
//! Strand data, `pg_ctl start` on a free 127.0.0.1 port, stopped and deleted on drop) and
//! [`Connection`]s over the `postgres` crate, one TCP connection per client. The cluster keeps
//! every default (`fsync=on`, `synchronous_commit=on`, `wal_sync_method=fdatasync`) except
//! where a [`PgSystem`] turns `synchronous_commit` off for its own sessions.
//!
//! PostgreSQL refuses to run as root; as root the cluster runs as `nobody` (`runuser`).

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context};
use postgres::{Client, NoTls, SimpleQueryMessage, Statement};

use crate::workload::{row_name, row_qty, Connection, Reply, System};
use crate::workload::{CREATE_TABLE_COLUMNS, INSERT_ROW, SELECT_BY_ID};

/// Where Debian and Ubuntu install the server binaries (`<major>/bin/initdb`).
const INSTALL_ROOT: &str = "/usr/lib/postgresql";
const USER: &str = "bench";

/// An installed PostgreSQL server.
pub struct PgInstall {
    bin_dir: PathBuf,
}

impl PgInstall {
    /// The newest `/usr/lib/postgresql/<major>/bin` with an `initdb`, if any.
    pub fn find() -> Option<PgInstall> {
        let newest = std::fs::read_dir(INSTALL_ROOT)
            .ok()?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let major: u32 = entry.file_name().to_str()?.parse().ok()?;
                let bin_dir = entry.path().join("bin");
                bin_dir.join("initdb").is_file().then_some((major, bin_dir))
            })
            .max_by_key(|(major, _)| *major)?;
        Some(PgInstall { bin_dir: newest.1 })
    }

    /// `initdb` and `pg_ctl start` a new cluster in a temporary directory under `root`.
    pub fn start(&self, root: &Path) -> anyhow::Result<PgCluster> {
        let dir = tempfile::Builder::new().prefix("pg-").tempdir_in(root)?;
        let as_nobody = std::fs::metadata("/proc/self")?.uid() == 0;
        if as_nobody {
            run(Command::new("chown").arg("nobody:").arg(dir.path()))?;
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cluster = PgCluster {
            bin_dir: self.bin_dir.clone(),
            data: dir.path().join("data"),
            port,
            as_nobody,
            running: false,
            dir,
        };
        let mut initdb = cluster.command("initdb");
        initdb.arg("-D").arg(&cluster.data);
        initdb.args([
            "-A",
            "trust",
            "-U",
            USER,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run(&mut initdb)?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            cluster.dir.path().display()
        );
        let mut pg_ctl = cluster.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(&cluster.data)
            .args(["-w", "-t", "60", "-o", &options]);
        pg_ctl
            .arg("-l")
            .arg(cluster.dir.path().join("server.log"))
            .arg("start");
        cluster.running = true;
        run(&mut pg_ctl)?;
        Ok(cluster)
    }
}

/// Run to completion; an error with its output when it fails.
fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A running throwaway cluster.
pub struct PgCluster {
    bin_dir: PathBuf,
    data: PathBuf,
    port: u16,
    as_nobody: bool,
    running: bool,
    dir: tempfile::TempDir,
}

impl PgCluster {
    fn command(&self, program: &str) -> Command {
        let program = self.bin_dir.join(program);
        let mut command = if self.as_nobody {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", "nobody", "--"]).arg(program);
            runuser
        } else {
            Command::new(program)
        };
        command.current_dir(self.dir.path());
        command
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    fn connection_string(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} dbname=postgres",
            self.port
        )
    }

    /// The server's version and durability settings, for the report.
    pub fn describe(&self) -> anyhow::Result<String> {
        let mut client = Client::connect(&self.connection_string(), NoTls)?;
        let mut facts = Vec::new();
        for setting in [
            "server_version",
            "synchronous_commit",
            "fsync",
            "wal_sync_method",
        ] {
            let value: String = client.query_one(&format!("SHOW {setting}"), &[])?.get(0);
            facts.push(format!("{setting}={value}"));
        }
        Ok(facts.join(" "))
    }

    /// `CREATE SCHEMA bench` and `bench.items`.
    pub fn create_table(&self) -> anyhow::Result<()> {
        let mut client = Client::connect(&self.connection_string(), NoTls)?;
        let sql = format!("CREATE SCHEMA bench; CREATE TABLE bench.items {CREATE_TABLE_COLUMNS}");
        client.batch_execute(&sql)?;
        Ok(())
    }

    /// Sessions with `synchronous_commit` on (the default) or off.
    pub fn system(&self, synchronous_commit: bool) -> PgSystem {
        let setting = if synchronous_commit { "on" } else { "off" };
        PgSystem {
            connection_string: self.connection_string(),
            synchronous_commit,
            durability: format!("synchronous_commit={setting}"),
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let mut stop = self.command("pg_ctl");
            stop.arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"]);
            if let Err(error) = run(&mut stop) {
                eprintln!("could not stop the PostgreSQL cluster: {error:#}");
            }
        }
        // The temporary directory deletes itself after this.
    }
}

pub struct PgSystem {
    connection_string: String,
    synchronous_commit: bool,
    durability: String,
}

impl System for PgSystem {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn durability(&self) -> &str {
        &self.durability
    }

    fn durable(&self) -> bool {
        self.synchronous_commit
    }

    fn connect(&self) -> anyhow::Result<Box<dyn Connection + '_>> {
        let mut client = Client::connect(&self.connection_string, NoTls)?;
        if !self.synchronous_commit {
            client.batch_execute("SET synchronous_commit = off")?;
        }
        // Prepared once per connection, as an application would: each request is then one
        // round trip (Bind, Execute, Sync).
        let insert_row = client.prepare(INSERT_ROW)?;
        let select_row = client.prepare(SELECT_BY_ID)?;
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
        Ok(Reply {
            rows,
            server_ns: None,
        })
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
            server_ns: None,
        })
    }

    fn select_row(&mut self, id: i64) -> anyhow::Result<Reply> {
        let rows = self.client.query(&self.select_row, &[&id])?;
        Ok(Reply {
            rows: rows.len() as u64,
            server_ns: None,
        })
    }
}
