//! The end-to-end suite against the axum adapter.
#![allow(clippy::unwrap_used, missing_docs)]

mod suite;

use chanx_e2e::Adapter;

// Every suite test runs: axum serves the whole Quick Start (WebSockets and
// the HTTP API), and no test is known to fail.
suite::adapter_tests!(Adapter::Axum;
    skip: [];
    attrs: [];
);

/// `.chanx()` takes WebSocket upgrades only: the application's own routes
/// and fallback still answer plain HTTP requests, on any path.
#[tokio::test]
async fn chanx_leaves_plain_http_to_the_routers_routes_and_fallback() {
    use axum::http::StatusCode;
    use chanx_axum::RouterExt;

    let running = chanx_e2e::start(Adapter::Axum).await;
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "home" }))
        .route("/ws/myapp/echo/", axum::routing::get(|| async { "a page" }))
        .fallback(|| async { (StatusCode::IM_A_TEAPOT, "our fallback") })
        .chanx(running.server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(chanx_axum::serve(
        listener,
        app,
        chanx_axum::ServeLimits::default(),
        std::future::pending(),
    ));

    let home = chanx_e2e::http(addr, "GET", "/", "").await;
    assert_eq!((home.status, home.body.as_str()), (200, "home"));
    let favicon = chanx_e2e::http(addr, "GET", "/favicon.ico", "").await;
    assert_eq!(
        (favicon.status, favicon.body.as_str()),
        (418, "our fallback")
    );
    // A plain GET on an endpoint's path is the application's route ...
    let page = chanx_e2e::http(addr, "GET", "/ws/myapp/echo/", "").await;
    assert_eq!((page.status, page.body.as_str()), (200, "a page"));

    // ... and an upgrade there is chanx's WebSocket.
    let here = running.reached_at(addr);
    let mut client = here.connect_as("/ws/myapp/echo/", "alice").await;
    client.send_text(r#"{"action": "ping"}"#).await;
    assert_eq!(client.recv_json().await["action"], "pong");
    // An upgrade to a path no endpoint serves is chanx's 404, not the fallback.
    let refused = here.connect_with("/nowhere/", &[]).await;
    assert_eq!(refused.refused_status("unknown path"), Some(404));
    serving.abort();
}
