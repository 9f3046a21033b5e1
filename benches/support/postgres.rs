//! The PostgreSQL figures of the benchmark suite, measured beside the file store's in the
//! same run: durable creates at 10k and 100k users, reads from one replica, how soon a
//! create on one replica shows on another, and a replica's start at 100k users.
//!
//! Each measurement gets a scratch database of its own on the server named by
//! `ROSTER_TEST_DATABASE_URL` (default: the local server), loaded with the same data set
//! through `roster import`'s code, and dropped afterwards.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::scratch::{ScratchDatabase, test_server};
use roster::adapters::inbound::cli::transfer::import_file;

use super::{
    Connection, RUNS, Roster, Row, create_script, graphql_body, median, post_script, start_roster_with, wrk,
};

/// What the file store measured in the same run, to stand beside.
pub struct FileFigures {
    /// `allUsers(limit: 10)` req/s at 10k users.
    pub reads: Option<f64>,
    /// Durable creates/s at 64 connections, by data set size.
    pub creates: Vec<(usize, f64)>,
    /// Start to first healthy answer at 100k users, ms.
    pub start_100k: Option<f64>,
}

fn cell(value: Option<f64>, what: &str) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.0} ({what})"))
}

fn ratio(ours: f64, theirs: Option<f64>) -> String {
    theirs.map_or_else(|| "-".to_owned(), |t| format!("{:.2}x", ours / t))
}

/// A scratch database holding the data set at `set`, and a replica started on it.
fn loaded(runtime: &tokio::runtime::Runtime, server: &str, set: &Path) -> ScratchDatabase {
    let database = runtime
        .block_on(ScratchDatabase::create(server, "roster_bench"))
        .expect("a scratch database");
    runtime
        .block_on(import_file(
            set,
            database.url(),
            Duration::from_secs(10),
            false,
            &|_, _| {},
        ))
        .expect("the data set imports");
    database
}

fn replica(database: &ScratchDatabase) -> (Roster, Duration) {
    start_roster_with(&["--database-url", database.url()], "warn")
}

/// The PostgreSQL rows; none (and a note) without a reachable server.
pub fn rows(sets: &[(usize, PathBuf)], file: &FileFigures) -> Vec<Row> {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let Some(server) = runtime.block_on(test_server("the PostgreSQL benchmark figures")) else {
        return Vec::new();
    };
    let mut rows = Vec::new();

    for (index, size) in [(1, 10_000), (2, 100_000)] {
        let mut rates = Vec::new();
        for run in 0..RUNS {
            let database = loaded(&runtime, &server, &sets[index].1);
            let (roster, _) = replica(&database);
            rates.push(wrk(&roster.url, 64, &create_script(&format!("pg{size}x{run}"))));
        }
        let rate = median(rates);
        let theirs = file.creates.iter().find(|(s, _)| *s == size).map(|(_, r)| *r);
        rows.push(Row {
            figure: format!(
                "durable creates/s, 64 connections, {}k users, PostgreSQL",
                size / 1000
            ),
            roster: format!("{rate:.0}"),
            limit: cell(theirs, "file store"),
            ratio: ratio(rate, theirs),
            target: "report (flat with size)".into(),
            peer: "-".into(),
        });
    }

    // Reads and cross-replica visibility at 10k users.
    let database = loaded(&runtime, &server, &sets[1].1);
    let (first, _) = replica(&database);
    let (second, _) = replica(&database);
    let script = post_script(&graphql_body("{ allUsers(limit: 10) { id name email } }"));
    let reads = median((0..RUNS).map(|_| wrk(&first.url, 32, &script)).collect());
    rows.push(Row {
        figure: "`allUsers(limit: 10)` req/s, 10k users, one PostgreSQL replica".into(),
        roster: format!("{reads:.0}"),
        limit: cell(file.reads, "file store"),
        ratio: ratio(reads, file.reads),
        target: "report".into(),
        peer: "-".into(),
    });
    let mut delays = visibility_ms(&first.url, &second.url, 200);
    delays.sort_by(f64::total_cmp);
    let p99 = delays[(delays.len() * 99 / 100).min(delays.len() - 1)];
    rows.push(Row {
        figure: "create on one replica to visible on another, 10k users (median / p99)".into(),
        roster: format!("{:.1} / {p99:.1} ms", median(delays.clone())),
        limit: "-".into(),
        ratio: "-".into(),
        target: "well under 1 s".into(),
        peer: "-".into(),
    });
    drop((first, second, database));

    let database = loaded(&runtime, &server, &sets[2].1);
    let starts = median(
        (0..RUNS)
            .map(|_| replica(&database).1.as_secs_f64() * 1000.0)
            .collect(),
    );
    rows.push(Row {
        figure: "start to first healthy answer, 100k users, PostgreSQL replica".into(),
        roster: format!("{starts:.0} ms"),
        limit: cell(file.start_100k, "file store, ms"),
        ratio: ratio(starts, file.start_100k),
        target: "report".into(),
        peer: "-".into(),
    });
    rows
}

/// Creates `samples` users one at a time on `writer` and, for each, polls `reader` until
/// `userById` finds it: milliseconds from the acknowledgement to the first sighting.
fn visibility_ms(writer: &str, reader: &str, samples: usize) -> Vec<f64> {
    let graphql = |base: &str| format!("{base}/graphql");
    let mut write = Connection::open(&graphql(writer)).expect("a connection");
    let mut read = Connection::open(&graphql(reader)).expect("a connection");
    let mut delays = Vec::with_capacity(samples);
    for n in 0..samples {
        let create = graphql_body(&format!(
            "mutation {{ createUser(userData: {{name: \"Seen {n}\", email: \"seen{n}@bench.test\"}}) {{ user {{ id }} }} }}"
        ));
        let answer = write.send(&graphql(writer), Some(&create)).expect("a create");
        let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
        let id = body["data"]["createUser"]["user"]["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        let acknowledged = Instant::now();
        let lookup = graphql_body(&format!("{{ userById(id: \"{id}\") {{ id }} }}"));
        loop {
            let answer = read.send(&graphql(reader), Some(&lookup)).expect("a lookup");
            if !String::from_utf8_lossy(&answer.body).contains("null") {
                break;
            }
            assert!(acknowledged.elapsed() < Duration::from_secs(10), "never visible");
        }
        delays.push(acknowledged.elapsed().as_secs_f64() * 1000.0);
    }
    delays
}
