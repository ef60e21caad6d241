//! PostgreSQL as a peer: a throwaway cluster (`initdb` into a directory under the run's
//! scratch directory, `pg_ctl start` on a free 127.0.0.1 port, stopped with `pg_ctl stop` on
//! drop). The cluster keeps every default that bears on durability (`fsync=on`,
//! `synchronous_commit=on`, `wal_sync_method=fdatasync`): a session that wants it relaxed sets
//! `synchronous_commit = off` for itself.
//!
//! PostgreSQL refuses to run as root; as root the cluster runs as `nobody` (`runuser`), and the
//! scratch directory (private to root, 0700) is made traversable for it.

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use postgres::{Client, NoTls};

/// Where Debian and Ubuntu install the server binaries (`<major>/bin/initdb`).
const INSTALL_ROOT: &str = "/usr/lib/postgresql";
/// The superuser `initdb` creates (trust authentication on 127.0.0.1 only).
pub const USER: &str = "bench";
/// How long `pg_ctl start` may wait for the server to accept connections.
const START_TIMEOUT_S: &str = "60";

/// The newest installed server's `bin` directory: `/usr/lib/postgresql/<major>/bin` with an
/// `initdb`, else the directory of an `initdb` on PATH.
pub fn installed() -> Option<PathBuf> {
    let newest = std::fs::read_dir(INSTALL_ROOT).ok().and_then(|entries| {
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let major: u32 = entry.file_name().to_str()?.parse().ok()?;
                let bin_dir = entry.path().join("bin");
                bin_dir.join("initdb").is_file().then_some((major, bin_dir))
            })
            .max_by_key(|(major, _)| *major)
            .map(|(_, bin_dir)| bin_dir)
    });
    newest.or_else(|| {
        let paths = std::env::var_os("PATH")?;
        std::env::split_paths(&paths)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    })
}

/// A running throwaway cluster; stopped on drop.
pub struct Postgres {
    bin_dir: PathBuf,
    /// Holds the data directory, the log and the Unix socket.
    dir: PathBuf,
    data: PathBuf,
    port: u16,
    as_nobody: bool,
    running: bool,
}

impl Postgres {
    /// `initdb` and `pg_ctl start` a new cluster in `<scratch>/<name>`, listening on
    /// 127.0.0.1 at a free port. `None` when PostgreSQL is not installed.
    pub fn start(scratch: &Path, name: &str) -> anyhow::Result<Option<Postgres>> {
        let Some(bin_dir) = installed() else {
            return Ok(None);
        };
        let dir = scratch.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let as_nobody = std::fs::metadata("/proc/self")?.uid() == 0;
        if as_nobody {
            // `nobody` must reach its directory through the scratch directory.
            let mut permissions = std::fs::metadata(scratch)?.permissions();
            permissions.set_mode(permissions.mode() | 0o011);
            std::fs::set_permissions(scratch, permissions)
                .with_context(|| format!("make {} traversable", scratch.display()))?;
            run(Command::new("chown").arg("nobody:").arg(&dir))?;
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cluster = Postgres {
            bin_dir,
            data: dir.join("data"),
            dir,
            port,
            as_nobody,
            running: false,
        };
        let mut initdb = cluster.command("initdb");
        initdb.arg("-D").arg(&cluster.data);
        initdb.args(["-A", "trust", "-U", USER, "-E", "UTF8", "--locale=C"]);
        // The cluster is thrown away: syncing its initial files only slows the start.
        initdb.arg("--no-sync");
        run(&mut initdb).context("initdb")?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            cluster.dir.display()
        );
        let mut pg_ctl = cluster.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(&cluster.data)
            .args(["-w", "-t", START_TIMEOUT_S, "-o", &options])
            .arg("-l")
            .arg(cluster.dir.join("server.log"))
            .arg("start");
        // Set before starting: a start that timed out may still have left a server running.
        cluster.running = true;
        run(&mut pg_ctl).with_context(|| format!("pg_ctl start:\n{}", cluster.log()))?;
        Ok(Some(cluster))
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host=127.0.0.1 port=<port> user=bench dbname=postgres`, for `postgres::Client` and
    /// `tokio_postgres`.
    pub fn connection_string(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} dbname=postgres",
            self.port
        )
    }

    /// A new blocking connection.
    pub fn connect(&self) -> anyhow::Result<Client> {
        Client::connect(&self.connection_string(), NoTls)
            .with_context(|| format!("connect to PostgreSQL on port {}", self.port))
    }

    /// The server's version and durability settings, for the report's notes.
    pub fn describe(&self) -> anyhow::Result<String> {
        let mut client = self.connect()?;
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

    /// What the server logged (for failure reports).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// `pg_ctl stop -m immediate` (the data is thrown away: no checkpoint needed).
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop_now()
    }

    fn stop_now(&mut self) -> anyhow::Result<()> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let mut stop = self.command("pg_ctl");
        stop.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"]);
        run(&mut stop).context("pg_ctl stop")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin_dir.join(program);
        let mut command = if self.as_nobody {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", "nobody", "--"]).arg(program);
            runuser
        } else {
            Command::new(program)
        };
        command.current_dir(&self.dir);
        command
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Err(error) = self.stop_now() {
            eprintln!("could not stop the PostgreSQL cluster: {error:#}");
        }
    }
}

/// Runs to completion; an error with its output when it fails.
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
