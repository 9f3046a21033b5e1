//! Refusals a client can read: a body over the limit is answered 413 and the rest of what
//! the client sends is read and dropped for a while before the connection closes, so a
//! client that writes its whole body before reading still gets the answer; a request with
//! two `Host` headers is a coded 400.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app};

/// What the client sends: four times the default body limit.
const SENT: usize = 4 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// What one client saw: whether every write went through, and the answer's first line.
struct Seen {
    writes_failed: bool,
    status_line: String,
}

/// Sends a `POST` declaring and then sending [`SENT`] bytes in chunks with short pauses,
/// as a client that writes its whole body before it reads; then reads the answer.
async fn post_too_much(address: String, declare: bool) -> Seen {
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let length = if declare {
        format!("Content-Length: {SENT}\r\n")
    } else {
        "Transfer-Encoding: chunked\r\n".to_owned()
    };
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n{length}\r\n"
    );
    let mut writes_failed = stream.write_all(head.as_bytes()).await.is_err();
    let chunk = vec![b' '; CHUNK];
    let mut sent = 0;
    while sent < SENT && !writes_failed {
        let written = if declare {
            stream.write_all(&chunk).await
        } else {
            let framed = [format!("{CHUNK:x}\r\n").as_bytes(), &chunk, b"\r\n"].concat();
            stream.write_all(&framed).await
        };
        writes_failed = written.is_err();
        sent += CHUNK;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    if !declare && !writes_failed {
        writes_failed = stream.write_all(b"0\r\n\r\n").await.is_err();
    }
    let mut received = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut received)).await;
    let text = String::from_utf8_lossy(&received);
    Seen {
        writes_failed,
        status_line: text.lines().next().unwrap_or_default().to_owned(),
    }
}

async fn thirty_clients(app: &TestApp, declare: bool) {
    let address = app.base.trim_start_matches("http://").to_owned();
    let clients: Vec<_> = (0..30)
        .map(|_| tokio::spawn(post_too_much(address.clone(), declare)))
        .collect();
    let mut failed_writes = 0;
    let mut without_413 = Vec::new();
    for client in clients {
        let seen = client.await.expect("the client task");
        failed_writes += usize::from(seen.writes_failed);
        if !seen.status_line.starts_with("HTTP/1.1 413") {
            without_413.push(seen.status_line);
        }
    }
    assert!(
        without_413.is_empty() && failed_writes == 0,
        "{} of 30 clients read no 413 ({without_413:?}), {failed_writes} could not write their whole body",
        without_413.len()
    );
    app.health().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_clients_sending_four_mebibytes_all_read_their_413() {
    let app = spawn_app().await;
    thirty_clients(&app, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_the_limit_is_refused_readably_too() {
    let app = spawn_app().await;
    thirty_clients(&app, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_headers_are_a_coded_400() {
    let app = spawn_app().await;
    let address = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: {address}\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut received))
        .await
        .expect("an answer")
        .unwrap();
    let received = String::from_utf8_lossy(&received);
    assert!(received.starts_with("HTTP/1.1 400"), "{received}");
    assert!(received.contains("BAD_REQUEST"), "{received}");
    assert!(app.get("/health").await.status().is_success());
}

/// A client that pools connections must not send its next request down one that is
/// closing: a refusal that leaves the body unread says `Connection: close`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_body_answer_says_the_connection_closes() {
    let app = spawn_app().await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {SENT}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![b' '; CHUNK]).await.unwrap();
    let mut received = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut received))
        .await
        .expect("an answer")
        .unwrap();
    let text = String::from_utf8_lossy(&received[..read]).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 413"), "{text}");
    assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
}
