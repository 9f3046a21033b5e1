//! Pieces the benchmarks share: a `roster` process started from a built binary, what
//! `/proc` says about it, `wrk` runs, and medians.
//!
//! HTTP goes through reqwest on a runtime of the caller's; load comes from `wrk`, a C load
//! generator that spends far less of the shared cores than a Rust client would (bench/run.sh
//! installs it).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The median of `values` (the upper one of an even count); NaN for none.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A free port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// `folder/users-N.json`: N users from `binary`'s `roster seed` with `seed` (the same file on
/// every machine for one build).
pub fn seed(binary: &Path, folder: &Path, users: u64, seed: &str) -> std::path::PathBuf {
    let path = folder.join(format!("users-{users}.json"));
    let status = Command::new(binary)
        .args(["seed", &users.to_string(), "--seed", seed, "--out"])
        .arg(&path)
        .env_remove("DATABASE_URL")
        .stderr(Stdio::null())
        .status()
        .expect("roster seed runs");
    assert!(status.success(), "roster seed {users} failed");
    path
}

/// A `roster` process, killed when dropped.
pub struct Roster {
    child: Child,
    /// Its base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// When it was spawned.
    pub spawned: Instant,
}

impl Roster {
    /// Spawns `binary` serving on a free port with `store` flags (`--data-file F` or
    /// `--database-url U`), logging at `RUST_LOG=log` to nowhere. The environment's
    /// `DATABASE_URL` and `USERS_JSON_PATH` are left out so that only the flags count.
    pub fn spawn<S: AsRef<OsStr>>(binary: &Path, store: &[S], log: &str) -> Self {
        let port = free_port();
        let spawned = Instant::now();
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(store)
            .env_remove("DATABASE_URL")
            .env_remove("USERS_JSON_PATH")
            .env("RUST_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("{} starts: {err}", binary.display()));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            spawned,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `/proc/PID/status`'s `field` (such as `VmRSS` or `VmHWM`), in KiB.
    pub fn status_kib(&self, field: &str) -> u64 {
        status_kib(self.pid(), field)
    }

    /// CPU time the process's threads have spent so far, from their `schedstat`
    /// (nanoseconds, rather than `stat`'s clock ticks of 10 ms).
    pub fn cpu_time(&self) -> Duration {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return Duration::ZERO;
        };
        let nanos = tasks
            .filter_map(Result::ok)
            .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
            .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        Duration::from_nanos(nanos)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Roster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/proc/PID/status`'s `field` in KiB (0 when it cannot be read).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix(field)?.strip_prefix(':')?;
                value.trim().trim_end_matches("kB").trim().parse().ok()
            })
        })
        .unwrap_or(0)
}

/// Requests per second from `wrk` with `connections` connections for `seconds`, running
/// the Lua `script` against `url`'s `/graphql`. A request may take up to 30 s (wrk's default
/// of 2 s would count a slow commit of a large file as a failure, not as a slow answer).
pub fn wrk(url: &str, connections: usize, seconds: u64, script: &str) -> f64 {
    let dir = tempfile::tempdir().expect("a temp folder");
    let path = dir.path().join("request.lua");
    std::fs::write(&path, script).expect("the wrk script");
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--timeout",
            "30s",
            "-s",
        ])
        .arg(&path)
        .arg(format!("{url}/graphql"))
        .output()
        .expect("wrk runs (bench/run.sh installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A wrk script of `createUser` mutations, each with an address unique per thread, request
/// and `run` (which must differ between the runs against one data set).
pub fn create_script(run: &str) -> String {
    format!(
        r#"local n = 0
local threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function request()
  n = n + 1
  local body = string.format('{{"query":"mutation($u: UserInput!) {{ createUser(userData: $u) {{ ok }} }}","variables":{{"u":{{"name":"Bench","email":"w{run}-%d-%d@bench.example"}}}}}}', tid, n)
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json"}}, body)
end
"#
    )
}
