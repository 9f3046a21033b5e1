//! What live subscribers cost a `roster` process (run it with `bench/run.sh --subscribers`):
//! N WebSockets from one client, each with M `userEvents` subscriptions, then K creates over
//! HTTP. Printed: the server's CPU time per create (from its threads' `schedstat`, so its own
//! work only: the client runs in this process), the same per subscriber, and its resident
//! memory per subscriber.
//!
//! Every create waits until every subscription has received its event (with the right id on
//! the right socket), so the clients read all messages and a create's fan-out is finished
//! before the next starts. Subscriptions are live once `roster_graphql_subscribers` on
//! `/metrics` counts them all. `--binary PATH` (repeatable) measures other builds in the same
//! run, for a before/after figure; `--log` sets `RUST_LOG` (the service's default is `info`).
//!
//! Traffic goes to 127.0.0.1 only, and every wait is bounded.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_graphql::futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[allow(dead_code)]
#[path = "support/harness.rs"]
mod harness;

use harness::{Roster, median};

/// How long any one wait may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(120);

#[derive(clap::Parser)]
struct Args {
    /// WebSockets to open.
    #[arg(long, default_value_t = 255)]
    sockets: usize,
    /// Subscriptions on each socket.
    #[arg(long, default_value_t = 100)]
    per_socket: usize,
    /// Creates to measure (after two to warm up).
    #[arg(long, default_value_t = 50)]
    creates: usize,
    /// Distinct selections, given to the subscriptions in turn (1: all the same).
    #[arg(long, default_value_t = 1)]
    selections: usize,
    /// `RUST_LOG` for the server.
    #[arg(long, default_value = "info")]
    log: String,
    /// Runs per binary; medians are printed.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// A `roster` binary to measure (repeatable; default: this build's).
    #[arg(long = "binary")]
    binaries: Vec<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The `n`th selection: all subscribe to every event; they differ in the fields they ask.
fn selection(n: usize) -> String {
    let fields = [
        "kind",
        "at",
        "revision",
        "user { id }",
        "user { name }",
        "user { email }",
    ];
    let mut asked: Vec<&str> = vec!["kind", "user { id name email }"];
    // Each further selection adds an alias, so texts and answers differ.
    let extra = (0..n).map(|i| format!("a{i}: {}", fields[i % fields.len()]));
    let extra: Vec<String> = extra.collect();
    asked.extend(extra.iter().map(String::as_str));
    format!("subscription {{ userEvents {{ {} }} }}", asked.join(" "))
}

struct Figures {
    cpu_ms_per_create: f64,
    rss_kib_per_subscriber: f64,
    rss_mib: f64,
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    let binaries = if args.binaries.is_empty() {
        vec![PathBuf::from(env!("CARGO_BIN_EXE_roster"))]
    } else {
        args.binaries.clone()
    };
    let subscribers = args.sockets * args.per_socket;
    println!(
        "{} sockets x {} subscriptions = {subscribers} subscribers, {} selection(s), {} creates, RUST_LOG={}",
        args.sockets, args.per_socket, args.selections, args.creates, args.log
    );
    println!(
        "| binary | CPU ms per create | CPU µs per subscriber per event | RSS MiB | RSS KiB per subscriber |"
    );
    println!("|---|---|---|---|---|");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    for binary in &binaries {
        let runs: Vec<Figures> = (0..args.runs)
            .map(|_| runtime.block_on(measure(binary, &args)))
            .collect();
        let cpu = median(runs.iter().map(|f| f.cpu_ms_per_create).collect());
        let rss = median(runs.iter().map(|f| f.rss_mib).collect());
        let per = median(runs.iter().map(|f| f.rss_kib_per_subscriber).collect());
        println!(
            "| {} | {cpu:.2} | {:.3} | {rss:.0} | {per:.2} |",
            binary.display(),
            cpu * 1000.0 / subscribers as f64
        );
    }
}

async fn measure(binary: &std::path::Path, args: &Args) -> Figures {
    let dir = tempfile::tempdir_in("target").expect("temp folder");
    let data = dir.path().join("users.json");
    std::fs::write(&data, "[]").expect("data file");
    let sockets = args.sockets.to_string();
    let operations = args.per_socket.to_string();
    let flags = [
        "--data-file".as_ref(),
        data.as_os_str(),
        "--max-websockets".as_ref(),
        sockets.as_ref(),
        "--max-websockets-per-client".as_ref(),
        sockets.as_ref(),
        "--max-websocket-operations".as_ref(),
        operations.as_ref(),
    ];
    // The process-wide cap is raised through its variable, which builds without it ignore.
    let roster = Roster::spawn_with_env(
        binary,
        &flags,
        &args.log,
        &[("ROSTER_MAX_SUBSCRIPTIONS", "1000000")],
    );
    let http = reqwest::Client::new();
    wait_healthy(&http, &roster).await;
    let idle_kib = roster.status_kib("VmRSS");

    let received = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for socket in 0..args.sockets {
        readers.push(open(&roster.url, socket, args, Arc::clone(&received)).await);
    }
    let subscribers = args.sockets * args.per_socket;
    wait_for_subscribers(&http, &roster, subscribers).await;
    let live_kib = roster.status_kib("VmRSS");

    let mut create = |n: usize| {
        let body = json!({
            "query": "mutation($u: UserInput!) { createUser(userData: $u) { ok } }",
            "variables": { "u": { "name": format!("Sub {n}"), "email": format!("sub{n}@bench.example") } },
        });
        let request = http.post(format!("{}/graphql", roster.url)).json(&body).send();
        async move {
            let answer: Value = request.await.expect("create").json().await.expect("json");
            assert_eq!(answer["data"]["createUser"]["ok"], true, "{answer}");
        }
    };
    let mut expected = 0;
    for n in 0..2 {
        create(n).await;
        expected += subscribers;
        wait_received(&received, expected).await;
    }
    let before = roster.cpu_time();
    for n in 2..2 + args.creates {
        create(n).await;
        expected += subscribers;
        wait_received(&received, expected).await;
    }
    let spent = roster.cpu_time() - before;
    for reader in readers {
        reader.abort();
    }
    let cpu_ms_per_create = spent.as_secs_f64() * 1000.0 / args.creates as f64;
    Figures {
        cpu_ms_per_create,
        rss_mib: live_kib as f64 / 1024.0,
        rss_kib_per_subscriber: live_kib.saturating_sub(idle_kib) as f64 / subscribers as f64,
    }
}

async fn wait_healthy(http: &reqwest::Client, roster: &Roster) {
    let started = Instant::now();
    while http
        .get(format!("{}/health", roster.url))
        .send()
        .await
        .map_or(true, |r| !r.status().is_success())
    {
        assert!(started.elapsed() < PATIENCE, "roster did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `/metrics` counts `want` open subscriptions.
async fn wait_for_subscribers(http: &reqwest::Client, roster: &Roster, want: usize) {
    let started = Instant::now();
    loop {
        let text = http
            .get(format!("{}/metrics", roster.url))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        let open = text
            .lines()
            .find_map(|line| line.strip_prefix("roster_graphql_subscribers "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if open as usize >= want {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "only {open} of {want} subscriptions went live"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_received(received: &AtomicUsize, want: usize) {
    let started = Instant::now();
    while received.load(Ordering::Relaxed) < want {
        assert!(
            started.elapsed() < PATIENCE,
            "only {} of {want} events arrived",
            received.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Opens socket number `socket` with its subscriptions and a task that counts their events.
async fn open(
    base: &str,
    socket: usize,
    args: &Args,
    received: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    let url = base.replace("http://", "ws://") + "/graphql";
    let mut request = url.into_client_request().expect("request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await.expect("upgrade");
    let (mut sink, mut stream) = ws.split();
    let init = json!({ "type": "connection_init" }).to_string();
    sink.send(Message::text(init)).await.expect("init");
    let ack = stream.next().await.expect("ack").expect("ack");
    assert!(
        ack.to_text().unwrap_or_default().contains("connection_ack"),
        "{ack:?}"
    );
    for n in 0..args.per_socket {
        let query = selection((socket * args.per_socket + n) % args.selections.max(1));
        let subscribe = json!({ "id": format!("s{n}"), "type": "subscribe", "payload": { "query": query } });
        sink.feed(Message::text(subscribe.to_string()))
            .await
            .expect("subscribe");
    }
    sink.flush().await.expect("subscribe");
    let per_socket = args.per_socket;
    tokio::spawn(async move {
        // Kept so the socket stays open; the client library answers pings while reading.
        let _sink = sink;
        while let Some(Ok(message)) = stream.next().await {
            let Message::Text(text) = message else { continue };
            let message: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(message["type"], "next", "{message}");
            let id = message["id"].as_str().expect("an id");
            let n: usize = id.trim_start_matches('s').parse().expect("one of ours");
            assert!(n < per_socket, "{id}");
            assert!(
                message["payload"]["data"]["userEvents"]["kind"] == "CREATED",
                "{message}"
            );
            received.fetch_add(1, Ordering::Relaxed);
        }
    })
}
