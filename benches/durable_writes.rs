//! Durable creates per second through the JSON-file store, with and without group commit,
//! beside the folder's raw fsync rate measured in the same run (the physical limit).
//!
//! Run: `cargo bench --bench durable_writes` (add `-- --users 100000` for another size).
//! The data lives in a temporary folder under `target/` (or `$BENCH_DIR`), so the figures
//! are for the disk a user's data file would be on, not a RAM-backed `/tmp`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use roster::adapters::outbound::json_file::{JsonFileUserRepository, StoreOptions};
use roster::domain::{Change, ChangeOutcome, Email, User, UserId, UserName};
use roster::ports::UserRepository;

const RUNS: usize = 3;
const RUN_TIME: Duration = Duration::from_secs(2);

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var("BENCH_DIR").unwrap_or_else(|_| "target".into());
    std::fs::create_dir_all(&base).expect("bench folder");
    tempfile::tempdir_in(base).expect("temporary folder")
}

/// Small writes, each followed by fsync, for `RUN_TIME`: the most durable operations per
/// second this folder allows.
fn raw_fsync_rate(folder: &Path) -> f64 {
    let path = folder.join("fsync-probe");
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .expect("probe file");
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < RUN_TIME {
        file.write_all(b"0123456789abcdef").expect("write");
        file.sync_data().expect("fsync");
        count += 1;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn seed(path: &Path, users: usize) {
    let now = roster::domain::timestamp_text(Utc::now());
    let records: Vec<serde_json::Value> = (0..users)
        .map(|n| {
            serde_json::json!({
                "id": format!("seed-{n:06}"),
                "name": format!("Seed User {n}"),
                "email": format!("seed{n}@example.com"),
                "created_at": now,
                "updated_at": now,
            })
        })
        .collect();
    let mut bytes = serde_json::to_vec_pretty(&records).expect("seed json");
    bytes.push(b'\n');
    std::fs::write(path, bytes).expect("seed file");
}

/// Acknowledged creates per second from `clients` concurrent callers.
async fn creates_per_second(users: usize, clients: usize, max_batch: usize, history: bool) -> f64 {
    let dir = bench_dir();
    let path = dir.path().join("users.json");
    seed(&path, users);
    let store: Arc<dyn UserRepository> = Arc::new(
        JsonFileUserRepository::open_with(
            &path,
            StoreOptions {
                max_batch,
                history,
                ..StoreOptions::default()
            },
        )
        .expect("store"),
    );
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (store, done) = (Arc::clone(&store), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while started.elapsed() < RUN_TIME {
                let user = User::new(
                    UserId::new(format!("c{client}-{n}")),
                    UserName::parse("Bench User").expect("name"),
                    Email::parse(&format!("c{client}-{n}@bench.example")).expect("email"),
                    Utc::now(),
                );
                match store.apply(Change::Create(user)).await {
                    Ok(ChangeOutcome::Created(_)) => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    other => panic!("create failed: {other:?}"),
                }
                n += 1;
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let mut users = 10_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--users" {
            users = args.next().and_then(|v| v.parse().ok()).expect("--users N");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let fsync = median((0..RUNS).map(|_| raw_fsync_rate(bench_dir().path())).collect());
    println!(
        "durable creates through the JSON-file store, {users} users, median of {RUNS} runs of {RUN_TIME:?}"
    );
    println!("raw fsync rate of the folder: {fsync:.0}/s\n");
    println!(
        "| clients | group commit creates/s | vs 1 client | vs fsync | one write per create, creates/s | group commit gain |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut single = None;
    for clients in [1, 16, 64] {
        let grouped = median(
            (0..RUNS)
                .map(|_| runtime.block_on(creates_per_second(users, clients, usize::MAX, true)))
                .collect(),
        );
        let ungrouped = median(
            (0..RUNS)
                .map(|_| runtime.block_on(creates_per_second(users, clients, 1, true)))
                .collect(),
        );
        let base = *single.get_or_insert(grouped);
        println!(
            "| {clients} | {grouped:.0} | {:.1}x | {:.0}% | {ungrouped:.0} | {:.1}x |",
            grouped / base,
            100.0 * grouped / fsync,
            grouped / ungrouped
        );
    }
    // What the change history (appended and synced in each commit) costs.
    println!(
        "\n| clients | group commit with history, creates/s | without history, creates/s | history's cost |"
    );
    println!("| ---: | ---: | ---: | ---: |");
    for clients in [1, 64] {
        let with = median(
            (0..RUNS)
                .map(|_| runtime.block_on(creates_per_second(users, clients, usize::MAX, true)))
                .collect(),
        );
        let without = median(
            (0..RUNS)
                .map(|_| runtime.block_on(creates_per_second(users, clients, usize::MAX, false)))
                .collect(),
        );
        println!(
            "| {clients} | {with:.0} | {without:.0} | {:.0}% |",
            100.0 * (1.0 - with / without)
        );
    }
}
