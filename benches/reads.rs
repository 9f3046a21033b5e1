//! The read bench (`bench/run.sh --reads`): `{ allUsers(limit: 10) { id name email } }` at
//! 10k users against the two limits of a read, side by side in one run, in alternating
//! rounds so that every server sees the same machine:
//!
//! - Roster at the default `RUST_LOG=info` and at `RUST_LOG=warn` (what logging costs);
//! - a bare axum route returning the same ten users' JSON (`bare_route.rs`);
//! - the smallest async-graphql server answering the same query (`minimal_graphql.rs`);
//! - with `--baseline PATH`, another build of Roster (say, the main branch's) at both levels,
//!   for a before/after in the same run;
//!
//! and a fuzzy search returning about 600 users at 10k (its count is printed). Each server
//! gets `wrk -t1 -c32` for `--seconds` per round; the table shows medians of `--rounds`.
//!
//! Beside each rate, the server's CPU time per request (user and system, from
//! `/proc/PID/stat`, over the same wrk run): on a shared machine the rate follows whatever
//! else runs, while the CPU a request costs moves much less, so the logging cost is also
//! given as the extra CPU per read at `info`.
//!
//! The reference servers are other bench targets; `bench/run.sh --reads` builds them and
//! passes their paths (`--bare`, `--minimal`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[allow(dead_code)]
#[path = "support/harness.rs"]
mod harness;

use harness::{Roster, median};

const USERS: u64 = 10_000;
const SEED: &str = "1";
const LIST: &str = "{ allUsers(limit: 10) { id name email } }";
/// A fuzzy search that keeps about 600 of the 10,000 seeded users (607 with seed 1).
const SEARCH: &str = "{ allUsers(fuzzy: \"shah\", maxDistance: 2) { id name email } }";
const CONNECTIONS: usize = 32;

/// The read bench's options.
#[derive(clap::Parser, Debug)]
#[command(about = "Reads at 10k users beside a bare axum route and a minimal async-graphql server")]
struct Args {
    /// The bare axum route (the `bare_route` bench target).
    #[arg(long, value_name = "PATH")]
    bare: PathBuf,
    /// The minimal async-graphql server (the `minimal_graphql` bench target).
    #[arg(long, value_name = "PATH")]
    minimal: PathBuf,
    /// Another `roster` binary measured the same way in the same rounds.
    #[arg(long, value_name = "PATH")]
    baseline: Option<PathBuf>,
    /// Rounds; every server is driven once per round, in turn.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds of wrk per server per round.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// A reference server: a bench target that prints its URL and serves until killed.
struct Reference {
    child: Child,
    url: String,
}

impl Reference {
    fn spawn(binary: &Path, users_file: &Path) -> Self {
        let mut child = Command::new(binary)
            .arg(users_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("{} starts: {err}", binary.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the server's URL");
        Self {
            child,
            url: line.trim().to_owned(),
        }
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_roster(binary: &Path, data_file: &Path, log: &str) -> Roster {
    let roster = Roster::spawn(binary, &["--data-file".as_ref(), data_file.as_os_str()], log);
    let started = Instant::now();
    while post(&roster.url, LIST).is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "roster did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    roster
}

/// The answer to `query` at `url`, if it came.
fn post(url: &str, query: &str) -> Option<Value> {
    use std::io::{Read, Write};
    let authority = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(authority).ok()?;
    let body = json!({ "query": query }).to_string();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let text = String::from_utf8_lossy(&answer);
    let (_, body) = text.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// How many users `query` returns at `url`.
fn found(url: &str, query: &str) -> usize {
    post(url, query)
        .and_then(|answer| answer["data"]["allUsers"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// What one wrk run measured: requests per second, and how many requests it made.
struct Run {
    rate: f64,
    requests: f64,
}

/// The CPU time process `pid` has used so far, user and system, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    // The fields after the command's closing parenthesis: utime and stime are the 12th and
    // 13th, in clock ticks (100 a second on Linux).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |at: usize| {
        fields
            .get(at)
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// `wrk -t1 -c32` posting `query` to `url` for `seconds`; a rate of 0 when any answer was
/// not a 2xx.
fn wrk(url: &str, query: &str, seconds: u64) -> Run {
    let dir = tempfile::tempdir().expect("a temp folder");
    let script = dir.path().join("request.lua");
    let body = json!({ "query": query }).to_string();
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = [==[{body}]==]\n"
        ),
    )
    .expect("the wrk script");
    let output = Command::new("wrk")
        .args(["-t1", &format!("-c{CONNECTIONS}"), &format!("-d{seconds}s"), "-s"])
        .arg(&script)
        .arg(format!("{url}/graphql"))
        .output()
        .expect("wrk runs (bench/run.sh installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("Non-2xx") {
        eprintln!("non-2xx answers from {url}:\n{text}");
        return Run {
            rate: 0.0,
            requests: 0.0,
        };
    }
    let rate = text
        .lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0);
    // `12345 requests in 5.00s, …`
    let requests = text
        .lines()
        .find_map(|line| line.trim().split_once(" requests in "))
        .and_then(|(count, _)| count.parse().ok())
        .unwrap_or(f64::NAN);
    Run { rate, requests }
}

/// One measured server and what wrk got from it per round.
struct Measured {
    label: String,
    url: String,
    pid: u32,
    query: &'static str,
    rates: Vec<f64>,
    /// Server CPU microseconds per request, per round.
    cpu: Vec<f64>,
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    let roster_binary = PathBuf::from(env!("CARGO_BIN_EXE_roster"));
    let folder = PathBuf::from("target/bench-data");
    std::fs::create_dir_all(&folder).expect("data folder");
    let users_file = harness::seed(&roster_binary, &folder, USERS, SEED);
    let bare = Reference::spawn(&args.bare, &users_file);
    let minimal = Reference::spawn(&args.minimal, &users_file);
    let mut rosters = vec![
        ("roster, info", start_roster(&roster_binary, &users_file, "info")),
        ("roster, warn", start_roster(&roster_binary, &users_file, "warn")),
    ];
    if let Some(baseline) = &args.baseline {
        rosters.push(("baseline, info", start_roster(baseline, &users_file, "info")));
        rosters.push(("baseline, warn", start_roster(baseline, &users_file, "warn")));
    }
    let mut servers: Vec<Measured> = rosters
        .iter()
        .map(|(label, roster)| Measured {
            label: (*label).to_owned(),
            url: roster.url.clone(),
            pid: roster.pid(),
            query: LIST,
            rates: Vec::new(),
            cpu: Vec::new(),
        })
        .collect();
    for (label, reference) in [("bare axum route", &bare), ("minimal async-graphql", &minimal)] {
        servers.push(Measured {
            label: label.to_owned(),
            url: reference.url.clone(),
            pid: reference.child.id(),
            query: LIST,
            rates: Vec::new(),
            cpu: Vec::new(),
        });
    }
    for (label, roster) in &rosters {
        if label.ends_with("info") {
            servers.push(Measured {
                label: format!("{label}, search"),
                url: roster.url.clone(),
                pid: roster.pid(),
                query: SEARCH,
                rates: Vec::new(),
                cpu: Vec::new(),
            });
        }
    }
    for server in &servers {
        let expected = if server.query == LIST { 10 } else { 1 };
        let got = found(&server.url, server.query);
        assert!(got >= expected, "{} answered {got} users", server.label);
    }
    let search_found = found(&rosters[0].1.url, SEARCH);
    for round in 0..args.rounds {
        eprintln!("round {} of {}", round + 1, args.rounds);
        for server in &mut servers {
            let before = cpu_seconds(server.pid);
            let run = wrk(&server.url, server.query, args.seconds);
            let spent = cpu_seconds(server.pid) - before;
            server.rates.push(run.rate);
            server.cpu.push(spent * 1e6 / run.requests);
        }
    }

    println!("\n| server | query | req/s (median) | rounds | server CPU µs per request (median) |");
    println!("| --- | --- | ---: | --- | ---: |");
    let mut medians = std::collections::HashMap::new();
    let mut cpu = std::collections::HashMap::new();
    for server in &servers {
        let rate = median(server.rates.clone());
        medians.insert(server.label.clone(), rate);
        let per_request = median(server.cpu.clone());
        cpu.insert(server.label.clone(), per_request);
        let rounds: Vec<String> = server.rates.iter().map(|r| format!("{r:.0}")).collect();
        let query = if server.query == LIST {
            "`allUsers(limit: 10)`".to_owned()
        } else {
            format!("fuzzy `shah` ≤ 2 ({search_found} found)")
        };
        println!(
            "| {} | {query} | {rate:.0} | {} | {per_request:.1} |",
            server.label,
            rounds.join(", ")
        );
    }
    let of = |label: &str| medians.get(label).copied().unwrap_or(f64::NAN);
    println!("\n| ratio | value | target |");
    println!("| --- | ---: | --- |");
    let mut builds = vec!["roster"];
    if args.baseline.is_some() {
        builds.push("baseline");
    }
    for build in builds {
        let (info, warn) = (of(&format!("{build}, info")), of(&format!("{build}, warn")));
        println!(
            "| {build} info / bare route | {:.2} | ≥ 0.5 |",
            info / of("bare axum route")
        );
        println!(
            "| {build} info / minimal async-graphql | {:.2} | ≥ 2 |",
            info / of("minimal async-graphql")
        );
        println!(
            "| {build} warn / bare route | {:.2} | - |",
            warn / of("bare axum route")
        );
        println!(
            "| {build} info / warn (logging costs {:.1}%) | {:.3} | costs ≤ 5% |",
            100.0 * (1.0 - info / warn),
            info / warn
        );
        let (info_cpu, warn_cpu) = (
            cpu.get(&format!("{build}, info")).copied().unwrap_or(f64::NAN),
            cpu.get(&format!("{build}, warn")).copied().unwrap_or(f64::NAN),
        );
        println!(
            "| {build} CPU per read, info / warn (logging costs {:.1}% more CPU) | {:.3} | costs ≤ 5% |",
            100.0 * (info_cpu / warn_cpu - 1.0),
            info_cpu / warn_cpu
        );
        println!(
            "| {build} search, {search_found} found, req/s | {:.0} | ≥ 2,000 |",
            of(&format!("{build}, info, search"))
        );
    }
    println!(
        "\nmedians of {} rounds of `wrk -t1 -c{CONNECTIONS} -d{}s` per server, {USERS} users (`roster seed {USERS} --seed {SEED}`)",
        args.rounds, args.seconds
    );
}
