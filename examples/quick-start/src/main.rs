//! Serves the Quick Start guide's application on 127.0.0.1:8000.

use quick_start::http::{AppState, router};
use quick_start::sessions::Sessions;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sessions = Sessions::default();
    let server = quick_start::build_server(sessions.clone())?;
    let app = router(AppState {
        server: server.clone(),
        sessions,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
    println!("serving on http://127.0.0.1:8000");
    let shutdown = async move {
        let _ = tokio::signal::ctrl_c().await;
        // Every open WebSocket is closed with code 1001.
        server.shutdown().graceful().await;
    };
    chanx_axum::serve(listener, app, chanx_axum::ServeLimits::default(), shutdown).await;
    Ok(())
}
