//! `quickstart`: the chanx Quick Start, runnable.
//!
//! ```text
//! cargo run --release -p quickstart -- serve [--adapter axum|warp|async-std] [--bind 127.0.0.1:8000] [--redis URL]
//! cargo run --release -p quickstart -- session <username>
//! ```

use std::process::ExitCode;

use quickstart::config::{Command, USAGE, parse_args};
use quickstart::{Adapter, Config, ConfigError, build_app};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn main() -> ExitCode {
    init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse_args(&args, env("CHANX_REDIS_URL")) {
        Ok(command) => command,
        // Only a mistake in the command line gets the usage text.
        Err(error) => {
            eprintln!("quickstart: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Command::Session { username } => session(&username),
        Command::Serve {
            adapter,
            bind,
            redis,
        } => serve(adapter, bind, redis),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("quickstart: {error}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr (stdout carries the banner and `session`'s cookie),
/// coloured only on a terminal, filtered by `RUST_LOG` (default `info`:
/// connection events; each message is logged at `debug`). An invalid
/// `RUST_LOG` is reported, not silently replaced.
fn init_logging() {
    use std::io::IsTerminal;
    let filter = match std::env::var("RUST_LOG") {
        Err(_) => tracing_subscriber::EnvFilter::new("info"),
        Ok(directives) => {
            tracing_subscriber::EnvFilter::try_new(&directives).unwrap_or_else(|error| {
                eprintln!(
                    "quickstart: ignoring RUST_LOG={directives:?} ({error}); logging at info"
                );
                tracing_subscriber::EnvFilter::new("info")
            })
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn session(username: &str) -> Result<(), ConfigError> {
    // Only the signing key matters here: ignore the server's other settings.
    let config = Config::from_env(([127, 0, 0, 1], 8000).into(), |name| match name {
        "CHANX_SECRET_KEY" | "CHANX_DEMO_PASSWORD" => env(name),
        _ => None,
    })?;
    let users = quickstart::login::DemoUsers::new(config.demo_password.clone());
    if users.get(username).is_none() {
        return Err(ConfigError::Invalid {
            field: "session <username>".into(),
            reason: format!("`{username}` is not a demo user (alice, bob, carol)"),
        });
    }
    let signer = quickstart::session::SessionSigner::new(config.secret_key.as_bytes());
    println!("{}", signer.sign(username, quickstart::store::now_unix()));
    Ok(())
}

fn serve(
    adapter: Adapter,
    bind: std::net::SocketAddr,
    redis: Option<String>,
) -> Result<(), ConfigError> {
    raise_file_limit();
    match adapter {
        Adapter::Axum | Adapter::Warp => {
            let runtime = tokio::runtime::Runtime::new().map_err(|e| ConfigError::Io {
                what: "cannot start the async runtime".into(),
                source: e,
            })?;
            runtime.block_on(run(adapter, bind, redis))
        }
        Adapter::AsyncStd if redis.is_some() => Err(ConfigError::Invalid {
            field: "--redis".into(),
            reason: "the Redis channel layer runs on tokio; use it with --adapter axum or warp"
                .into(),
        }),
        Adapter::AsyncStd => serve_async_std(bind),
    }
}

/// A listener on `bind` with a deep accept queue (bursts of connects) and
/// `TCP_NODELAY`, inherited by accepted sockets on Linux.
fn listen(bind: std::net::SocketAddr) -> Result<tokio::net::TcpListener, ConfigError> {
    chanx_warp::listener(bind).map_err(|e| ConfigError::Invalid {
        field: "--bind".into(),
        reason: format!("cannot listen on {bind}: {e}"),
    })
}

/// The configuration of a server on `listener`: its default origin list
/// names the address actually bound (`--bind :0`). Warns when cookies are
/// signed with the development key.
fn config_for(
    listener: &tokio::net::TcpListener,
    bind: std::net::SocketAddr,
    adapter: Adapter,
) -> Result<Config, ConfigError> {
    let addr = listener.local_addr().unwrap_or(bind);
    let mut config = Config::from_env(addr, env)?;
    config.adapter = adapter;
    if config.secret_is_default {
        tracing::warn!(
            "CHANX_SECRET_KEY is not set: session cookies are signed with a fixed development key"
        );
    }
    Ok(config)
}

/// Closes every WebSocket with 1001, waiting at most [`SHUTDOWN_GRACE`]
/// for them (on any runtime).
async fn close_websockets(shutdown: &chanx::Shutdown) {
    tracing::info!("shutting down: closing WebSockets with 1001");
    let closed = std::pin::pin!(shutdown.graceful());
    let grace = futures_timer::Delay::new(SHUTDOWN_GRACE);
    if let futures_util::future::Either::Right(_) =
        futures_util::future::select(closed, grace).await
    {
        tracing::warn!(
            open = shutdown.active_connections(),
            "connections still open after the grace period; exiting anyway"
        );
    }
}

/// How long shutdown waits for WebSockets to close before exiting anyway.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

async fn run(
    adapter: Adapter,
    bind: std::net::SocketAddr,
    redis: Option<String>,
) -> Result<(), ConfigError> {
    let listener = listen(bind)?;
    let config = config_for(&listener, bind, adapter)?;
    let addr = config.bind;
    let (app, layer_name) = match redis {
        None => (build_app(&config)?, "in-memory channel layer"),
        Some(url) => {
            let layer = chanx_fred::FredLayer::connect(chanx_fred::FredConfig::new(url))
                .await
                .map_err(|e| ConfigError::Invalid {
                    field: "--redis (or CHANX_REDIS_URL)".into(),
                    reason: e.to_string(),
                })?;
            (
                quickstart::build_app_on(&config, layer)?,
                "Redis channel layer",
            )
        }
    };
    let name = if adapter == Adapter::Warp {
        "warp"
    } else {
        "axum"
    };
    println!("quickstart serving on http://{addr} (adapter {name}, {layer_name})");
    println!("  POST http://{addr}/auth/login/            log in (alice, bob, carol)");
    println!("  POST http://{addr}/api/notify/<room_id>/  send a notification to a room");
    println!("  GET  http://{addr}/playground/websocket/  WebSocket playground");
    println!("  GET  http://{addr}/asyncapi.json          AsyncAPI document");
    println!("  WS   ws://{addr}/ws/myapp/echo/");
    println!("  WS   ws://{addr}/ws/myapp/chat/<room_id>/");
    let shutdown = app.server.shutdown().clone();
    // The WebSockets close first (1001, within their grace period); then
    // the HTTP server stops, giving requests in progress HTTP_GRACE, half-
    // sent request heads included.
    let stopped = async move {
        wait_for_signal().await;
        close_websockets(&shutdown).await;
    };
    let limits = chanx_axum::ServeLimits {
        shutdown_grace: HTTP_GRACE,
        ..Default::default()
    };
    if adapter == Adapter::Warp {
        let filter = quickstart::warp::filter(&app);
        chanx_warp::serve(listener, filter, limits, stopped).await;
    } else {
        chanx_axum::serve(listener, app.router, limits, stopped).await;
    }
    Ok(())
}

/// Every connection holds a file descriptor: raise the soft limit (often
/// 1024) to the hard one, so that the server does not run out long before
/// the machine does.
fn raise_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open file limit"),
    }
}

/// How long HTTP requests still in progress may take once the WebSockets
/// are closed.
const HTTP_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// `--adapter async-std`: the WebSockets only, with `chanx-async-std` on
/// the async-std runtime (there is no HTTP framework to serve the API and
/// the playground). A small tokio runtime binds the listener, as for the
/// other adapters, and waits for SIGINT/SIGTERM.
fn serve_async_std(bind: std::net::SocketAddr) -> Result<(), ConfigError> {
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ConfigError::Io {
            what: "cannot start the signal handler".into(),
            source: e,
        })?;
    let listener = {
        let _context = signals.enter();
        listen(bind)?
    };
    let config = config_for(&listener, bind, Adapter::AsyncStd)?;
    let addr = config.bind;
    let listener = listener.into_std().map_err(|e| ConfigError::Invalid {
        field: "--bind".into(),
        reason: format!("cannot listen on {bind}: {e}"),
    })?;
    let server = build_app(&config)?.server;
    println!(
        "quickstart serving WebSockets on ws://{addr} (adapter async-std, in-memory channel layer)"
    );
    println!("  WebSockets only: the HTTP API and playground are not served in this mode");
    println!("  (no /auth/login/, /api/notify/, /playground/websocket/ or /asyncapi.json);");
    println!("  get a session cookie with `quickstart session <username>`");
    println!("  WS   ws://{addr}/ws/myapp/echo/");
    println!("  WS   ws://{addr}/ws/myapp/chat/<room_id>/");
    let listener = async_std::net::TcpListener::from(listener);
    async_std::task::block_on(async {
        let signal = async_std::task::spawn_blocking(move || signals.block_on(wait_for_signal()));
        let serving = chanx_async_std::serve(&server, listener, |task| {
            async_std::task::spawn(task);
        });
        let stopped = async {
            signal.await;
            close_websockets(server.shutdown()).await;
        };
        futures_util::future::join(serving, stopped).await;
    });
    Ok(())
}
