//! What every request passes before any handler reads its body: the
//! `Host` it names, the page that sent it (`Origin`, `Sec-Fetch-Site`) and
//! its credential.
//!
//! - **Host.** A browser tricked by DNS rebinding sends the attacker's
//!   name as `Host`; only IP addresses, `localhost` and the configured
//!   `allowed_hosts` are served.
//! - **Origin.** Browsers name the page behind every cross-origin request,
//!   `no-cors` ones included. Only the server's own origin and the
//!   configured `cors_origins` pass; `Sec-Fetch-Site: cross-site` without
//!   an allowed origin is refused too (an `<img>` or `<script>` on another
//!   site), except a plain navigation to the page.
//! - **Token.** Writes always need it, reads too with `"auth": "all"`. It is
//!   taken from `Authorization: Bearer …` or from the `ash_token` cookie
//!   that `GET /?token=…` sets (`HttpOnly`, `SameSite=Strict`, so no other
//!   site's request carries it), and compared in constant time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::config::AuthScope;
use super::error::ApiError;
use super::App;

/// The cookie that carries the token for the web page.
pub const TOKEN_COOKIE: &str = "ash_token";

/// Routes anyone may read: the page's static files and the health check.
const PUBLIC: &[&str] = &["/", "/app.js", "/style.css", "/health", "/favicon.ico"];

/// The middleware: refuses before the body is read.
pub async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    match check(&app, &req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

fn check(app: &App, req: &Request) -> Result<(), ApiError> {
    let headers = req.headers();
    let host = request_host(req).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_host",
            "the request names no Host",
        )
    })?;
    if !host_allowed(&host, &app.config.allowed_hosts) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "host_not_allowed",
            format!(
                "this server does not answer to Host {host:?}; add it to allowed_hosts \
                 if it is a name of this server"
            ),
        ));
    }
    let origin = headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or("?"));
    let origin_ok = origin.is_none_or(|o| {
        o == format!("http://{host}") || app.config.cors_origins.iter().any(|c| c == o)
    });
    if !origin_ok {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            format!(
                "requests from pages of origin {:?} are refused (cors_origins lists the \
                 origins allowed)",
                origin.unwrap_or_default()
            ),
        ));
    }
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    let navigation = req.method() == Method::GET
        && req.uri().path() == "/"
        && headers
            .get("sec-fetch-mode")
            .is_some_and(|v| v.as_bytes() == b"navigate");
    if cross_site && origin.is_none() && !navigation {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site",
            "requests made by other sites' pages are refused",
        ));
    }
    let path = req.uri().path();
    let reads = [Method::GET, Method::HEAD, Method::OPTIONS].contains(req.method());
    let needs_token = match app.config.auth {
        AuthScope::Writes => !reads && path != "/search",
        // A CORS preflight never carries credentials.
        AuthScope::All => req.method() != Method::OPTIONS && !PUBLIC.contains(&path),
    };
    // The page bootstrap `GET /?token=…` is checked by its handler.
    if needs_token && !has_token(app, headers) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorised",
            format!(
                "{} {path} needs the header Authorization: Bearer <token> (serve prints the \
                 token at start)",
                req.method()
            ),
        ));
    }
    Ok(())
}

/// The host the request is for: the URI's authority (HTTP/2, absolute
/// form) or the `Host` header.
fn request_host(req: &Request) -> Option<String> {
    if let Some(a) = req.uri().authority() {
        return Some(a.as_str().to_string());
    }
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
}

/// Whether `host` (`name[:port]`) is an IP address, `localhost` or listed.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(rest) => match rest.split_once(']') {
            Some((v6, _)) => return v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(n, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                n
            } else {
                host
            }
        }),
    };
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// Whether the request carries the token, in its `Authorization` header
/// or its cookie.
pub fn has_token(app: &App, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == TOKEN_COOKIE)
        .map(|(_, v)| v);
    bearer
        .into_iter()
        .chain(cookie)
        .any(|given| token_matches(app, given))
}

/// Constant-time comparison with the server's token.
pub fn token_matches(app: &App, given: &str) -> bool {
    let token = app.token.as_bytes();
    let given = given.as_bytes();
    given.len() == token.len()
        && given
            .iter()
            .zip(token)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn hosts() {
        let allowed = vec!["search.clinic.example".to_string()];
        for ok in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "10.1.2.3:80",
            "search.clinic.example:8080",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "localhost.evil.example:8080",
            "[::1",
            "",
        ] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
    }
}
