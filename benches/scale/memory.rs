//! What a `UserSet` and its indexes cost in memory, measured in this process: jemalloc's
//! count of allocated bytes before and after each step, for the users `roster seed` makes.
//!
//! Three figures per size: the users as a store reads them (the list it publishes first),
//! what `index()` adds (each user's entry with its search keys, and the six ordered sets),
//! and what one create on a snapshot of the indexed set adds (the paths it copies, which
//! should stay a few KiB at any size).

use std::sync::Arc;
use std::time::Instant;

use roster::adapters::inbound::cli::seed::Seeder;
use roster::domain::{Change, User, UserId, UserSet};
use tikv_jemalloc_ctl::{epoch, stats};

/// How many snapshots with one create each are counted together.
const SNAPSHOTS: usize = 1000;

/// Bytes the program holds allocated now.
fn allocated() -> f64 {
    epoch::advance().expect("jemalloc's epoch");
    stats::allocated::read().expect("jemalloc's statistics") as f64
}

/// Prints the table for each of `sizes`.
pub fn print(sizes: &[u64]) {
    println!("\n## Memory of a user set, in process (jemalloc's allocated bytes)\n");
    println!(
        "| users | users as listed | per user | indexes (index()) | per user | indexes / users \
         | one create on a snapshot | index() time |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    // The name tables are built on first use; build them before anything is counted.
    drop(Seeder::new(1, 1).next());
    for &size in sizes {
        let start = allocated();
        let users: Vec<Arc<User>> = Seeder::new(1, size).map(Arc::new).collect();
        let mut set = UserSet::new(users);
        let listed = allocated();
        let started = Instant::now();
        set.index();
        let took = started.elapsed();
        let indexed = allocated();
        // Many snapshots, each with one create of its own: a single one is smaller than
        // what jemalloc's thread caches hide from its counters.
        let snapshots: Vec<UserSet> = (0..SNAPSHOTS)
            .map(|n| {
                let mut snapshot = set.clone();
                snapshot.apply(Change::Create(User::restore(
                    UserId::new(format!("00000000-0000-4000-8000-{n:012}")),
                    "Index Probe".to_owned(),
                    format!("index-probe-{n}@bench.example"),
                    None,
                    None,
                )));
                snapshot
            })
            .collect();
        let changed = allocated();
        let per_change = (changed - indexed) / SNAPSHOTS as f64;
        let n = size.max(1) as f64;
        let (users_bytes, index_bytes) = (listed - start, indexed - listed);
        println!(
            "| {size} | {:.1} MiB | {:.0} B | {:.1} MiB | {:.0} B | {:.2}x | {:.1} KiB | {:.0} ms |",
            users_bytes / 1048576.0,
            users_bytes / n,
            index_bytes / 1048576.0,
            index_bytes / n,
            index_bytes / users_bytes,
            per_change / 1024.0,
            took.as_secs_f64() * 1000.0,
        );
        drop((snapshots, set));
    }
}
