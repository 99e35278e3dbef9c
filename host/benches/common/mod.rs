//! What the HTTP benches share: their settings from the environment, the
//! servers they start, the PostgreSQL server they make their databases on,
//! and the CPU time of the processes they measure.
#![allow(dead_code, reason = "each bench uses a part of it")]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The number in the environment variable `name`, else `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A server process on a free port (never 2024, `langgraph dev`'s
/// default), killed on drop; its stderr goes to a log file.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its stderr.
    pub log: PathBuf,
}

impl Server {
    /// Starts `command` with the port appended (the command ends with its
    /// `--port` flag) and waits until `GET /ok` answers.
    pub fn start(command: &mut Command, name: &str) -> Self {
        let port = loop {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if port != 2024 {
                break port;
            }
        };
        let log = std::env::temp_dir().join(format!("warden-bench-{port}.log"));
        let mut child = command
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(300);
        while ureq::get(format!("{url}/ok")).call().is_err() {
            let exited = child.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("{name} did not start ({exited:?}):\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, url, log }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The PostgreSQL server a bench makes its databases on: the admin URI in
/// `WARDEN_BENCH_POSTGRES` (ending in `/<database>`; default
/// `postgres://postgres@127.0.0.1:5432/postgres`; `off` skips).
pub struct Postgres {
    admin: String,
    runtime: tokio::runtime::Runtime,
}

/// A database made for one setup of a bench, dropped when done.
pub struct Database {
    pub name: String,
    pub uri: String,
}

impl Postgres {
    /// The server, when it is set and answers; why not otherwise.
    pub fn admin() -> Result<Self, String> {
        let admin = std::env::var("WARDEN_BENCH_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        if admin.is_empty() || admin == "off" {
            return Err("WARDEN_BENCH_POSTGRES=off".to_owned());
        }
        let postgres = Self {
            admin,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the admin connection"),
        };
        postgres
            .execute("SELECT 1")
            .map_err(|e| format!("{}: {e}", postgres.admin))?;
        Ok(postgres)
    }

    /// Runs `sql` on the admin database.
    pub fn execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.runtime.block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&self.admin, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            client.batch_execute(sql).await
        })
    }

    /// A fresh database, `warden_bench_<random>`.
    pub fn create(&self) -> Database {
        let name = format!("warden_bench_{}", uuid::Uuid::new_v4().simple());
        self.execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        let base = self
            .admin
            .rsplit_once('/')
            .expect("WARDEN_BENCH_POSTGRES ends with /<database>")
            .0;
        let uri = format!("{base}/{name}");
        Database { name, uri }
    }

    /// Drops `database`, closing its connections.
    pub fn drop_database(&self, database: &Database) {
        self.execute(&format!("DROP DATABASE {} WITH (FORCE)", database.name))
            .expect("DROP DATABASE");
    }
}

/// User + system CPU seconds of a process and of all its descendants
/// (a server that forks workers).
pub fn tree_cpu_seconds(pid: u32) -> Option<f64> {
    let processes = processes();
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(processes.iter().filter(|p| p.ppid == parent).map(|p| p.pid));
        i += 1;
    }
    let own = processes.iter().find(|p| p.pid == pid)?.cpu;
    Some(
        own + processes
            .iter()
            .filter(|p| p.pid != pid && tree.contains(&p.pid))
            .map(|p| p.cpu)
            .sum::<f64>(),
    )
}

/// User + system CPU seconds of every `postgres` process on the machine
/// (the server and its backends; one that exits in between is not
/// counted): what the database spent beside the process measured.
pub fn postgres_cpu_seconds() -> f64 {
    processes()
        .iter()
        .filter(|p| p.comm == "postgres")
        .map(|p| p.cpu)
        .sum()
}

struct Process {
    pid: u32,
    ppid: u32,
    comm: String,
    cpu: f64,
}

fn processes() -> Vec<Process> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (comm, fields) = stat_fields(&stat)?;
            Some(Process {
                pid,
                ppid: fields.get(1)?.parse().ok()?,
                comm: comm.to_owned(),
                cpu: ticks(&fields)?,
            })
        })
        .collect()
}

/// The command name and the fields after it (the name may hold spaces
/// and parentheses: it ends at the last `)`).
fn stat_fields(stat: &str) -> Option<(&str, Vec<&str>)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1;
    Some((comm, rest.split_whitespace().collect()))
}

/// utime + stime (fields 14 and 15 of the whole line, 1-based) in seconds.
fn ticks(fields: &[&str]) -> Option<f64> {
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

/// `sysconf(_SC_CLK_TCK)`, through `getconf` (100 on Linux).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}
