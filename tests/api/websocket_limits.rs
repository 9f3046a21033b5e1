//! WebSockets under legal but hostile use: sockets that squat their slot and answer nothing,
//! messages that never finish, floods of empty frames, one client taking every slot; and
//! the log lines every refusal over a socket leaves. Deadlines are lowered by flags; waits
//! are bounded generously and never assert a speed.

use std::time::{Duration, Instant};

use async_graphql::futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::spawned::{RosterProcess, serve_command};
use crate::helpers::ws::{Socket, next_frame, open_socket, refused_socket, send_json};
use crate::helpers::{TestApp, error_codes, spawn_app_with_flags};

/// How long any single wait in these tests may last before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// Keep-alive deadlines short enough for a test.
const QUICK_PINGS: [&str; 4] = ["--ws-ping-interval", "0.3", "--ws-pong-timeout", "0.5"];

async fn initialised(app: &TestApp) -> Socket {
    let mut socket = open_socket(app, &[]).await.expect("upgrade");
    send_json(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(
        next_frame(&mut socket).await.unwrap().unwrap()["type"],
        "connection_ack"
    );
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_answers_no_ping_is_closed_and_frees_its_slot() {
    let flags = [&QUICK_PINGS[..], &["--max-websockets", "1"]].concat();
    let app = spawn_app_with_flags(&json!([]), &flags).await;
    // Initialised, then never read: its client library answers no ping.
    let mut squatter = initialised(&app).await;
    let started = Instant::now();
    crate::helpers::eventually(PATIENCE, "the squatter's slot frees", || async {
        open_socket(&app, &[]).await.is_ok()
    })
    .await;
    eprintln!("a silent socket lost its slot after {:?}", started.elapsed());
    // What it was sent meanwhile: pings, then the close.
    let mut pings = 0;
    let code = loop {
        match tokio::time::timeout(PATIENCE, squatter.next())
            .await
            .expect("a frame")
        {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    };
    assert!(pings >= 1, "no ping before the close");
    assert_eq!(code, Some(1008));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_socket_that_answers_pings_stays_open() {
    let app = spawn_app_with_flags(&json!([]), &QUICK_PINGS).await;
    let mut socket = initialised(&app).await;
    let mut pings = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        // Reading is what makes the client library answer each ping with a pong.
        match tokio::time::timeout(Duration::from_millis(200), socket.next()).await {
            Err(_) => {}
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(other) => panic!("a socket that answers pings was closed: {other:?}"),
        }
    }
    assert!(pings >= 3, "only {pings} pings in 3 s");
    send_json(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ allUsers { id } }" } }),
    )
    .await;
    let answer = next_frame(&mut socket).await.unwrap().unwrap();
    assert_eq!(answer["type"], "next", "{answer}");
}

/// A raw connection upgraded to graphql-transport-ws, for frames no client library sends.
async fn raw_socket(app: &TestApp) -> TcpStream {
    let address = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let request = format!(
        "GET /graphql HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
            .await
            .expect("the answer");
        assert_eq!(read.unwrap(), 1, "closed during the handshake");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// A client frame (masked with zeros, which leaves the payload as it is) with this first byte.
fn frame(first: u8, payload: &[u8], declared: Option<usize>) -> Vec<u8> {
    let len = declared.unwrap_or(payload.len());
    let mut bytes = vec![first];
    if len < 126 {
        bytes.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        bytes.push(0x80 | 126);
        bytes.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        bytes.push(0x80 | 127);
        bytes.extend_from_slice(&(len as u64).to_be_bytes());
    }
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    bytes.extend_from_slice(payload);
    bytes
}

/// Reads server frames until a close frame; returns its code, or `None` when the
/// connection ends without one. Fails after [`PATIENCE`].
async fn close_code(stream: &mut TcpStream) -> Option<u16> {
    let mut received = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        // Server frames are unmasked; a close frame is 0x88, a length under 126, the code.
        let mut at = 0;
        while received.len() >= at + 2 {
            let len = usize::from(received[at + 1] & 0x7F);
            if len >= 126 || received.len() < at + 2 + len {
                break;
            }
            if received[at] == 0x88 && len >= 2 {
                return Some(u16::from_be_bytes([received[at + 2], received[at + 3]]));
            }
            at += 2 + len;
        }
        let mut buffer = [0u8; 4096];
        let wait = deadline.saturating_duration_since(Instant::now());
        let read = tokio::time::timeout(wait, stream.read(&mut buffer))
            .await
            .expect("the server neither closed the socket nor sent a close frame in time");
        match read {
            Ok(0) | Err(_) => return None,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_does_not_finish_in_time_is_closed_with_1008() {
    let app = spawn_app_with_flags(
        &json!([]),
        &["--ws-message-timeout", "0.5", "--ws-init-timeout", "60"],
    )
    .await;
    // One frame declaring a mebibyte, then a byte every 100 ms.
    let mut slow = raw_socket(&app).await;
    slow.write_all(&frame(0x81, b"{", Some(1024 * 1024)))
        .await
        .unwrap();
    let trickle = async {
        for _ in 0..300 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), trickle).await;
    assert_eq!(close_code(&mut slow).await, Some(1008));

    // A message in fragments, each small and on time, the whole never finishing.
    let mut fragmented = raw_socket(&app).await;
    fragmented
        .write_all(&frame(0x01, b"{\"type\":", None))
        .await
        .unwrap();
    let trickle = async {
        for _ in 0..300 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if fragmented
                .write_all(&frame(0x00, b"          ", None))
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), trickle).await;
    assert_eq!(close_code(&mut fragmented).await, Some(1008));
    app.health().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_empty_frames_is_closed_with_1008() {
    let app = spawn_app_with_flags(&json!([]), &["--ws-init-timeout", "60"]).await;
    for first in [
        // Empty continuations of a message that never ends.
        None,
        // Empty pings.
        Some(0x89),
    ] {
        let mut socket = raw_socket(&app).await;
        let mut flood = Vec::new();
        match first {
            None => {
                flood.extend(frame(0x01, b"{", None));
                for _ in 0..100_000 {
                    flood.extend(frame(0x00, b"", None));
                }
            }
            Some(opcode) => {
                for _ in 0..100_000 {
                    flood.extend(frame(opcode, b"", None));
                }
            }
        }
        // The server may close before it has read it all.
        let _ = tokio::time::timeout(PATIENCE, socket.write_all(&flood)).await;
        assert_eq!(close_code(&mut socket).await, Some(1008), "{first:?}");
    }
    app.health().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_address_cannot_take_every_websocket() {
    let app = spawn_app_with_flags(&json!([]), &["--max-websockets-per-client", "2"]).await;
    let first = open_socket(&app, &[]).await.expect("first");
    let _second = open_socket(&app, &[]).await.expect("second");
    let (status, body) = refused_socket(&app).await;
    assert_eq!(status, 503);
    assert_eq!(error_codes(&body), ["UNAVAILABLE"], "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("at most 2"), "{message}");
    drop(first);
    crate::helpers::eventually(
        PATIENCE,
        "the address's place frees when a socket closes",
        || async { open_socket(&app, &[]).await.is_ok() },
    )
    .await;
}

/// Opens a graphql-transport-ws socket on a server process with this request id.
async fn socket_with_id(server: &RosterProcess, id: &str) -> Socket {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = server.base.replace("http://", "ws://") + "/graphql";
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    headers.insert("X-Request-Id", id.parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade")
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_over_a_socket_leaves_a_log_line_with_its_code_and_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = serve_command(&dir.path().join("users.json"));
    command
        .args(["--read-token", "reader", "--write-token", "writer"])
        .args(["--ws-init-timeout", "0.5", "--max-websocket-operations", "1"])
        .env("RUST_LOG", "info")
        .env("ROSTER_LOG_FORMAT", "json");
    let server = RosterProcess::spawn(command).await;

    // No connection_init: 4408.
    let mut late = socket_with_id(&server, "ws-late").await;
    assert_eq!(next_frame(&mut late).await, Some(Err(4408)));
    // No token in connection_init: 4403.
    let mut anonymous = socket_with_id(&server, "ws-anonymous").await;
    send_json(&mut anonymous, json!({ "type": "connection_init" })).await;
    assert_eq!(next_frame(&mut anonymous).await, Some(Err(4403)));
    // A mutation with the read token, and a second operation past the cap of one.
    let mut reader = socket_with_id(&server, "ws-reader").await;
    send_json(
        &mut reader,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer reader" } }),
    )
    .await;
    assert_eq!(
        next_frame(&mut reader).await.unwrap().unwrap()["type"],
        "connection_ack"
    );
    let subscription = "subscription { userEvents { kind } }";
    send_json(
        &mut reader,
        json!({ "id": "s", "type": "subscribe", "payload": { "query": subscription } }),
    )
    .await;
    send_json(
        &mut reader,
        json!({ "id": "past-cap", "type": "subscribe", "payload": { "query": "{ allUsers { id } }" } }),
    )
    .await;
    let refusal = next_frame(&mut reader).await.unwrap().unwrap();
    assert_eq!(
        (&refusal["type"], &refusal["id"]),
        (&json!("error"), &json!("past-cap")),
        "{refusal}"
    );
    send_json(&mut reader, json!({ "id": "s", "type": "complete" })).await;
    let mutation = r#"mutation { createUser(userData: {name: "Ann", email: "ann@x.com"}) { ok } }"#;
    send_json(
        &mut reader,
        json!({ "id": "m", "type": "subscribe", "payload": { "query": mutation } }),
    )
    .await;
    loop {
        let message = next_frame(&mut reader).await.unwrap().unwrap();
        if message["id"] == "m" && message["type"] == "complete" {
            break;
        }
    }
    drop(reader);
    let (status, stderr) = server.terminate().await;
    assert!(status.success(), "{status}; stderr:\n{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .collect();
    let find = |id: &str, message: &str| {
        lines
            .iter()
            .find(|line| line["span"]["request_id"] == id && line["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line for {id}:\n{stderr}"))
            .clone()
    };
    let late = find("ws-late", "websocket closed");
    assert_eq!(late["close_code"], 4408, "{late}");
    assert!(late["reason"].as_str().is_some_and(|r| !r.is_empty()), "{late}");
    let anonymous = find("ws-anonymous", "websocket closed");
    assert_eq!(anonymous["close_code"], 4403, "{anonymous}");
    let refusals: Vec<&Value> = lines
        .iter()
        .filter(|line| {
            line["span"]["request_id"] == "ws-reader" && line["message"] == "websocket operation refused"
        })
        .collect();
    let codes: Vec<(&str, &str)> = refusals
        .iter()
        .map(|line| {
            (
                line["operation_id"].as_str().unwrap_or_default(),
                line["code"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        codes.contains(&("past-cap", "BAD_USER_INPUT")),
        "{codes:?}\n{stderr}"
    );
    assert!(codes.contains(&("m", "UNAUTHENTICATED")), "{codes:?}\n{stderr}");
}

/// Opens a socket, initialised, with `count` subscriptions `s0`, `s1`, … to `query`.
async fn subscribed(app: &TestApp, query: &str, count: usize) -> Socket {
    let mut socket = initialised(app).await;
    for n in 0..count {
        send_json(
            &mut socket,
            json!({ "id": format!("s{n}"), "type": "subscribe", "payload": { "query": query } }),
        )
        .await;
    }
    socket
}

/// Reads messages until `want` events (`next` without errors) have arrived; the others.
async fn events_then_rest(socket: &mut Socket, want: usize) -> Vec<Value> {
    let mut events = 0;
    let mut rest = Vec::new();
    while events < want {
        let message = next_frame(socket).await.expect("a message").expect("not closed");
        if message["type"] == "next" && message["payload"].get("errors").is_none() {
            events += 1;
        } else {
            rest.push(message);
        }
    }
    rest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_stops_reading_lags_alone_on_a_shared_stream() {
    let users = crate::hostile::many_users(2_000);
    let app = spawn_app_with_flags(&users, &[]).await;
    // Big answers, so that the unread socket's buffers fill after some hundred events.
    let aliases: Vec<String> = (0..40)
        .map(|n| format!("u{n}: user {{ id name email }}"))
        .collect();
    let query = format!("subscription {{ userEvents {{ kind {} }} }}", aliases.join(" "));
    let mut reader = subscribed(&app, &query, 1).await;
    let mut sleeper = subscribed(&app, &query, 10).await;
    // Both live: the reader hears a probe.
    for attempt in 0.. {
        app.create_ok("Probe", &format!("probe{attempt}@x.test")).await;
        if tokio::time::timeout(Duration::from_millis(300), next_frame(&mut reader))
            .await
            .is_ok()
        {
            break;
        }
        assert!(attempt < 50, "the subscription never went live");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    while tokio::time::timeout(Duration::from_millis(200), next_frame(&mut reader))
        .await
        .is_ok()
    {}

    // 2,000 updates in bursts of 500 (one burst over the store's buffer would lag everyone),
    // each read whole by the reader before the next; the sleeper reads nothing.
    for burst in 0..4 {
        let updates: Vec<Value> = (burst * 500..(burst + 1) * 500)
            .map(|n| json!({ "id": format!("id-{n}"), "email": format!("new{n}@example.com") }))
            .collect();
        let report = app.bulk_update(json!(updates)).await;
        assert_eq!(report["updatedCount"], 500, "{report}");
        let rest = events_then_rest(&mut reader, 500).await;
        assert!(rest.is_empty(), "{rest:?}");
    }

    // The sleeper wakes: what it was sent, then each subscription's end for falling behind.
    let mut lagged = std::collections::BTreeSet::new();
    let mut completed = std::collections::BTreeSet::new();
    let mut heard = 0;
    while completed.len() < 10 {
        let message = next_frame(&mut sleeper)
            .await
            .expect("a message")
            .expect("not closed");
        let id = message["id"].as_str().expect("an id").to_owned();
        match message["type"].as_str() {
            Some("complete") => {
                completed.insert(id);
            }
            Some("next") if message["payload"].get("errors").is_some() => {
                assert_eq!(
                    error_codes(&message["payload"]),
                    ["SUBSCRIPTION_LAGGED"],
                    "{message}"
                );
                lagged.insert(id);
            }
            Some("next") => heard += 1,
            _ => panic!("{message}"),
        }
    }
    assert_eq!(lagged, completed);
    assert_eq!(lagged.len(), 10);
    assert!(heard < 2_000 * 10, "the sleeper heard every event: {heard}");
    eprintln!("the unread socket was sent {heard} events before it lagged");

    // The reader goes on.
    app.create_ok("After", "after@x.test").await;
    let rest = events_then_rest(&mut reader, 1).await;
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_on_all_sockets_operations_refuses_with_unavailable_and_frees_on_complete_and_close() {
    let app = spawn_app_with_flags(&json!([]), &["--max-subscriptions", "3"]).await;
    let query = "subscription { userEvents { kind } }";
    // Each socket's subscribes are taken in its own order, the sockets' in any: wait until
    // the first two run before the second socket asks, so that the third place is its own.
    let running = |count: f64| {
        let app = &app;
        async move {
            crate::helpers::eventually(PATIENCE, "the subscriptions run", || async {
                app.metric("roster_graphql_subscribers").await == count
            })
            .await;
        }
    };
    let first = subscribed(&app, query, 2).await;
    running(2.0).await;
    let mut second = subscribed(&app, query, 1).await;
    running(3.0).await;
    let subscribe = |id: &str| json!({ "id": id, "type": "subscribe", "payload": { "query": query } });
    send_json(&mut second, subscribe("over")).await;
    let refusal = next_frame(&mut second).await.unwrap().unwrap();
    assert_eq!(
        (&refusal["type"], &refusal["id"]),
        (&json!("error"), &json!("over")),
        "{refusal}"
    );
    let errors = refusal["payload"].as_array().expect("errors");
    assert_eq!(errors[0]["extensions"]["code"], "UNAVAILABLE", "{refusal}");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("at most 3"),
        "{refusal}"
    );

    // Ending one frees its place: the next runs, and hears events.
    send_json(&mut second, json!({ "id": "s0", "type": "complete" })).await;
    assert_eq!(
        next_frame(&mut second).await.unwrap().unwrap(),
        json!({ "type": "complete", "id": "s0" })
    );
    send_json(&mut second, subscribe("again")).await;
    for attempt in 0.. {
        app.create_ok("Probe", &format!("probe{attempt}@x.test")).await;
        let heard = tokio::time::timeout(Duration::from_millis(300), next_frame(&mut second)).await;
        if let Ok(message) = heard {
            let message = message.unwrap().unwrap();
            assert_eq!(
                (&message["type"], &message["id"]),
                (&json!("next"), &json!("again")),
                "{message}"
            );
            break;
        }
        assert!(
            attempt < 50,
            "the subscription past the freed place never went live"
        );
    }
    send_json(&mut second, subscribe("still-over")).await;
    let refusal = loop {
        let message = next_frame(&mut second).await.unwrap().unwrap();
        if message["type"] != "next" {
            break message;
        }
    };
    assert_eq!(refusal["id"], "still-over", "{refusal}");

    // Closing a socket frees its places.
    drop(first);
    let started = Instant::now();
    for n in 0.. {
        let id = format!("late{n}");
        send_json(&mut second, subscribe(&id)).await;
        // A subscription that runs says nothing until an event; a refused one is answered.
        match tokio::time::timeout(Duration::from_millis(300), next_frame(&mut second)).await {
            Err(_) => break,
            Ok(message) => {
                let message = message.unwrap().unwrap();
                assert_eq!(
                    (&message["type"], &message["id"]),
                    (&json!("error"), &json!(id)),
                    "{message}"
                );
            }
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the closed socket's places never freed"
        );
    }
}
