//! Checks the API makes before it reads a request's body, with Django REST
//! framework's answers: a foreign `Origin` on an unsafe method (403, the
//! CSRF refusal), a body that does not say it is JSON (415), too many
//! login attempts from one address (429 with `Retry-After`).
//!
//! Together they close the cross-site hole of a JSON API on localhost:
//! any web page can send a form or `text/plain` POST to it without asking
//! the browser's permission, but not one with a JSON content type, and
//! never without its own `Origin`.

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use chanx::OriginPolicy;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde_json::json;

use crate::api::json_response;

/// Login attempts one client address may make per minute (well-formed
/// ones; a malformed body is refused before it counts).
pub const LOGIN_ATTEMPTS_PER_MINUTE: u32 = 20;

/// The refusal of a request whose `Origin` the allow-list does not name (403),
/// as Django's CSRF check refuses it; requests without `Origin`
/// (non-browser clients) pass.
pub fn origin_refusal(policy: &OriginPolicy, headers: &HeaderMap) -> Option<Response<String>> {
    if policy.allows_request(headers) {
        return None;
    }
    let origin = headers
        .get(header::ORIGIN)
        .map(|origin| String::from_utf8_lossy(origin.as_bytes()).into_owned())
        .unwrap_or_default();
    tracing::info!(origin, "API request from a foreign origin refused");
    Some(json_response(
        StatusCode::FORBIDDEN,
        json!({
            "detail": format!(
                "CSRF Failed: Origin checking failed - {origin} does not match any trusted origins."
            )
        }),
    ))
}

/// The refusal of a body whose `Content-Type` is not JSON (`application/json`,
/// or any `application/*+json`) with 415 and DRF's text. A request
/// without `Content-Type` is read as JSON.
pub fn content_type_refusal(headers: &HeaderMap) -> Option<Response<String>> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let is_json = value
        .to_str()
        .ok()
        .and_then(|text| text.parse::<mime::Mime>().ok())
        .is_some_and(|media| {
            media.type_() == mime::APPLICATION
                && (media.subtype() == mime::JSON || media.suffix() == Some(mime::JSON))
        });
    if is_json {
        return None;
    }
    let given = String::from_utf8_lossy(value.as_bytes());
    Some(json_response(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        json!({ "detail": format!("Unsupported media type \"{given}\" in request.") }),
    ))
}

/// Login attempts per client address: a token bucket of
/// [`LOGIN_ATTEMPTS_PER_MINUTE`], refilled evenly over the minute.
#[derive(Debug)]
pub struct LoginThrottle {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::per_minute(LOGIN_ATTEMPTS_PER_MINUTE)
    }
}

impl LoginThrottle {
    /// `attempts` per minute and address (at least 1).
    pub fn per_minute(attempts: u32) -> Self {
        let attempts = NonZeroU32::new(attempts).unwrap_or(NonZeroU32::MIN);
        LoginThrottle {
            limiter: RateLimiter::keyed(Quota::per_minute(attempts)),
        }
    }

    /// Counts an attempt from `peer` (clients of unknown address share
    /// one budget); past the budget, the refusal: 429 with DRF's text and `Retry-After`.
    pub fn refusal(&self, peer: Option<IpAddr>) -> Option<Response<String>> {
        let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        // Addresses whose bucket is full again hold no state worth keeping.
        if self.limiter.len() > 10_000 {
            self.limiter.retain_recent();
        }
        let not_until = self.limiter.check_key(&peer).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let seconds = wait.as_secs() + u64::from(wait > Duration::from_secs(wait.as_secs()));
        tracing::warn!(%peer, retry_after = seconds, "login attempts throttled");
        let unit = if seconds == 1 { "second" } else { "seconds" };
        let mut response = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            json!({
                "detail": format!("Request was throttled. Expected available in {seconds} {unit}.")
            }),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        Some(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn only_json_bodies_are_read() {
        for ok in [
            &[][..],
            &[(header::CONTENT_TYPE, "application/json")],
            &[(header::CONTENT_TYPE, "Application/JSON; charset=utf-8")],
            &[(header::CONTENT_TYPE, "application/merge-patch+json")],
        ] {
            assert!(content_type_refusal(&headers(ok)).is_none(), "{ok:?}");
        }
        for refused in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "nonsense",
        ] {
            let response =
                content_type_refusal(&headers(&[(header::CONTENT_TYPE, refused)])).expect(refused);
            assert_eq!(response.status(), 415);
            assert_eq!(
                response.body(),
                &json!({ "detail": format!("Unsupported media type \"{refused}\" in request.") })
                    .to_string()
            );
        }
    }

    #[test]
    fn foreign_origins_are_refused_with_the_csrf_text() {
        let policy = OriginPolicy::allow_list(["http://localhost:8000"]);
        assert!(origin_refusal(&policy, &HeaderMap::new()).is_none());
        let allowed = headers(&[(header::ORIGIN, "http://localhost:8000")]);
        assert!(origin_refusal(&policy, &allowed).is_none());
        let foreign = headers(&[(header::ORIGIN, "http://evil.example")]);
        let response = origin_refusal(&policy, &foreign).expect("foreign");
        assert_eq!(response.status(), 403);
        assert!(response.body().contains(
            "CSRF Failed: Origin checking failed - http://evil.example does not match any trusted origins."
        ));
        let two = headers(&[
            (header::ORIGIN, "http://localhost:8000"),
            (header::ORIGIN, "http://evil.example"),
        ]);
        assert!(origin_refusal(&policy, &two).is_some());
    }

    #[test]
    fn login_attempts_are_throttled_per_address() {
        let throttle = LoginThrottle::per_minute(3);
        let a = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let b = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        for _ in 0..3 {
            assert!(throttle.refusal(a).is_none());
        }
        let response = throttle.refusal(a).expect("the fourth in a minute");
        assert_eq!(response.status(), 429);
        let retry_after: u64 = response.headers()[header::RETRY_AFTER]
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .expect("Retry-After seconds");
        assert!((1..=20).contains(&retry_after), "{retry_after}");
        assert!(response.body().contains(&format!(
            "Request was throttled. Expected available in {retry_after} second"
        )));
        assert!(
            throttle.refusal(b).is_none(),
            "another address has its own budget"
        );
    }
}
