//! The benchmark suite (run it with `bench/run.sh`): every figure beside the limit it is
//! measured against, in the same run, as medians of several runs.
//!
//! It starts the optimised `roster` binary on deterministic data sets of 1,000, 10,000 and
//! 100,000 users (written to `target/bench-data/` so another server can load the same
//! files), drives it with `wrk` for throughput and with a keep-alive client for latency,
//! and prints one Markdown table. `--peer URL` drives another server that speaks the same
//! schema with the same requests, side by side (load it with the same data file first).
//! `--memory` measures only resident memory at 100k users (steady, after external reloads,
//! after a burst of creates), which takes a minute rather than the whole suite's six.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

// The suite has a client of its own for latency and uses only part of the shared pieces.
#[allow(dead_code)]
#[path = "support/harness.rs"]
mod harness;
#[path = "support/postgres.rs"]
mod postgres;
// Test databases: test code, kept out of the library and shared with the integration tests.
#[allow(dead_code)]
#[path = "../tests/api/helpers/scratch.rs"]
mod scratch;

use harness::{Roster, create_script, median};

const RUNS: usize = 3;
const SEED: &str = "1";
const LATENCY_SAMPLES: usize = 25;
const WRK_SECONDS: u64 = 4;

/// `target/bench-data/users-N.json`: N users from `roster seed` (the same on every machine),
/// and the users themselves, for the measurements that edit the file or scan it in process.
fn data_set(folder: &Path, users: usize) -> (PathBuf, Vec<Value>) {
    let path = harness::seed(
        Path::new(env!("CARGO_BIN_EXE_roster")),
        folder,
        users as u64,
        SEED,
    );
    let records: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&path).expect("read the data set")).expect("json");
    (path, records)
}

/// A fresh copy of a data set in its own folder, so writes never touch the original.
fn working_copy(data_set: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in("target").expect("temp folder");
    let path = dir.path().join("users.json");
    std::fs::copy(data_set, &path).expect("copy");
    (dir, path)
}

/// Starts roster and returns it with the time from spawn to its first healthy answer.
fn start_roster(data_file: &Path, log: &str) -> (Roster, Duration) {
    start_roster_with(&["--data-file".as_ref(), data_file.as_os_str()], log)
}

/// [`start_roster`] with other store flags (`--database-url URL`).
fn start_roster_with<S: AsRef<std::ffi::OsStr>>(store: &[S], log: &str) -> (Roster, Duration) {
    let roster = Roster::spawn(Path::new(env!("CARGO_BIN_EXE_roster")), store, log);
    let health = format!("{}/health", roster.url);
    loop {
        let answer = Connection::open(&health).and_then(|mut c| c.send(&health, None));
        if answer.is_ok_and(|r| r.status == 200) {
            let started = roster.spawned.elapsed();
            return (roster, started);
        }
        assert!(
            roster.spawned.elapsed() < Duration::from_secs(60),
            "roster did not start"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

struct HttpResponse {
    status: u16,
    body: Vec<u8>,
}

/// One keep-alive HTTP/1.1 connection: a tiny blocking client rather than reqwest (which
/// the other benches use), so a latency of a tenth of a millisecond measures the server
/// rather than a client library and its runtime.
struct Connection {
    stream: std::io::BufReader<std::net::TcpStream>,
}

impl Connection {
    fn open(url: &str) -> std::io::Result<Self> {
        let authority = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        let stream = std::net::TcpStream::connect(authority)?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: std::io::BufReader::new(stream),
        })
    }

    fn send(&mut self, url: &str, body: Option<&str>) -> std::io::Result<HttpResponse> {
        use std::io::{BufRead, Read, Write};
        let rest = url.trim_start_matches("http://");
        let (authority, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
        let request = match body {
            Some(body) => format!(
                "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
            None => format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n\r\n"),
        };
        self.stream.get_mut().write_all(request.as_bytes())?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let (mut length, mut chunked) = (0usize, false);
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let lower = header.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                self.stream.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(length, 0);
            self.stream.read_exact(&mut body)?;
        }
        Ok(HttpResponse { status, body })
    }
}

fn graphql_body(query: &str) -> String {
    json!({ "query": query }).to_string()
}

/// Median latency in milliseconds of `query` over one keep-alive connection, and the
/// number of users the answer held.
fn latency_ms(url: &str, query: &str) -> (f64, usize) {
    let endpoint = format!("{url}/graphql");
    let body = graphql_body(query);
    let mut connection = Connection::open(&endpoint).expect("connect");
    let mut samples = Vec::new();
    let mut found = 0;
    for round in 0..LATENCY_SAMPLES + 3 {
        let started = Instant::now();
        let response = connection.send(&endpoint, Some(&body)).expect("request");
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        found = answer["data"]["allUsers"].as_array().map_or(0, Vec::len);
        if round >= 3 {
            samples.push(elapsed);
        }
    }
    (median(samples), found)
}

/// Requests per second from `wrk` with `connections` connections, running `script`.
fn wrk(url: &str, connections: usize, script: &str) -> f64 {
    harness::wrk(url, connections, WRK_SECONDS, script)
}

fn post_script(body: &str) -> String {
    format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = [==[{body}]==]\n"
    )
}

/// The limit for list reads: a bare axum route returning the same users as JSON.
fn start_baseline(users: Vec<Value>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let users = Arc::new(users);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let route = axum::routing::post(move || {
                let users = Arc::clone(&users);
                async move { axum::Json(json!({ "data": { "allUsers": *users } })) }
            });
            let app = axum::Router::new().route("/graphql", route);
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("baseline serves");
        });
    });
    url
}

/// The limit for searches: one pass that only lowercases and compares every candidate.
fn equality_pass_ms(users: &[Value], query: &str) -> f64 {
    let query = query.to_lowercase();
    let users: Vec<(String, String)> = users
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap_or_default().to_owned(),
                u["email"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    median(
        (0..RUNS * 3)
            .map(|_| {
                let started = Instant::now();
                let mut hits = 0usize;
                for (name, email) in &users {
                    let (name, email) = (name.to_lowercase(), email.to_lowercase());
                    hits += usize::from(name == query || email == query);
                }
                std::hint::black_box(hits);
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect(),
    )
}

/// The limit for loading: reading and parsing the file with serde_json alone.
fn parse_only_ms(path: &Path) -> f64 {
    median(
        (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                let bytes = std::fs::read(path).expect("read");
                let value: Value = serde_json::from_slice(&bytes).expect("parse");
                std::hint::black_box(value);
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect(),
    )
}

fn raw_fsync_rate() -> f64 {
    use std::io::Write;
    let dir = tempfile::tempdir_in("target").expect("temp");
    let mut file = std::fs::File::create(dir.path().join("probe")).expect("probe");
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        file.write_all(b"0123456789abcdef").expect("write");
        file.sync_data().expect("fsync");
        count += 1;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn rss_kib(pid: u32) -> u64 {
    harness::status_kib(pid, "VmRSS")
}

/// Rewrites the file the way an editor saves (new file, rename over) with one user renamed,
/// and returns how long until the API shows the new name.
fn edit_to_visible_ms(url: &str, path: &Path, users: &[Value], marker: &str) -> f64 {
    let mut edited = users.to_vec();
    edited[users.len() / 2]["name"] = json!(marker);
    let bytes = serde_json::to_vec_pretty(&edited).expect("json");
    let staging = path.with_extension("editor-swap");
    std::fs::write(&staging, bytes).expect("write");
    let query = format!("{{ allUsers(search: \"{marker}\") {{ id }} }}");
    let endpoint = format!("{url}/graphql");
    let mut connection = Connection::open(&endpoint).expect("connect");
    let started = Instant::now();
    std::fs::rename(&staging, path).expect("rename");
    loop {
        let response = connection
            .send(&endpoint, Some(&graphql_body(&query)))
            .expect("request");
        let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        if answer["data"]["allUsers"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            return started.elapsed().as_secs_f64() * 1000.0;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the edit never became visible"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Creates `count` users over one keep-alive connection, one after another.
fn create_burst(url: &str, count: usize, tag: &str) {
    let endpoint = format!("{url}/graphql");
    let mut connection = Connection::open(&endpoint).expect("connect");
    for n in 0..count {
        let body = json!({
            "query": "mutation($u: UserInput!) { createUser(userData: $u) { ok } }",
            "variables": { "u": { "name": "Burst", "email": format!("burst-{tag}-{n}@bench.example") } }
        })
        .to_string();
        let response = connection.send(&endpoint, Some(&body)).expect("create");
        assert_eq!(response.status, 200, "create answered {}", response.status);
    }
}

/// How long the service is left alone before its resident memory is read: the allocator
/// returns freed pages in the background over its decay time (one second, set in
/// `.cargo/config.toml`), so the figures say what stays resident, not a moment's peak.
const MEMORY_QUIET: Duration = Duration::from_secs(3);

/// Resident memory at 100k users: loaded once, after three external edits were reloaded
/// (the same process; also read at once, as a report), and after a burst of creates (a
/// fresh process); each after a fuzzy query, so the search keys are built, and then
/// [`MEMORY_QUIET`]. Medians of [`RUNS`] runs, beside the file's size.
fn memory_rows(set_100k: &Path, users_100k: &[Value]) -> Vec<Row> {
    const FUZZY: &str = "{ allUsers(fuzzy: \"jon smith\", maxDistance: 2) { id } }";
    const BURST: usize = 50;
    let file_kib = std::fs::metadata(set_100k).map(|m| m.len() / 1024).unwrap_or(1) as f64;
    let (mut steady, mut reloaded, mut written) = (Vec::new(), Vec::new(), Vec::new());
    let mut reloaded_at_once = Vec::new();
    let quiet_rss = |pid: u32| {
        std::thread::sleep(MEMORY_QUIET);
        rss_kib(pid) as f64
    };
    for run in 0..RUNS {
        let (_dir, path) = working_copy(set_100k);
        let (roster, _) = start_roster(&path, "warn");
        let _ = latency_ms(&roster.url, FUZZY);
        steady.push(quiet_rss(roster.pid()));
        for edit in 0..3 {
            edit_to_visible_ms(
                &roster.url,
                &path,
                users_100k,
                &format!("Memory Marker {run} {edit}"),
            );
        }
        let _ = latency_ms(&roster.url, FUZZY);
        reloaded_at_once.push(rss_kib(roster.pid()) as f64);
        reloaded.push(quiet_rss(roster.pid()));
        drop(roster);
        let (_dir, path) = working_copy(set_100k);
        let (roster, _) = start_roster(&path, "warn");
        create_burst(&roster.url, BURST, &format!("m{run}"));
        let _ = latency_ms(&roster.url, FUZZY);
        written.push(quiet_rss(roster.pid()));
    }
    let quiet = MEMORY_QUIET.as_secs();
    let row = |figure: &str, kib: f64, target: &str| Row {
        figure: figure.into(),
        roster: format!("{:.1} MiB", kib / 1024.0),
        limit: format!("{:.1} MiB (file size)", file_kib / 1024.0),
        ratio: format!("{:.1}x", kib / file_kib),
        target: target.into(),
        peer: "-".into(),
    };
    vec![
        row(
            &format!("resident memory, 100k users, loaded once, after a fuzzy query, {quiet} s later"),
            median(steady),
            "≤ 3x",
        ),
        row(
            "resident memory, 100k users, right after three external edits were reloaded",
            median(reloaded_at_once),
            "report",
        ),
        row(
            &format!(
                "resident memory, 100k users, after three external edits were reloaded, {quiet} s later"
            ),
            median(reloaded),
            "≤ 3x",
        ),
        row(
            &format!("resident memory, 100k users, after {BURST} creates, {quiet} s later"),
            median(written),
            "≤ 3x",
        ),
    ]
}

fn print_rows(rows: Vec<Row>) {
    println!("\n| figure | roster | limit | ratio | target | peer |");
    println!("| --- | ---: | ---: | ---: | --- | ---: |");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            row.figure, row.roster, row.limit, row.ratio, row.target, row.peer
        );
    }
}

struct Row {
    figure: String,
    roster: String,
    limit: String,
    ratio: String,
    target: String,
    peer: String,
}

/// The suite's options.
#[derive(clap::Parser, Debug)]
#[command(about = "Roster's benchmark suite: every figure beside the limit it is measured against")]
struct Args {
    /// Another server speaking the same schema, driven with the same requests side by side
    /// (load it with the same data file first).
    #[arg(long, value_name = "URL")]
    peer: Option<String>,
    /// Only the PostgreSQL figures, without the file store's beside them.
    #[arg(long)]
    only_postgres: bool,
    /// Only resident memory at 100k users.
    #[arg(long)]
    memory: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    let (peer, only_postgres, memory_only) = (args.peer, args.only_postgres, args.memory);
    let peer = peer.as_deref();
    let data_folder = PathBuf::from("target/bench-data");
    std::fs::create_dir_all(&data_folder).expect("data folder");
    let sizes = [1_000, 10_000, 100_000];
    let (sets, users): (Vec<(usize, PathBuf)>, Vec<Vec<Value>>) = sizes
        .iter()
        .map(|&n| {
            let (path, users) = data_set(&data_folder, n);
            ((n, path), users)
        })
        .unzip();
    if only_postgres {
        let none = postgres::FileFigures {
            reads: None,
            creates: Vec::new(),
            start_100k: None,
        };
        print_rows(postgres::rows(&sets, &none));
        return;
    }
    let users_100k = &users[2];
    if memory_only {
        print_rows(memory_rows(&sets[2].1, users_100k));
        println!("\nmedians of {RUNS} runs");
        return;
    }
    let mut rows: Vec<Row> = Vec::new();
    let peer_cell = |f: &dyn Fn(&str) -> String| peer.map_or_else(|| "-".to_owned(), f);

    // Reads at 10k users against a bare axum route returning the same 10 users.
    let list = "{ allUsers(limit: 10) { id name email } }";
    let (_dir, path) = working_copy(&sets[1].1);
    let (roster, _) = start_roster(&path, "warn");
    let baseline = start_baseline(
        users[1][..10]
            .iter()
            .map(|u| json!({"id": u["id"], "name": u["name"], "email": u["email"]}))
            .collect(),
    );
    let script = post_script(&graphql_body(list));
    let mut ours = Vec::new();
    let mut limit = Vec::new();
    // The peer's reads alternate with ours, so a same-run A/B (say, an older build of
    // Roster) sees the same machine conditions.
    let mut theirs = Vec::new();
    for _ in 0..RUNS {
        ours.push(wrk(&roster.url, 32, &script));
        limit.push(wrk(&baseline, 32, &script));
        if let Some(peer) = peer {
            theirs.push(wrk(peer, 32, &script));
        }
    }
    let (ours, limit) = (median(ours), median(limit));
    let mut file_figures = postgres::FileFigures {
        reads: Some(ours),
        creates: Vec::new(),
        start_100k: None,
    };
    rows.push(Row {
        figure: "`allUsers(limit: 10)` req/s, 10k users, 32 connections".into(),
        roster: format!("{ours:.0}"),
        limit: format!("{limit:.0} (bare axum route)"),
        ratio: format!("{:.0}%", 100.0 * ours / limit),
        target: "≥ 50%".into(),
        peer: peer_cell(&|_| format!("{:.0}", median(theirs.clone()))),
    });
    drop(roster);

    // Logging cost: the same reads with RUST_LOG=info and RUST_LOG=warn, alternating.
    let (mut info, mut warn) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        for (level, into) in [("info", &mut info), ("warn", &mut warn)] {
            let (roster, _) = start_roster(&path, level);
            into.push(wrk(&roster.url, 32, &script));
        }
    }
    let (info, warn) = (median(info), median(warn));
    rows.push(Row {
        figure: "read req/s with `RUST_LOG=info` (logs to /dev/null)".into(),
        roster: format!("{info:.0}"),
        limit: format!("{warn:.0} (`RUST_LOG=warn`)"),
        ratio: format!("costs {:.1}%", 100.0 * (1.0 - info / warn)),
        target: "costs ≤ 10%".into(),
        peer: "-".into(),
    });

    // Searches at every size, against the equality pass over the same users.
    for (&(size, ref set), users) in sets.iter().zip(&users) {
        let (_dir, path) = working_copy(set);
        let (roster, _) = start_roster(&path, "warn");
        for (query, name, factor) in [
            (
                "{ allUsers(fuzzy: \"jon smith\", maxDistance: 2) { id } }",
                "fuzzy \"jon smith\" ≤ 2",
                4.0,
            ),
            ("{ allUsers(search: \"smith\") { id } }", "search \"smith\"", 2.0),
        ] {
            let (ms, found) = latency_ms(&roster.url, query);
            let limit = equality_pass_ms(
                users,
                if name.starts_with("fuzzy") {
                    "jon smith"
                } else {
                    "smith"
                },
            );
            let target = if size == 100_000 {
                if factor == 4.0 {
                    "≤ 4x and < 25 ms".to_owned()
                } else {
                    "≤ 2x".to_owned()
                }
            } else {
                "-".to_owned()
            };
            rows.push(Row {
                figure: format!("{name} latency, {}k users ({found} found)", size / 1000),
                roster: format!("{ms:.2} ms"),
                limit: format!("{limit:.2} ms (equality pass)"),
                ratio: format!("{:.1}x", ms / limit),
                target,
                peer: peer_cell(&|p| format!("{:.2} ms", latency_ms(p, query).0)),
            });
        }
    }

    // Start, external edit and memory at 100k users.
    let set_100k = &sets[2].1;
    let parse = parse_only_ms(set_100k);
    let (mut starts, mut edits) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let (_dir, path) = working_copy(set_100k);
        let (roster, started) = start_roster(&path, "warn");
        starts.push(started.as_secs_f64() * 1000.0);
        edits.push(edit_to_visible_ms(
            &roster.url,
            &path,
            users_100k,
            &format!("Edited Marker {run}"),
        ));
    }
    let (start, edit) = (median(starts), median(edits));
    file_figures.start_100k = Some(start);
    rows.push(Row {
        figure: "start to first healthy answer, 100k users".into(),
        roster: format!("{start:.0} ms"),
        limit: format!("{parse:.0} ms (read + serde_json parse)"),
        ratio: format!("{:.1}x", start / parse),
        target: "≤ 2x".into(),
        peer: "-".into(),
    });
    rows.push(Row {
        figure: "external edit (rename-on-save) to visible, 100k users".into(),
        roster: format!("{edit:.0} ms"),
        limit: format!("{parse:.0} ms (read + parse)"),
        ratio: format!("{:.1}x (+{:.0} ms)", edit / parse, edit - parse),
        target: "≤ 2x + 50 ms".into(),
        peer: "-".into(),
    });
    rows.extend(memory_rows(set_100k, users_100k));

    // Durable creates over HTTP with 64 connections, against the folder's fsync rate.
    let fsync = raw_fsync_rate();
    for (index, size) in [(1, 10_000), (2, 100_000)] {
        let mut rates = Vec::new();
        for run in 0..RUNS {
            let (_dir, path) = working_copy(&sets[index].1);
            let (roster, _) = start_roster(&path, "warn");
            rates.push(wrk(&roster.url, 64, &create_script(&format!("{size}x{run}"))));
        }
        let rate = median(rates);
        file_figures.creates.push((size, rate));
        rows.push(Row {
            figure: format!("durable creates/s, 64 connections, {}k users", size / 1000),
            roster: format!("{rate:.0}"),
            limit: format!("{fsync:.0} (raw fsync/s)"),
            ratio: format!("{:.0}%", 100.0 * rate / fsync),
            target: if size == 10_000 {
                "> 50%".into()
            } else {
                "report".into()
            },
            peer: peer_cell(&|p| format!("{:.0}", wrk(p, 64, &create_script(&format!("peer{size}"))))),
        });
    }

    rows.extend(postgres::rows(&sets, &file_figures));
    print_rows(rows);
    println!(
        "\nmedians of {RUNS} runs ({LATENCY_SAMPLES} samples per latency); data sets in {}",
        data_folder.display()
    );
}
