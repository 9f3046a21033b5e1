//! What the two reference servers of the read bench share (`bare_route.rs`,
//! `minimal_graphql.rs`): the users they serve and how they listen.

use serde_json::{Value, json};

/// How many users the reference servers answer: what `allUsers(limit: 10)` returns.
pub const USERS: usize = 10;

/// The first [`USERS`] users (id, name, email) of the users file named by the first argument
/// (a file from `roster seed`).
pub fn first_users_from_args() -> Vec<Value> {
    let path = std::env::args_os()
        .skip(1)
        .find(|arg| !arg.to_string_lossy().starts_with("--"))
        .expect("usage: SERVER USERS_FILE");
    let bytes = std::fs::read(&path).expect("read the users file");
    let users: Vec<Value> = serde_json::from_slice(&bytes).expect("a JSON array of users");
    users
        .iter()
        .take(USERS)
        .map(|user| json!({ "id": user["id"], "name": user["name"], "email": user["email"] }))
        .collect()
}

/// Serves `router` on a free port of 127.0.0.1 on a multi-threaded runtime (as Roster's),
/// printing `http://ADDRESS` on stdout first; never returns.
pub fn serve(router: axum::Router) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let address = listener.local_addr().expect("the bound address");
        println!("http://{address}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        axum::serve(listener, router).await.expect("serve");
    });
}
