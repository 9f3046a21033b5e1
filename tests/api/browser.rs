//! The console in a real browser (docs/src/clients.md): headless Chromium, driven over
//! WebDriver through chromedriver, with the internet cut off. Every address but loopback goes
//! to a proxy that refuses and records, so "no request leaves 127.0.0.1" is observed, not
//! assumed.
//!
//! Without Chromium the test says loudly that it was skipped; with `ROSTER_REQUIRE_BROWSER=1`
//! (as in CI) a missing browser is a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::helpers::{TestApp, free_port, spawn_app_with_users};

/// How long the browser may take for any one step on a busy machine.
const STEP: Duration = Duration::from_secs(30);
/// How long the whole browser session may take.
const SESSION: Duration = Duration::from_secs(300);
/// Set in the copy of this test that runs inside the namespace.
const INSIDE: &str = "ROSTER_BROWSER_TEST_INSIDE";
const THIS_TEST: &str = "browser::the_console_works_offline_in_a_real_browser_and_no_request_leaves_loopback";
const EDITOR_TEST: &str =
    "browser::the_console_completes_validates_prettifies_and_keeps_tabs_history_and_headers";

/// The console's JavaScript modules, each served by Roster.
const MODULES: [&str; 12] = [
    "complete.js",
    "console.js",
    "docs.js",
    "editor.js",
    "headers.js",
    "highlight.js",
    "history.js",
    "parse.js",
    "schema.js",
    "store.js",
    "tabs.js",
    "validate.js",
];

/// The request id the test sends from the headers editor; the server echoes it back.
const REQUEST_ID: &str = "console-header-check-1";

/// What the test types into the Authorization box.
const TOKEN: &str = "Bearer console-test-token";

/// The subscription example of docs/src/graphql.md, as a person would paste it.
const DOCS_SUBSCRIPTION: &str =
    "subscription { userEvents(kinds: [CREATED, UPDATED, DELETED]) { kind at user { id name email } } }";

/// Runs the browser session inside a fresh network namespace that holds nothing but
/// loopback: the network is cut off for real, and nothing the browser does (its own update
/// checks and discovery included) can reach another machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium"]
async fn the_console_works_offline_in_a_real_browser_and_no_request_leaves_loopback() {
    if std::env::var_os(INSIDE).is_some() {
        return browser_session().await;
    }
    in_a_closed_network(THIS_TEST).await;
}

/// The editor at work, in the same closed network: a completion typed and taken, a mistake
/// marked where it is, prettify, a rerun from the history, a subscription in a second tab,
/// a header of one's own that reaches the server, a docs search that finds an argument and
/// an enum value, and tabs and history that outlive a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium"]
async fn the_console_completes_validates_prettifies_and_keeps_tabs_history_and_headers() {
    if std::env::var_os(INSIDE).is_some() {
        return editor_session().await;
    }
    in_a_closed_network(EDITOR_TEST).await;
}

/// Runs `this_test` again inside a fresh network namespace that holds nothing but
/// loopback, unless the tools for it are missing (then the test is skipped, loudly).
async fn in_a_closed_network(this_test: &str) {
    let Some(tools) = browser_tools() else {
        return;
    };
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let child = tokio::process::Command::new("unshare")
        .args(unshare_flags())
        .args(["sh", "-c", "\"$0\" link set lo up && exec \"$@\""])
        .arg(&tools.ip)
        .arg(test_binary)
        .args([
            this_test,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INSIDE, "1")
        .env("ROSTER_CHROMIUM", &tools.chromium)
        .env("ROSTER_CHROMEDRIVER", &tools.chromedriver)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // One process group for the session and every browser process it starts, so that
        // all of them can be ended together whatever happens.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("unshare starts");
    let group = child.id();
    let output = tokio::time::timeout(SESSION, child.wait_with_output()).await;
    if let Some(group) = group {
        let _ = std::process::Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{group}")])
            .stderr(Stdio::null())
            .status();
    }
    let output = output.unwrap_or_else(|_| panic!("the browser session took longer than {SESSION:?}"));
    let output = output.expect("the browser session's output");
    assert!(
        output.status.success(),
        "the browser session failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The copy inside must have run the session, not listed it as ignored.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the browser session did not run:\n{stdout}"
    );
}

async fn browser_session() {
    let tools = browser_tools().expect("the outer test found the tools");
    let app = spawn_app_with_users(&json!([
        { "id": "u1", "name": "Ada Lovelace", "email": "ada@example.com" }
    ]))
    .await;
    let browser = Browser::start(&tools).await;
    let client = &browser.client;

    client.goto(&app.url("/graphql")).await.expect("open the console");
    wait_for(client, "the schema to load", "return document.getElementById('status').textContent.startsWith('Ready.') && document.getElementById('docs').textContent.includes('allUsers')").await;
    let styled = script(
        client,
        "return getComputedStyle(document.querySelector('main')).display",
    )
    .await;
    assert_eq!(styled, "grid", "the stylesheet applies");
    let icon = script(client, "return document.querySelector('h1 img').naturalWidth").await;
    assert!(
        icon.as_u64().is_some_and(|width| width > 0),
        "the icon loads: {icon}"
    );

    // A query typed by hand, run with Ctrl+Enter, with an Authorization header set.
    client
        .find(Locator::Id("authorization"))
        .await
        .expect("the Authorization box")
        .send_keys(TOKEN)
        .await
        .expect("type the header");
    type_operation(client, "{ allUsers { name email } }").await;
    let query = client.find(Locator::Id("query")).await.expect("the editor");
    query
        .send_keys(&(Key::Control + &*Key::Enter))
        .await
        .expect("Ctrl+Enter");
    wait_for(
        client,
        "the query's result",
        "return document.getElementById('result').textContent.includes('Ada Lovelace')",
    )
    .await;
    let status = text_of(client, "status").await;
    assert!(status.contains("HTTP 200"), "{status}");
    let shown: Value =
        serde_json::from_str(&text_of(client, "result").await).expect("the result is shown as JSON");
    assert_eq!(
        shown,
        json!({ "data": { "allUsers": [{ "name": "Ada Lovelace", "email": "ada@example.com" }] } })
    );

    // A GraphQL error is shown readably, with its code.
    type_operation(client, "{ nope }").await;
    click(client, "run").await;
    wait_for(
        client,
        "the error list",
        "return !document.getElementById('errors').hidden",
    )
    .await;
    let errors = text_of(client, "errors").await;
    assert!(
        errors.contains("nope") && errors.contains("BAD_USER_INPUT"),
        "{errors}"
    );

    // The documented anonymous subscription, pasted in, shows an event after a create over HTTP.
    type_operation(client, DOCS_SUBSCRIPTION).await;
    click(client, "run").await;
    wait_for(
        client,
        "the subscription to start",
        "return document.getElementById('status').textContent.includes('subscribed over ws://')",
    )
    .await;
    let name = created_until_shown(client, &app).await;
    let events = text_of(client, "events").await;
    assert!(events.contains("CREATED") && events.contains(&name), "{events}");

    // Every request the page made over the network, as the browser's own network log records
    // it (requests the browser refused included), went to the server under test.
    let network = browser.network_events().await;
    all_on_loopback(&network, &app);

    // The Authorization header went with the POSTs made after it was set, and in the
    // WebSocket's connection_init.
    let posted_with_token = network.iter().any(|event| {
        let request = &event["params"]["request"];
        event["method"] == "Network.requestWillBeSent"
            && request["method"] == "POST"
            && request["headers"]["Authorization"] == TOKEN
    });
    assert!(posted_with_token, "no POST carried the Authorization header");
    let init = network
        .iter()
        .filter(|event| event["method"] == "Network.webSocketFrameSent")
        .filter_map(|event| event["params"]["response"]["payloadData"].as_str())
        .filter_map(|frame| serde_json::from_str::<Value>(frame).ok())
        .find(|message| message["type"] == "connection_init")
        .expect("a connection_init frame");
    assert_eq!(init["payload"], json!({ "Authorization": TOKEN }));
    browser.close().await;
}

async fn editor_session() {
    let tools = browser_tools().expect("the outer test found the tools");
    let app = spawn_app_with_users(&json!([
        { "id": "u1", "name": "Ada Lovelace", "email": "ada@example.com" }
    ]))
    .await;
    let browser = Browser::start(&tools).await;
    let client = &browser.client;
    client.goto(&app.url("/graphql")).await.expect("open the console");
    wait_ready(client).await;
    let highlighted = script(
        client,
        "return [...document.querySelectorAll('.code-view .t-keyword')].map(s => s.textContent)",
    )
    .await;
    assert_eq!(
        highlighted,
        json!(["query", "subscription"]),
        "the welcome text is highlighted"
    );

    // A partial field, its completion taken with Tab.
    type_operation(client, "{ allU").await;
    wait_for(
        client,
        "the completion list",
        "const list = document.getElementById('completions'); return !list.hidden && list.textContent.includes('allUsers')",
    )
    .await;
    editor(client).await.send_keys(&Key::Tab).await.expect("Tab");
    assert_eq!(editor_value(client).await, "{ allUsers");

    // Ctrl+Space opens the list before anything is typed; Enter takes the chosen entry.
    editor(client)
        .await
        .send_keys(" { ")
        .await
        .expect("type an opening brace");
    editor(client)
        .await
        .send_keys(&(Key::Control + " "))
        .await
        .expect("Ctrl+Space");
    wait_for(
        client,
        "the fields of User",
        "const list = document.getElementById('completions'); return !list.hidden && list.textContent.includes('email') && list.textContent.includes('createdAt')",
    )
    .await;
    editor(client).await.send_keys("ema").await.expect("type ema");
    wait_for(
        client,
        "the list narrowed to email",
        "const first = document.querySelector('#completions li .label'); return !document.getElementById('completions').hidden && first && first.textContent === 'email'",
    )
    .await;
    editor(client).await.send_keys(&Key::Enter).await.expect("Enter");
    assert_eq!(editor_value(client).await, "{ allUsers { email");

    // An enum value, completed inside a list argument.
    type_operation(client, "subscription { userEvents(kinds: [CRE").await;
    wait_for(
        client,
        "the enum's values",
        "const list = document.getElementById('completions'); return !list.hidden && list.textContent.includes('CREATED')",
    )
    .await;
    editor(client).await.send_keys(&Key::Tab).await.expect("Tab");
    assert_eq!(
        editor_value(client).await,
        "subscription { userEvents(kinds: [CREATED"
    );

    // Mistakes are marked where they are, as one types: an unknown field, an unknown
    // argument, and a syntax error at the end of the document.
    type_operation(client, "{ allUsers(fuzy: \"ad\") { nme } }").await;
    wait_for(
        client,
        "the marks",
        "return document.querySelectorAll('.code-view .mark').length === 2",
    )
    .await;
    let marked = script(
        client,
        "return [...document.querySelectorAll('.code-view .mark')].map(s => s.textContent)",
    )
    .await;
    assert_eq!(marked, json!(["fuzy", "nme"]));
    let problems = text_of(client, "diagnostics").await;
    assert!(
        problems.contains("line 1, column 12: Unknown argument \"fuzy\" on field \"Query.allUsers\".")
            && problems.contains("line 1, column 26: Cannot query field \"nme\" on type \"User\"."),
        "{problems}"
    );
    type_operation(client, "{ allUsers { id ").await;
    wait_for(
        client,
        "the syntax error",
        "return document.getElementById('diagnostics').textContent.includes('line 1, column 17: Expected \"}\"')",
    )
    .await;
    type_operation(client, "{ allUsers { id } }").await;
    wait_for(
        client,
        "the marks to go",
        "return document.getElementById('diagnostics').hidden && !document.querySelector('.code-view .mark')",
    )
    .await;

    // Prettify.
    type_operation(client, "{allUsers(limit: 5){id name}}").await;
    click(client, "prettify").await;
    assert_eq!(
        editor_value(client).await,
        "{\n  allUsers(limit: 5) {\n    id\n    name\n  }\n}\n"
    );

    // A header of one's own, from the headers editor: the server echoes it as the request id.
    client
        .find(Locator::Id("headers"))
        .await
        .expect("the headers editor")
        .send_keys(&format!("{{\"X-Request-Id\": \"{REQUEST_ID}\"}}"))
        .await
        .expect("type the headers");
    click(client, "run").await;
    wait_for(
        client,
        "the prettified query's result",
        "return document.getElementById('result').textContent.includes('Ada Lovelace')",
    )
    .await;

    // Another query, then the first again from the history.
    type_operation(client, "{ userById(id: \"u1\") { email } }").await;
    click(client, "run").await;
    wait_for(
        client,
        "the second query's result",
        "const r = document.getElementById('result').textContent; return r.includes('ada@example.com') && !r.includes('Ada Lovelace')",
    )
    .await;
    click(client, "show-history").await;
    let entries = script(
        client,
        "return [...document.querySelectorAll('#history .preview')].map(p => p.textContent)",
    )
    .await;
    assert_eq!(
        entries,
        json!([
            "{ userById(id: \"u1\") { email } }",
            "{\n  allUsers(limit: 5) {\n    id"
        ]),
        "newest first"
    );
    script(
        client,
        "document.querySelectorAll('#history .history-entry')[1].click(); return null",
    )
    .await;
    wait_for(
        client,
        "the rerun's result",
        "return document.getElementById('result').textContent.includes('Ada Lovelace')",
    )
    .await;
    assert!(editor_value(client).await.starts_with("{\n  allUsers(limit: 5)"));

    // A subscription in a second tab, while the first keeps its query.
    click(client, "new-tab").await;
    assert_eq!(tab_titles(client).await, json!(["Tab 1", "Tab 2"]));
    type_operation(client, DOCS_SUBSCRIPTION).await;
    click(client, "run").await;
    wait_for(
        client,
        "the subscription to start",
        "return document.getElementById('status').textContent.includes('subscribed over ws://')",
    )
    .await;
    let name = created_until_shown(client, &app).await;
    assert!(text_of(client, "events").await.contains(&name));
    assert_eq!(tab_titles(client).await, json!(["Tab 1", "subscription 2"]));
    script(
        client,
        "document.querySelector('#tabs .tab-title').click(); return null",
    )
    .await;
    assert!(editor_value(client).await.starts_with("{\n  allUsers(limit: 5)"));

    // The docs search finds arguments and enum values, not only types and fields.
    click(client, "show-docs").await;
    for (wanted, owner) in [
        ("fuzzy", "Query.allUsers(fuzzy"),
        ("maxDistance", "Query.allUsers(maxDistance"),
        ("CREATED", "UserEventKind.CREATED"),
    ] {
        let search = client
            .find(Locator::Id("docs-search"))
            .await
            .expect("the docs search");
        search.clear().await.expect("clear the search");
        search.send_keys(wanted).await.expect("type a search");
        wait_for(
            client,
            &format!("{wanted} in the docs"),
            &format!("return document.getElementById('docs').textContent.includes('{owner}')"),
        )
        .await;
    }

    // The POSTs carried the header, and the server had it: it answered with it.
    let network = browser.network_events().await;
    all_on_loopback(&network, &app);
    let echoed = network.iter().any(|event| {
        event["method"] == "Network.responseReceived"
            && event["params"]["response"]["headers"]["x-request-id"] == REQUEST_ID
    });
    assert!(
        echoed,
        "no answer carried the request id sent from the headers editor"
    );
    let init = network
        .iter()
        .filter(|event| event["method"] == "Network.webSocketFrameSent")
        .filter_map(|event| event["params"]["response"]["payloadData"].as_str())
        .filter_map(|frame| serde_json::from_str::<Value>(frame).ok())
        .find(|message| message["type"] == "connection_init")
        .expect("a connection_init frame");
    assert_eq!(init["payload"], json!({ "X-Request-Id": REQUEST_ID }));

    // Tabs and history outlive a reload.
    client.refresh().await.expect("reload");
    wait_ready(client).await;
    assert_eq!(tab_titles(client).await, json!(["Tab 1", "subscription 2"]));
    let kept = script(client, "return document.querySelectorAll('#history li').length").await;
    assert_eq!(kept, json!(3), "the history after a reload");
    browser.close().await;
}

/// Every request the page made over the network, as the browser's own network log records
/// it (requests the browser refused included), went to the server under test, and the
/// page's files and WebSocket were among them.
fn all_on_loopback(network: &[Value], app: &TestApp) {
    let requested = network_urls(network);
    let socket = app.base.replacen("http://", "ws://", 1);
    let modules = MODULES.map(|module| format!("/console/{module}"));
    for wanted in ["/graphql", "/console/console.css", "/console/icon.svg"]
        .into_iter()
        .chain(modules.iter().map(String::as_str))
    {
        let url = app.url(wanted);
        assert!(requested.contains(&url), "{url} is not among {requested:?}");
    }
    assert!(
        requested.contains(&format!("{socket}/graphql")),
        "no WebSocket in {requested:?}"
    );
    for url in &requested {
        assert!(
            url.starts_with(&format!("{}/", app.base)) || url.starts_with(&format!("{socket}/")),
            "{url} is not on {}",
            app.base
        );
    }
}

async fn wait_ready(client: &Client) {
    wait_for(client, "the schema to load", "return document.getElementById('status').textContent.startsWith('Ready.') && document.getElementById('docs').textContent.includes('allUsers')").await;
}

async fn editor(client: &Client) -> fantoccini::elements::Element {
    client.find(Locator::Id("query")).await.expect("the editor")
}

async fn editor_value(client: &Client) -> String {
    let value = script(client, "return document.getElementById('query').value").await;
    value.as_str().unwrap_or_default().to_owned()
}

async fn tab_titles(client: &Client) -> Value {
    script(
        client,
        "return [...document.querySelectorAll('#tabs .tab-title')].map(t => t.textContent)",
    )
    .await
}

/// The network URLs (not `data:` or `chrome:`) of every request and WebSocket in `events`.
fn network_urls(events: &[Value]) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    for event in events {
        let url = match event["method"].as_str() {
            Some("Network.requestWillBeSent") => &event["params"]["request"]["url"],
            Some("Network.webSocketCreated") => &event["params"]["url"],
            _ => continue,
        };
        let Some(url) = url.as_str() else {
            continue;
        };
        let network = ["http:", "https:", "ws:", "wss:"]
            .iter()
            .any(|scheme| url.starts_with(scheme));
        if network && !urls.iter().any(|seen| seen == url) {
            urls.push(url.to_owned());
        }
    }
    urls
}

/// Creates users over HTTP until one shows up as an event: a subscription is live only once
/// the server has handled the `subscribe` message, which the page cannot observe.
async fn created_until_shown(client: &Client, app: &TestApp) -> String {
    for attempt in 1..=10 {
        let name = format!("Grace Hopper {attempt}");
        app.create_ok(&name, &format!("grace{attempt}@example.com")).await;
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if text_of(client, "events").await.contains(&name) {
                return name;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("no event appeared; status: {}", text_of(client, "status").await);
}

async fn type_operation(client: &Client, text: &str) {
    let editor = client.find(Locator::Id("query")).await.expect("the editor");
    editor.clear().await.expect("clear the editor");
    editor.send_keys(text).await.expect("type the operation");
}

async fn click(client: &Client, id: &str) {
    client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|err| panic!("#{id}: {err}"))
        .click()
        .await
        .unwrap_or_else(|err| panic!("click #{id}: {err}"));
}

async fn text_of(client: &Client, id: &str) -> String {
    let value = script(
        client,
        &format!("return document.getElementById('{id}').textContent"),
    )
    .await;
    value.as_str().unwrap_or_default().to_owned()
}

async fn script(client: &Client, source: &str) -> Value {
    client
        .execute(source, Vec::new())
        .await
        .unwrap_or_else(|err| panic!("{source}: {err}"))
}

/// Polls `predicate` (a script returning a boolean) until it holds, failing after [`STEP`].
async fn wait_for(client: &Client, what: &str, predicate: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        if script(client, predicate).await == Value::Bool(true) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {STEP:?}; status: {}",
            text_of(client, "status").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Chromium and chromedriver, or `None` after saying loudly why the test is skipped.
struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
    ip: PathBuf,
}

fn browser_tools() -> Option<Tools> {
    let chromium = std::env::var_os("ROSTER_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            ["chromium", "chromium-browser", "google-chrome"]
                .iter()
                .find_map(|name| on_path(name))
        });
    let chromedriver = std::env::var_os("ROSTER_CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| on_path("chromedriver"));
    let mut missing = Vec::new();
    if chromium.is_none() {
        missing.push("chromium");
    }
    if chromedriver.is_none() {
        missing.push("chromedriver (Debian: chromium-driver)");
    }
    if on_path("unshare").is_none() {
        missing.push("unshare (util-linux)");
    } else if !may_unshare_the_network() {
        missing.push("the right to make a network namespace (unshare --net failed)");
    }
    // Not always on a user's PATH, being an administrator's tool.
    let ip = on_path("ip").or_else(|| {
        ["/usr/sbin/ip", "/sbin/ip"]
            .iter()
            .map(PathBuf::from)
            .find(|path| path.is_file())
    });
    if ip.is_none() {
        missing.push("ip (iproute2)");
    }
    if let (Some(chromium), Some(chromedriver), Some(ip)) = (chromium, chromedriver, ip)
        && missing.is_empty()
    {
        return Some(Tools {
            chromium,
            chromedriver,
            ip,
        });
    }
    let why = format!("missing: {}", missing.join(", "));
    assert!(
        std::env::var("ROSTER_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "ROSTER_REQUIRE_BROWSER=1 but {why}"
    );
    // Straight to stderr: the test harness would swallow a captured eprintln! of a test
    // that passes.
    let _ = writeln!(
        std::io::stderr(),
        "\n**********\nSKIPPED the browser test of the console: {why}.\nSet ROSTER_REQUIRE_BROWSER=1 to make this a failure.\n**********\n"
    );
    None
}

/// A new network namespace; one's own user namespace too when not root.
fn unshare_flags() -> Vec<&'static str> {
    let mut flags = Vec::new();
    if !is_root() {
        flags.extend(["--user", "--map-root-user"]);
    }
    flags.push("--net");
    flags
}

fn may_unshare_the_network() -> bool {
    std::process::Command::new("unshare")
        .args(unshare_flags())
        .arg("true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A WebDriver session on a fresh headless Chromium that logs its network requests.
struct Browser {
    client: Client,
    webdriver: String,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start(tools: &Tools) -> Self {
        let profile = tempfile::tempdir().expect("a profile folder");
        let port = free_port();
        let driver = tokio::process::Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("start {}: {err}", tools.chromedriver.display()));
        let webdriver = format!("http://127.0.0.1:{port}");
        wait_for_driver(&webdriver).await;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:loggingPrefs".into(), json!({ "performance": "ALL" }));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": tools.chromium,
                "args": chromium_flags(profile.path()),
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .unwrap_or_else(|err| panic!("a WebDriver session on {}: {err}", tools.chromium.display()));
        Self {
            client,
            webdriver,
            _driver: driver,
            _profile: profile,
        }
    }

    /// The DevTools network events of the page so far (`{method, params}`), from Chromium's
    /// performance log as chromedriver collects it. Reading the log empties it.
    async fn network_events(&self) -> Vec<Value> {
        let session = self
            .client
            .session_id()
            .await
            .expect("the session id")
            .expect("a session");
        let log: Value = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.webdriver))
            .json(&json!({ "type": "performance" }))
            .send()
            .await
            .expect("the performance log")
            .json()
            .await
            .expect("the performance log as JSON");
        let entries = log["value"].as_array().cloned().unwrap_or_default();
        entries
            .iter()
            .filter_map(|entry| entry["message"].as_str())
            .map(|message| {
                let mut event: Value = serde_json::from_str(message).expect("a DevTools event");
                event["message"].take()
            })
            .filter(|event| {
                event["method"]
                    .as_str()
                    .is_some_and(|method| method.starts_with("Network."))
            })
            .collect()
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

fn chromium_flags(profile: &Path) -> Vec<String> {
    let mut flags: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--disable-breakpad",
        "--disable-crash-reporter",
        "--disable-features=MediaRouter,Translate,OptimizationHints",
        "--window-size=1280,900",
    ]
    .iter()
    .map(|flag| (*flag).to_owned())
    .collect();
    flags.push(format!("--user-data-dir={}", profile.display()));
    flags
}

async fn wait_for_driver(webdriver: &str) {
    let deadline = Instant::now() + STEP;
    let client = reqwest::Client::new();
    loop {
        let ready = client
            .get(format!("{webdriver}/status"))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success());
        if ready {
            return;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_console_and_every_file_it_refers_to_come_from_roster_under_a_strict_policy() {
    let app = crate::helpers::spawn_app().await;
    let response = app.get_as_browser("/graphql").await;
    assert_eq!(response.status(), 200);
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .expect("a policy")
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let page = response.text().await.expect("the page");

    let mut referred: Vec<&str> = page
        .split(['"', '\''])
        .filter(|piece| piece.starts_with("console/"))
        .collect();
    referred.sort_unstable();
    referred.dedup();
    assert_eq!(
        referred,
        ["console/console.css", "console/console.js", "console/icon.svg"]
    );
    for (file, content_type) in referred
        .iter()
        .zip(["text/css", "text/javascript", "image/svg+xml"])
    {
        let response = app.get(&format!("/{file}")).await;
        assert_eq!(response.status(), 200, "{file}");
        let headers = response.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .expect("a type")
                .starts_with(content_type),
            "{file}: {:?}",
            headers["content-type"]
        );
        let etag = headers["etag"].clone();
        let again = app
            .client
            .get(app.url(&format!("/{file}")))
            .header("if-none-match", etag)
            .send()
            .await
            .expect("a conditional GET");
        assert_eq!(again.status(), 304, "{file}");
    }

    // The modules console.js imports, and the ones they import, come from Roster too.
    let mut modules = vec!["console.js".to_owned()];
    let mut at = 0;
    while at < modules.len() {
        let response = app.get(&format!("/console/{}", modules[at])).await;
        assert_eq!(response.status(), 200, "{}", modules[at]);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("a type")
                .starts_with("text/javascript"),
            "{}",
            modules[at]
        );
        let source = response.text().await.expect("a module");
        for piece in source.split(" from \"./").skip(1) {
            let name = piece[..piece.find('"').expect("a closing quote")].to_owned();
            if !modules.contains(&name) {
                modules.push(name);
            }
        }
        at += 1;
    }
    modules.sort_unstable();
    assert_eq!(modules, MODULES);

    let refused = app
        .client
        .post(app.url("/console/console.js"))
        .send()
        .await
        .expect("a POST");
    assert_eq!(refused.status(), 405);
    let body: Value = refused.json().await.expect("a JSON error");
    assert!(body["errors"][0]["message"].is_string(), "a JSON error: {body}");
}
