//! The scale curve (`bench/run.sh --scale`): how start, memory, reads and writes grow with
//! the number of users, for the file store and for PostgreSQL, as medians of several runs.
//!
//! Data comes from `roster seed` of the built binary (one file per size in
//! `target/bench-data/`, the same users on every run and machine); each run starts the
//! optimised `roster` on a fresh copy of the file, or on a scratch database loaded with
//! `roster import` of it, and measures:
//! - start (spawn to the first healthy `/health`), then waits until a page by name answers
//!   fast (the indexes are built) and a quiet while (the allocator's decay);
//! - resident memory: steady, after 100 creates, and the peak of the whole run (`VmHWM`),
//!   each beside the data file's size;
//! - latency, over one keep-alive connection: a fuzzy search, a page of 10 by name, one
//!   create, and a read of a new user's address right after its create;
//! - creates/s from 64 connections with `wrk` for 5 seconds;
//! - file store: what share of a create the store's rewrite of the file is, from the
//!   store's own `roster_store_write_duration_seconds` (the time from taking the file lock
//!   to the new file in place), beside a raw write and fsync of the same number of bytes;
//! - PostgreSQL: `roster import` time, and the CPU a second, listening replica spends per
//!   change made through the first.
//!
//! `--baseline PATH` measures another `roster` binary (an older build) the same way in the
//! same run, alternating with this one run by run, and prints both with their ratio. The
//! table is Markdown; the curves go to `target/bench-data/scale.png`. Last, an in-process
//! measurement: what a `UserSet`'s indexes cost in memory per user, from jemalloc's counters.
//!
//! Every server gets `--max-query-scan` raised out of the way: the scan budget is a policy
//! for clients, and at a million users it would refuse the very queries measured here.

#[path = "support/harness.rs"]
mod harness;
#[path = "scale/memory.rs"]
mod memory;
#[path = "scale/plot.rs"]
mod plot;
// Test databases: test code, kept out of the library and shared with the integration tests.
#[allow(dead_code)]
#[path = "../tests/api/helpers/scratch.rs"]
mod scratch;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};

use harness::{Roster, create_script, median, wrk};
use scratch::{ScratchDatabase, test_server};

/// The benchmark measures jemalloc's own counters, so it runs on jemalloc, as the binary does.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const SEED: &str = "1";
const LATENCY_SAMPLES: usize = 25;
const WARM_UP: usize = 3;
const SEQUENTIAL_CREATES: usize = 20;
const BURST_CREATES: usize = 100;
const BURST_CONNECTIONS: usize = 16;
const REPLICA_CHANGES: usize = 200;
const WRK_CONNECTIONS: usize = 64;
const WRK_SECONDS: u64 = 5;
/// How long a server is left alone before its resident memory is read: jemalloc returns
/// freed pages after a one-second decay (`.cargo/config.toml`).
const QUIET: Duration = Duration::from_secs(3);
/// A page by name answering within this, three times running, means the indexes are built.
const INDEXED_PAGE: Duration = Duration::from_millis(5);
/// How long to wait for that before measuring anyway (an older build may have no index).
const INDEX_WAIT: Duration = Duration::from_secs(20);

const FUZZY: &str = r#"{ allUsers(fuzzy: "jon smith", maxDistance: 2, limit: 10) { id } }"#;
const PAGE: &str = "{ users(first: 10, orderBy: {field: NAME}) { nodes { id } } }";
const CREATE: &str = "mutation($u: UserInput!) { createUser(userData: $u) { ok user { id } } }";
const BY_EMAIL: &str = "query($e: String!) { userByEmail(email: $e) { id } }";

/// The scale curve's options.
#[derive(Parser, Debug)]
#[command(about = "Roster's scale curve: file store and PostgreSQL at 10k to 1M users")]
struct Args {
    /// The data set sizes, in users.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000, 100_000, 1_000_000])]
    sizes: Vec<u64>,
    /// Add 10 million users (PostgreSQL only, one run).
    #[arg(long)]
    huge: bool,
    /// Which stores to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [Store::File, Store::Postgres])]
    stores: Vec<Store>,
    /// Runs per size and store (each figure is the median over them).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Another `roster` binary (an older build) to measure the same way in the same run.
    #[arg(long, value_name = "PATH")]
    baseline: Option<PathBuf>,
    /// Skip the in-process measurement of the indexes' memory.
    #[arg(long)]
    no_index_memory: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Store {
    File,
    Postgres,
}

impl Store {
    fn label(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Postgres => "PostgreSQL",
        }
    }
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::File => "file",
            Self::Postgres => "postgres",
        })
    }
}

/// A binary under test.
struct Build {
    label: &'static str,
    binary: PathBuf,
}

/// What one run measured; `None` where the figure does not apply to the store.
#[derive(Clone, Debug, Default)]
struct Figures {
    start_ms: Option<f64>,
    ready_ms: Option<f64>,
    rss_steady_kib: Option<f64>,
    rss_created_kib: Option<f64>,
    hwm_kib: Option<f64>,
    fuzzy_ms: Option<f64>,
    fuzzy_found: Option<f64>,
    page_ms: Option<f64>,
    create_ms: Option<f64>,
    read_after_write_ms: Option<f64>,
    stale_reads: Option<f64>,
    creates_per_s: Option<f64>,
    store_write_ms: Option<f64>,
    create_mean_ms: Option<f64>,
    raw_write_ms: Option<f64>,
    import_s: Option<f64>,
    replica_cpu_us: Option<f64>,
}

/// One figure of a run's, by what reads it.
type Figure = fn(&Figures) -> Option<f64>;

/// The figures of one size, store and build, over its runs.
struct Series {
    size: u64,
    store: Store,
    build: &'static str,
    runs: Vec<Figures>,
}

impl Series {
    /// The median of one figure over the runs that have it.
    fn median(&self, figure: Figure) -> Option<f64> {
        let values: Vec<f64> = self.runs.iter().filter_map(figure).collect();
        (!values.is_empty()).then(|| median(values))
    }
}

/// Blocking calls over one reqwest client (one keep-alive connection for sequential
/// requests) on a runtime of its own.
struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Self {
        Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// One GraphQL request: its latency in milliseconds (to the whole body) and its answer.
    fn gql(&self, url: &str, query: &str, variables: Value) -> (f64, Value) {
        let request = self
            .client
            .post(format!("{url}/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        let started = Instant::now();
        let body = self.runtime.block_on(async {
            let response = request.send().await?;
            response.bytes().await
        });
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        let body = body.unwrap_or_else(|err| panic!("POST {url}/graphql: {err}"));
        (elapsed, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn get(&self, url: &str) -> Option<String> {
        self.runtime.block_on(async {
            let response = self.client.get(url).send().await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            response.text().await.ok()
        })
    }

    /// Creates a user with `email`; its id.
    fn create(&self, url: &str, email: &str) -> (f64, String) {
        let (ms, answer) = self.gql(
            url,
            CREATE,
            json!({ "u": { "name": "Bench Writer", "email": email } }),
        );
        let payload = &answer["data"]["createUser"];
        assert_eq!(payload["ok"], true, "create {email}: {answer}");
        (ms, payload["user"]["id"].as_str().unwrap_or_default().to_owned())
    }

    /// Creates a user for each of `emails`, `connections` at a time.
    fn create_concurrently(&self, url: &str, emails: Vec<String>, connections: usize) {
        let endpoint = format!("{url}/graphql");
        self.runtime.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for chunk in emails.chunks(emails.len().div_ceil(connections).max(1)) {
                let (client, endpoint, chunk) = (self.client.clone(), endpoint.clone(), chunk.to_vec());
                tasks.spawn(async move {
                    for email in chunk {
                        let body = json!({ "query": CREATE, "variables": { "u": { "name": "Bench Burst", "email": email } } });
                        let answer: Value = client.post(&endpoint).json(&body).send().await?.json().await?;
                        assert_eq!(answer["data"]["createUser"]["ok"], true, "{answer}");
                    }
                    Ok::<(), reqwest::Error>(())
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("a create task").expect("the creates are answered");
            }
        });
    }

    /// Spawn to the first healthy `/health`, in milliseconds.
    fn wait_healthy(&self, roster: &mut Roster) -> f64 {
        let health = format!("{}/health", roster.url);
        loop {
            if self.get(&health).is_some() {
                return roster.spawned.elapsed().as_secs_f64() * 1000.0;
            }
            assert!(roster.is_running(), "roster exited before it was healthy");
            assert!(
                roster.spawned.elapsed() < Duration::from_secs(600),
                "roster never became healthy"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until a page by name answers within [`INDEXED_PAGE`] three times running (or
    /// [`INDEX_WAIT`] has passed); spawn to then, in milliseconds.
    fn wait_indexed(&self, roster: &Roster) -> f64 {
        let page = "{ users(first: 1, orderBy: {field: NAME}) { nodes { id } } }";
        let since = Instant::now();
        let mut fast = 0;
        while fast < 3 && since.elapsed() < INDEX_WAIT {
            let (ms, _) = self.gql(&roster.url, page, json!({}));
            fast = if ms < INDEXED_PAGE.as_secs_f64() * 1000.0 {
                fast + 1
            } else {
                0
            };
        }
        roster.spawned.elapsed().as_secs_f64() * 1000.0
    }

    /// The sum and count of a histogram in `/metrics`.
    fn histogram(&self, url: &str, name: &str) -> (f64, f64) {
        let text = self.get(&format!("{url}/metrics")).unwrap_or_default();
        let value = |suffix: &str| {
            let metric = format!("{name}_{suffix}");
            text.lines()
                .filter(|line| {
                    line.strip_prefix(&metric)
                        .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
                })
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        };
        (value("sum"), value("count"))
    }

    /// Median latency of `query` after a warm-up, and how many users its list held; `None`
    /// (and a note) when the server answers with errors.
    fn latency(&self, url: &str, query: &str, list: fn(&Value) -> Option<&Vec<Value>>) -> Option<(f64, f64)> {
        let mut samples = Vec::new();
        let mut found = 0;
        for round in 0..WARM_UP + LATENCY_SAMPLES {
            let (ms, answer) = self.gql(url, query, json!({}));
            if let Some(errors) = answer.get("errors") {
                eprintln!("{query} was refused, not measured: {errors}");
                return None;
            }
            found = list(&answer).map_or(0, Vec::len);
            if round >= WARM_UP {
                samples.push(ms);
            }
        }
        Some((median(samples), found as f64))
    }
}

fn main() {
    let args = Args::parse();
    let data = PathBuf::from("target/bench-data");
    std::fs::create_dir_all(&data).expect("the data folder");
    let mut builds = vec![Build {
        label: "this build",
        binary: PathBuf::from(env!("CARGO_BIN_EXE_roster")),
    }];
    if let Some(baseline) = &args.baseline {
        assert!(baseline.is_file(), "no baseline binary at {}", baseline.display());
        builds.push(Build {
            label: "baseline",
            binary: baseline.clone(),
        });
    }
    let mut sizes = args.sizes.clone();
    if args.huge {
        sizes.push(10_000_000);
    }
    let http = Http::new();
    let server = if args.stores.contains(&Store::Postgres) {
        http.runtime.block_on(test_server("the PostgreSQL scale figures"))
    } else {
        None
    };

    // The machine is shared: its load before and after says how quiet the run was.
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load_before = load();
    let mut series: Vec<Series> = Vec::new();
    let total_started = Instant::now();
    for &size in &sizes {
        let file = harness::seed(&builds[0].binary, &data, size, SEED);
        for &store in &args.stores {
            // Ten million users are for the database only: the file store rewrites its file
            // on every commit, and the figures would say nothing new.
            if size >= 10_000_000 && store == Store::File {
                continue;
            }
            if store == Store::Postgres && server.is_none() {
                continue;
            }
            let runs = if size >= 10_000_000 { 1 } else { args.runs.max(1) };
            let first = series.len();
            for build in &builds {
                series.push(Series {
                    size,
                    store,
                    build: build.label,
                    runs: Vec::new(),
                });
            }
            for run in 0..runs {
                for (index, build) in builds.iter().enumerate() {
                    let tag = format!("{}{size}r{run}b{index}", store.label());
                    let started = Instant::now();
                    let figures = match (store, &server) {
                        (Store::File, _) => measure_file(&http, build, &file, &tag),
                        (Store::Postgres, Some(server)) => {
                            measure_postgres(&http, build, &file, server, &tag)
                        }
                        (Store::Postgres, None) => unreachable!("skipped above"),
                    };
                    eprintln!(
                        "{} users, {}, {}, run {}: {:.0} s",
                        size,
                        store.label(),
                        build.label,
                        run + 1,
                        started.elapsed().as_secs_f64()
                    );
                    series[first + index].runs.push(figures);
                }
            }
        }
    }

    print_table(&series, &builds, &data, args.runs);
    print_details(&series);
    let plot_path = data.join("scale.png");
    match plot::draw(&plot_path, &series_points(&series)) {
        Ok(()) => println!("\nplot: {}", plot_path.display()),
        Err(why) => println!("\nno plot: {why}"),
    }
    if !args.no_index_memory {
        memory::print(
            &sizes
                .iter()
                .copied()
                .filter(|&n| n <= 10_000_000)
                .collect::<Vec<_>>(),
        );
    }
    println!(
        "\nwhole run: {:.0} s; {} run(s) per size, store and build (one at 10M); load average \
         before: {}, after: {}; {} cores",
        total_started.elapsed().as_secs_f64(),
        args.runs,
        load_before.trim(),
        load().trim(),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    for build in &builds {
        println!("{}: {}", build.label, build.binary.display());
    }
}

/// The flags every measured server gets beside its store's.
fn serving_flags(store: &[&str]) -> Vec<String> {
    let mut flags: Vec<String> = store.iter().map(|&flag| flag.to_owned()).collect();
    flags.extend(["--max-query-scan".to_owned(), u64::MAX.to_string()]);
    flags
}

fn file_size(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |meta| meta.len() as f64)
}

/// One run on the file store, on a fresh copy of `data_set`.
fn measure_file(http: &Http, build: &Build, data_set: &Path, tag: &str) -> Figures {
    let folder = tempfile::tempdir_in("target/bench-data").expect("a working folder");
    let path = folder.path().join("users.json");
    std::fs::copy(data_set, &path).expect("a working copy");
    let mut roster = Roster::spawn(
        &build.binary,
        &serving_flags(&["--data-file", path.to_str().unwrap()]),
        "warn",
    );
    let mut figures = serving(http, &mut roster, tag);
    throughput(&roster, tag, &mut figures);
    figures.raw_write_ms = Some(raw_write_ms(data_set, folder.path()));
    figures
}

/// Writing and fsyncing the data set's bytes into a new file in `folder`: the least a
/// rewrite of the file can cost on this disk, in milliseconds.
fn raw_write_ms(path: &Path, folder: &Path) -> f64 {
    use std::io::Write;
    let bytes = std::fs::read(path).expect("the data file");
    let samples = (0..3)
        .map(|n| {
            let probe = folder.join(format!("raw-{n}"));
            let started = Instant::now();
            let mut file = std::fs::File::create(&probe).expect("a probe file");
            file.write_all(&bytes).expect("write");
            file.sync_all().expect("fsync");
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            drop(file);
            let _ = std::fs::remove_file(&probe);
            ms
        })
        .collect();
    median(samples)
}

/// One run on PostgreSQL: a scratch database loaded with `roster import` of `data_set` by
/// the build under test, a replica measured like the file store, then a second replica's
/// CPU per change.
fn measure_postgres(http: &Http, build: &Build, data_set: &Path, server: &str, tag: &str) -> Figures {
    let database = http
        .runtime
        .block_on(ScratchDatabase::create(server, "roster_scale"))
        .expect("a scratch database");
    let started = Instant::now();
    let status = Command::new(&build.binary)
        .arg("import")
        .arg(data_set)
        .args(["--database-url", database.url()])
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("roster import runs");
    assert!(status.success(), "roster import {} failed", data_set.display());
    let import_s = started.elapsed().as_secs_f64();
    let flags = serving_flags(&["--database-url", database.url()]);
    let mut first = Roster::spawn(&build.binary, &flags, "warn");
    let mut figures = serving(http, &mut first, tag);
    figures.import_s = Some(import_s);
    figures.replica_cpu_us = replica_cpu_per_change_us(http, build, &first, &flags, tag);
    throughput(&first, tag, &mut figures);
    drop(first);
    if let Err(err) = http.runtime.block_on(database.remove()) {
        eprintln!("could not drop the scratch database: {err}");
    }
    figures
}

/// A second replica on the same database, settled, then [`REPLICA_CHANGES`] creates sent
/// to `first`: the second's CPU time from before the first create until it shows the last
/// one, per change, in microseconds (`None` when it never does). The second is asked for
/// the last address only after every create is acknowledged, so the few polls add little.
fn replica_cpu_per_change_us(
    http: &Http,
    build: &Build,
    first: &Roster,
    flags: &[String],
    tag: &str,
) -> Option<f64> {
    let mut second = Roster::spawn(&build.binary, flags, "warn");
    http.wait_healthy(&mut second);
    http.wait_indexed(&second);
    std::thread::sleep(QUIET);
    let before = second.cpu_time();
    let mut last = String::new();
    for n in 0..REPLICA_CHANGES {
        last = format!("replica-{tag}-{n}@bench.example");
        http.create(&first.url, &last);
    }
    let waited = Instant::now();
    loop {
        let (_, answer) = http.gql(&second.url, BY_EMAIL, json!({ "e": last }));
        if !answer["data"]["userByEmail"].is_null() {
            break;
        }
        if waited.elapsed() > Duration::from_secs(600) {
            eprintln!("the second replica did not show the creates within 10 minutes");
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Some((second.cpu_time() - before).as_secs_f64() * 1e6 / REPLICA_CHANGES as f64)
}

/// Start, memory, and every latency: what both stores share.
fn serving(http: &Http, roster: &mut Roster, tag: &str) -> Figures {
    let mut figures = Figures {
        start_ms: Some(http.wait_healthy(roster)),
        ..Figures::default()
    };
    figures.ready_ms = Some(http.wait_indexed(roster));
    // A first fuzzy search builds whatever a search keeps; then the memory settles.
    http.gql(&roster.url, FUZZY, json!({}));
    std::thread::sleep(QUIET);
    figures.rss_steady_kib = Some(roster.status_kib("VmRSS") as f64);
    let burst = (0..BURST_CREATES)
        .map(|n| format!("burst-{tag}-{n}@bench.example"))
        .collect();
    http.create_concurrently(&roster.url, burst, BURST_CONNECTIONS);
    std::thread::sleep(QUIET);
    figures.rss_created_kib = Some(roster.status_kib("VmRSS") as f64);

    let fuzzy = http.latency(&roster.url, FUZZY, |a| a["data"]["allUsers"].as_array());
    figures.fuzzy_ms = fuzzy.map(|(ms, _)| ms);
    figures.fuzzy_found = fuzzy.map(|(_, found)| found);
    figures.page_ms = http
        .latency(&roster.url, PAGE, |a| a["data"]["users"]["nodes"].as_array())
        .map(|(ms, _)| ms);

    const WRITES: &str = "roster_store_write_duration_seconds";
    let (sum_before, count_before) = http.histogram(&roster.url, WRITES);
    let creates: Vec<f64> = (0..SEQUENTIAL_CREATES)
        .map(|n| {
            http.create(&roster.url, &format!("one-{tag}-{n}@bench.example"))
                .0
        })
        .collect();
    let (sum_after, count_after) = http.histogram(&roster.url, WRITES);
    if count_after > count_before {
        figures.store_write_ms = Some((sum_after - sum_before) / (count_after - count_before) * 1000.0);
    }
    figures.create_mean_ms = Some(creates.iter().sum::<f64>() / creates.len() as f64);
    figures.create_ms = Some(median(creates));

    let mut reads = Vec::new();
    let mut stale = 0;
    for n in 0..SEQUENTIAL_CREATES {
        let email = format!("read-{tag}-{n}@bench.example");
        let (_, id) = http.create(&roster.url, &email);
        let (ms, answer) = http.gql(&roster.url, BY_EMAIL, json!({ "e": email }));
        stale += usize::from(answer["data"]["userByEmail"]["id"] != id.as_str());
        reads.push(ms);
    }
    figures.read_after_write_ms = Some(median(reads));
    figures.stale_reads = Some(stale as f64);
    figures
}

/// Creates/s under load, then the run's peak memory (which the load may have set).
fn throughput(roster: &Roster, tag: &str, figures: &mut Figures) {
    figures.creates_per_s = Some(wrk(
        &roster.url,
        WRK_CONNECTIONS,
        WRK_SECONDS,
        &create_script(tag),
    ));
    figures.hwm_kib = Some(roster.status_kib("VmHWM") as f64);
}

/// A figure's cell: this build's value, and with a baseline, its value and the ratio.
fn cell(series: &[&Series], figure: Figure, show: &dyn Fn(f64) -> String) -> String {
    let values: Vec<Option<f64>> = series.iter().map(|s| s.median(figure)).collect();
    match values.as_slice() {
        [Some(ours)] => show(*ours),
        [Some(ours), Some(theirs)] => format!("{} / {} ({:.2}x)", show(*ours), show(*theirs), ours / theirs),
        [Some(ours), None] => format!("{} / -", show(*ours)),
        _ => "-".to_owned(),
    }
}

fn mib_of(kib: f64, file_bytes: f64) -> String {
    format!("{:.0} MiB ({:.1}x)", kib / 1024.0, kib * 1024.0 / file_bytes)
}

fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} ms")
    } else {
        format!("{value:.0} ms")
    }
}

/// The main table: a row per size and store, a column per figure.
fn print_table(series: &[Series], builds: &[Build], data: &Path, runs: usize) {
    let labels: Vec<&str> = builds.iter().map(|b| b.label).collect();
    println!(
        "\n## Scale curve ({}; medians of {runs} runs, one at 10M; RUST_LOG=warn)\n",
        if labels.len() > 1 {
            "cells: this build / baseline (ratio)"
        } else {
            "this build"
        }
    );
    println!(
        "| users | store | file MiB | start | RSS steady (x file) | RSS +100 creates (x file) | VmHWM (x file) \
         | fuzzy | page of 10 | one create | read after write | creates/s (64 conn.) | store write / create \
         | import | replica CPU/change |"
    );
    println!(
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut keys: Vec<(u64, Store)> = series.iter().map(|s| (s.size, s.store)).collect();
    keys.dedup();
    for (size, store) in keys {
        let group: Vec<&Series> = series
            .iter()
            .filter(|s| s.size == size && s.store == store)
            .collect();
        let bytes = file_size(&data.join(format!("scale-{size}.json")));
        let memory = |figure: Figure| cell(&group, figure, &|kib| mib_of(kib, bytes));
        let share = |s: &Series| {
            let (write, create) = (s.median(|f| f.store_write_ms)?, s.median(|f| f.create_mean_ms)?);
            Some((write, create))
        };
        let shares: Vec<String> = group
            .iter()
            .map(|s| {
                share(s).map_or("-".to_owned(), |(write, create)| {
                    format!("{} of {} ({:.0}%)", ms(write), ms(create), 100.0 * write / create)
                })
            })
            .collect();
        println!(
            "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            thousands(size),
            store.label(),
            bytes / (1024.0 * 1024.0),
            cell(&group, |f| f.start_ms, &ms),
            memory(|f| f.rss_steady_kib),
            memory(|f| f.rss_created_kib),
            memory(|f| f.hwm_kib),
            cell(&group, |f| f.fuzzy_ms, &ms),
            cell(&group, |f| f.page_ms, &ms),
            cell(&group, |f| f.create_ms, &ms),
            cell(&group, |f| f.read_after_write_ms, &ms),
            cell(&group, |f| f.creates_per_s, &|v| format!("{v:.0}")),
            shares.join(" / "),
            cell(&group, |f| f.import_s, &|v| format!("{v:.1} s")),
            cell(&group, |f| f.replica_cpu_us, &|v| format!("{v:.0} µs")),
        );
    }
}

/// What the main table leaves out: when the indexes were ready, what the fuzzy search
/// found, stale reads, the raw write floor, and each figure's spread over the runs.
fn print_details(series: &[Series]) {
    println!(
        "\n| users | store | build | ready (indexed) | fuzzy found | stale reads | raw write + fsync | creates/s per run | fuzzy per run |"
    );
    println!("| ---: | --- | --- | ---: | ---: | ---: | ---: | --- | --- |");
    for s in series {
        let each = |figure: Figure, show: &dyn Fn(f64) -> String| {
            s.runs
                .iter()
                .filter_map(figure)
                .map(show)
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            thousands(s.size),
            s.store.label(),
            s.build,
            s.median(|f| f.ready_ms).map_or("-".into(), ms),
            s.median(|f| f.fuzzy_found)
                .map_or("-".into(), |v| format!("{v:.0}")),
            s.runs.iter().filter_map(|f| f.stale_reads).sum::<f64>(),
            s.median(|f| f.raw_write_ms).map_or("-".into(), ms),
            each(|f| f.creates_per_s, &|v| format!("{v:.0}")),
            each(|f| f.fuzzy_ms, &ms),
        );
    }
}

fn thousands(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// The plotted curves: for each figure, a line per store and build.
fn series_points(series: &[Series]) -> Vec<plot::Curve> {
    let figures: [(&str, Figure); 6] = [
        ("fuzzy \"jon smith\" (ms)", |f| f.fuzzy_ms),
        ("page of 10 by name (ms)", |f| f.page_ms),
        ("one create (ms)", |f| f.create_ms),
        ("read after write (ms)", |f| f.read_after_write_ms),
        ("creates/s, 64 connections", |f| f.creates_per_s),
        ("resident memory, steady (MiB)", |f| {
            f.rss_steady_kib.map(|kib| kib / 1024.0)
        }),
    ];
    let mut curves = Vec::new();
    for (panel, (title, figure)) in figures.into_iter().enumerate() {
        let mut lines: Vec<(Store, &str)> = series.iter().map(|s| (s.store, s.build)).collect();
        lines.sort_by_key(|(store, build)| (store.label(), *build));
        lines.dedup();
        for (store, build) in lines {
            let points: Vec<(f64, f64)> = series
                .iter()
                .filter(|s| s.store == store && s.build == build)
                .filter_map(|s| Some((s.size as f64, s.median(figure)?)))
                .collect();
            curves.push(plot::Curve {
                panel,
                title,
                label: format!("{} ({build})", store.label()),
                database: store == Store::Postgres,
                baseline: build == "baseline",
                points,
            });
        }
    }
    curves
}
