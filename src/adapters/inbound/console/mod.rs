//! The console: the page a browser gets at `GET /graphql`, and the few files it loads.
//!
//! A driving adapter's front end, small enough to read: plain HTML, CSS and JavaScript
//! embedded in the binary, so it works where the internet does not (air-gapped sites, strict
//! proxies) and a page that will hold bearer tokens loads no third-party script. A strict
//! Content-Security-Policy keeps it that way: the browser itself refuses anything that is
//! not from this server.
//!
//! The script is a set of JavaScript modules, one concern each, that `console.js` imports:
//! `parse.js` (tokens, tree, printing), `highlight.js` and `editor.js` (the highlighted
//! editor), `schema.js` (introspection), `complete.js`, `validate.js`, `tabs.js`,
//! `history.js`, `headers.js`, `docs.js` and `store.js` (storage and small DOM helpers).

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Only this server, for everything; no inline script or style, no frames, no forms.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file, with a validator derived from its bytes when the binary is built.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: u64,
}

impl Asset {
    const fn new(body: &'static str, content_type: &'static str) -> Self {
        Self {
            body,
            content_type,
            etag: fnv1a(body.as_bytes()),
        }
    }

    /// The file, or 304 when the browser already holds this version. `no-cache` makes the
    /// browser ask each time, so a new binary's console is never mixed with an old script.
    fn respond(&self, request: &HeaderMap) -> Response {
        let etag = format!("\"{:016x}\"", self.etag);
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            ([(header::CONTENT_TYPE, self.content_type)], self.body).into_response()
        };
        let headers = response.headers_mut();
        if let Ok(etag) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, etag);
        }
        protect(headers);
        response
    }
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

static PAGE: Asset = Asset::new(include_str!("console.html"), "text/html; charset=utf-8");
static SCRIPT: Asset = Asset::new(include_str!("console.js"), JAVASCRIPT);
static STYLE: Asset = Asset::new(include_str!("console.css"), "text/css; charset=utf-8");
static ICON: Asset = Asset::new(include_str!("icon.svg"), "image/svg+xml");

/// Every file the console loads, by its path under the server's root.
static FILES: [(&str, &Asset); 14] = [
    ("/console/console.js", &SCRIPT),
    ("/console/console.css", &STYLE),
    ("/console/icon.svg", &ICON),
    (
        "/console/complete.js",
        &Asset::new(include_str!("complete.js"), JAVASCRIPT),
    ),
    (
        "/console/docs.js",
        &Asset::new(include_str!("docs.js"), JAVASCRIPT),
    ),
    (
        "/console/editor.js",
        &Asset::new(include_str!("editor.js"), JAVASCRIPT),
    ),
    (
        "/console/headers.js",
        &Asset::new(include_str!("headers.js"), JAVASCRIPT),
    ),
    (
        "/console/highlight.js",
        &Asset::new(include_str!("highlight.js"), JAVASCRIPT),
    ),
    (
        "/console/history.js",
        &Asset::new(include_str!("history.js"), JAVASCRIPT),
    ),
    (
        "/console/parse.js",
        &Asset::new(include_str!("parse.js"), JAVASCRIPT),
    ),
    (
        "/console/schema.js",
        &Asset::new(include_str!("schema.js"), JAVASCRIPT),
    ),
    (
        "/console/store.js",
        &Asset::new(include_str!("store.js"), JAVASCRIPT),
    ),
    (
        "/console/tabs.js",
        &Asset::new(include_str!("tabs.js"), JAVASCRIPT),
    ),
    (
        "/console/validate.js",
        &Asset::new(include_str!("validate.js"), JAVASCRIPT),
    ),
];

/// The console page. It talks to the address it was served from: `POST` for queries and
/// mutations, the WebSocket (graphql-transport-ws) for subscriptions.
pub fn page() -> Response {
    PAGE.respond(&HeaderMap::new())
}

/// The routes of the console's own files, to be merged into the HTTP router. The page refers
/// to them relatively (`console/…` beside `/graphql`), so a path prefix added by a reverse
/// proxy carries over.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    FILES.iter().fold(Router::new(), |router, &(path, asset)| {
        router.route(
            path,
            get(move |request: HeaderMap| async move { asset.respond(&request) }),
        )
    })
}

fn protect(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// FNV-1a, 64 bits: enough to tell two versions of a file apart, and computable at build time.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut at = 0;
    while at < bytes.len() {
        hash ^= bytes[at] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        at += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_refers_only_to_its_own_files() {
        let page = PAGE.body;
        for reference in ["console/console.js", "console/console.css", "console/icon.svg"] {
            assert!(page.contains(&format!("\"{reference}\"")), "{reference}");
        }
        for text in std::iter::once(PAGE.body).chain(FILES.iter().map(|(_, asset)| asset.body)) {
            // The SVG namespace is a name, not an address anything is fetched from.
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "an absolute URL"
            );
            assert!(!text.contains("//cdn") && !text.contains("unpkg"), "a CDN");
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_the_policy_would_block() {
        assert!(!PAGE.body.contains("<script>"));
        assert!(!PAGE.body.contains("<style"));
        assert!(!PAGE.body.contains(" style="));
        let handlers = PAGE.body.match_indices(" on").filter(|(at, _)| {
            let rest = &PAGE.body[at + 3..];
            let name = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_lowercase()).len();
            name > 0 && rest[name..].starts_with('=')
        });
        assert_eq!(handlers.count(), 0, "an inline event handler");
    }

    /// Each module a script imports is served, and each served module is imported by one.
    #[test]
    fn every_module_imported_is_served_and_every_module_served_is_imported() {
        let served: Vec<&str> = FILES
            .iter()
            .filter_map(|(path, _)| path.strip_prefix("/console/"))
            .filter(|name| name.ends_with(".js"))
            .collect();
        let mut imported = vec!["console.js"];
        for (_, asset) in FILES.iter().filter(|(path, _)| path.ends_with(".js")) {
            for piece in asset.body.split(" from \"./").skip(1) {
                let name = &piece[..piece.find('"').expect("a closing quote")];
                assert!(served.contains(&name), "{name} is imported but not served");
                imported.push(name);
            }
        }
        for name in served {
            assert!(imported.contains(&name), "{name} is served but imported by none");
        }
    }

    #[test]
    fn every_file_has_its_own_validator_and_type() {
        for (index, (path, asset)) in FILES.iter().enumerate() {
            let kind = if path.ends_with(".js") {
                "text/javascript"
            } else if path.ends_with(".css") {
                "text/css"
            } else {
                "image/svg+xml"
            };
            assert!(asset.content_type.starts_with(kind), "{path}");
            let twin = FILES
                .iter()
                .skip(index + 1)
                .find(|(_, other)| other.etag == asset.etag)
                .map(|(other, _)| other);
            assert!(twin.is_none(), "{path} and {twin:?} share a validator");
        }
    }

    #[test]
    fn a_matching_if_none_match_gets_304_and_others_the_file() {
        let first = SCRIPT.respond(&HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag.clone());
        assert_eq!(SCRIPT.respond(&again).status(), StatusCode::NOT_MODIFIED);
        let mut other = HeaderMap::new();
        other.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"0\""));
        assert_eq!(SCRIPT.respond(&other).status(), StatusCode::OK);
        assert_ne!(STYLE.respond(&HeaderMap::new()).headers()[header::ETAG], etag);
    }
}
