//! The real binary's allocator: jemalloc, returning freed pages to the system from a background
//! thread within about a second, so a reload's peak does not stay resident
//! (docs/src/benchmarks.md, Memory and the allocator). Its options are set at build time
//! (`Cargo.toml` and `.cargo/config.toml`); jemalloc prints the options in force at exit when
//! asked to.

use std::process::{Command, Stdio};

#[cfg(not(target_env = "msvc"))]
#[test]
fn the_binary_allocates_with_jemalloc_and_purges_freed_pages_in_the_background_within_a_second() {
    let output = Command::new(env!("CARGO_BIN_EXE_roster"))
        .arg("--print-schema")
        // Adds only "print statistics at exit"; the built-in options stay in force.
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .stdin(Stdio::null())
        .output()
        .expect("roster runs");
    assert!(output.status.success(), "roster --print-schema failed");
    let stats = String::from_utf8_lossy(&output.stderr);
    for option in [
        "opt.background_thread: true",
        "opt.dirty_decay_ms: 1000 ",
        "opt.muzzy_decay_ms: 0 ",
    ] {
        assert!(
            stats.lines().any(|line| line.trim_start().starts_with(option)),
            "jemalloc's options do not include {option:?}; what it printed:\n{stats}"
        );
    }
}
