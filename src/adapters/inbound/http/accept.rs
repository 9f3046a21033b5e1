//! Which media type a GraphQL answer is sent as (GraphQL over HTTP, "Accept"), chosen from
//! the request's `Accept` header with its q-values.
//!
//! `application/graphql-response+json` tells the client that a non-2xx answer is still a
//! GraphQL response, so request errors can carry 400 (the spec's status codes);
//! `application/json` is the legacy type, under which every GraphQL response is 200. No
//! `Accept`, `*/*`, `application/*`, or a header naming neither type (the spec allows
//! disregarding it rather than answering 406) all get `application/json`, which every client
//! can read.

use axum::http::{HeaderMap, HeaderValue, header};

/// The media type a GraphQL answer is sent as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaType {
    /// `application/json`: every GraphQL response is 200.
    Json,
    /// `application/graphql-response+json`: request errors are 400, without `data`.
    GraphqlResponse,
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

impl MediaType {
    /// The type the client prefers: the higher q-value wins; at equal weight the type the
    /// client named outright wins over a wildcard, and `application/graphql-response+json`
    /// (the spec's own) over `application/json`.
    pub fn negotiate(headers: &HeaderMap) -> Self {
        // (q, named outright) of the best range that admits each type.
        let mut graphql = (0u16, false);
        let mut json = (0u16, false);
        let ranges = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','));
        for range in ranges {
            let Some((media, q)) = media_range(range) else {
                continue;
            };
            if media.eq_ignore_ascii_case(GRAPHQL_RESPONSE) {
                graphql = graphql.max((q, true));
            } else if media.eq_ignore_ascii_case(JSON) {
                json = json.max((q, true));
            } else if media == "*/*" || media.eq_ignore_ascii_case("application/*") {
                json = json.max((q, false));
            }
        }
        if graphql.0 > 0 && graphql >= json {
            Self::GraphqlResponse
        } else {
            Self::Json
        }
    }

    /// The answer's `Content-Type`.
    pub fn content_type(self) -> HeaderValue {
        match self {
            Self::Json => HeaderValue::from_static(JSON),
            Self::GraphqlResponse => {
                HeaderValue::from_static("application/graphql-response+json; charset=utf-8")
            }
        }
    }
}

/// Whether the client (a browser navigating) accepts an HTML page.
pub fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(media_range)
        .any(|(media, q)| q > 0 && media.eq_ignore_ascii_case("text/html"))
}

/// A media range's type and its weight in thousandths (`q=0.9` is 900); a malformed `q`
/// makes the range count for nothing.
fn media_range(range: &str) -> Option<(&str, u16)> {
    let mut parts = range.split(';');
    let media = parts.next()?.trim();
    if media.is_empty() {
        return None;
    }
    let mut q = 1000;
    for parameter in parts {
        let Some((name, value)) = parameter.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("q") {
            q = parse_q(value.trim()).unwrap_or(0);
        }
    }
    Some((media, q))
}

/// RFC 9110's qvalue: `0`, `1`, or up to three decimals.
fn parse_q(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn negotiate(accept: Option<&str>) -> MediaType {
        let mut headers = HeaderMap::new();
        if let Some(accept) = accept {
            headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        }
        MediaType::negotiate(&headers)
    }

    #[test]
    fn the_clients_preference_chooses_the_answers_type() {
        use MediaType::{GraphqlResponse, Json};
        for (accept, expected) in [
            (None, Json),
            (Some("*/*"), Json),
            (Some("application/json"), Json),
            (Some("application/graphql-response+json"), GraphqlResponse),
            (
                Some("Application/GraphQL-Response+JSON; charset=utf-8"),
                GraphqlResponse,
            ),
            (
                Some("application/graphql-response+json, application/json;q=0.9"),
                GraphqlResponse,
            ),
            (
                Some("application/json, application/graphql-response+json;q=0.5"),
                Json,
            ),
            (
                Some("application/json;q=0.5, application/graphql-response+json;q=0.6"),
                GraphqlResponse,
            ),
            (
                Some("application/json, application/graphql-response+json"),
                GraphqlResponse,
            ),
            (Some("application/graphql-response+json;q=0.8, */*"), Json),
            (Some("application/graphql-response+json, */*"), GraphqlResponse),
            (Some("application/graphql-response+json;q=0"), Json),
            (Some("application/graphql-response+json;q=2"), Json),
            (Some("text/html"), Json),
            (Some(""), Json),
        ] {
            assert_eq!(negotiate(accept), expected, "{accept:?}");
        }
    }

    #[test]
    fn q_values_are_read_to_the_thousandth() {
        assert_eq!(parse_q("0.9"), Some(900));
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0"), Some(0));
        for bad in ["1.5", "0.1234", "-1", "x", "0.x", ""] {
            assert_eq!(parse_q(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_browser_navigation_accepts_html_and_an_api_client_does_not() {
        let with = |accept: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            accepts_html(&headers)
        };
        assert!(with(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!with("*/*"));
        assert!(!with("application/json"));
        assert!(!with("text/html;q=0"));
        assert!(!accepts_html(&HeaderMap::new()));
    }
}
