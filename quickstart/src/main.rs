//! `quickstart`: the chanx Quick Start, runnable.
//!
//! ```text
//! cargo run --release -p quickstart -- serve [--adapter axum|warp|async-std] [--bind 127.0.0.1:8000] [--redis URL]
//! cargo run --release -p quickstart -- session <username>
//! cargo run --release -p quickstart -- --help
//! ```

use std::process::ExitCode;

use clap::Parser as _;
use quickstart::config::{Bind, Cli, Command, DocumentFormat, LogFormat, ServeArgs};
use quickstart::{Adapter, Config, ConfigError, build_app};
use warp::Filter as _;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn main() -> ExitCode {
    // clap prints help and version (exit 0) and command-line mistakes with
    // the usage (exit 2).
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Session { username } => session(&username),
        Command::Serve(args) => serve(args),
        Command::Asyncapi { format, host } => print_asyncapi(format, &host),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Errors after parsing are reported once, without the usage text.
        Err(error) => {
            eprintln!("quickstart: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Logs go to stderr (stdout carries the banner and `session`'s cookie),
/// as text coloured only on a terminal or as JSON lines, filtered by
/// `RUST_LOG` (default `info`: connection events and HTTP requests; each
/// message is logged at `debug`). An invalid `RUST_LOG` is reported, not
/// silently replaced.
fn init_logging(format: LogFormat) {
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
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

/// `asyncapi`: the document `GET /asyncapi.json` serves, on stdout.
fn print_asyncapi(format: DocumentFormat, host: &str) -> Result<(), ConfigError> {
    let config = Config::from_env(([127, 0, 0, 1], 8000).into(), |_| None)?;
    let app = build_app(&config)?;
    let document = chanx::docs::asyncapi(app.server.routes(), "chanx endpoints", host);
    match format {
        DocumentFormat::Json => {
            let pretty = serde_json::to_string_pretty(&document).unwrap_or_default();
            println!("{pretty}");
        }
        DocumentFormat::Yaml => print!("{}", chanx::docs::to_yaml(&document)),
    }
    Ok(())
}

fn serve(args: ServeArgs) -> Result<(), ConfigError> {
    let ServeArgs {
        adapter,
        bind,
        redis,
    } = args;
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
        Adapter::AsyncStd => serve_async_std(&bind),
    }
}

/// A listener on `bind` with a deep accept queue (bursts of connects) and
/// `TCP_NODELAY`, inherited by accepted sockets on Linux.
fn listen(bind: &Bind) -> Result<tokio::net::TcpListener, ConfigError> {
    chanx_warp::listener(bind.addr).map_err(|source| ConfigError::Io {
        what: format!("cannot listen on {} (--bind)", bind.addr),
        source,
    })
}

/// The configuration of a server on `listener`: its default origin list
/// names the address actually bound (`--bind :0`). Warns when cookies are
/// signed with the development key.
fn config_for(
    listener: &tokio::net::TcpListener,
    bind: &Bind,
    adapter: Adapter,
) -> Result<Config, ConfigError> {
    let addr = listener.local_addr().unwrap_or(bind.addr);
    let mut config = Config::from_env(addr, env)?;
    config.adapter = adapter;
    // `--bind localhost:8000`: the page is opened as http://localhost:8000.
    if env("CHANX_ALLOWED_ORIGINS").is_none() {
        config
            .allowed_origins
            .extend(bind.named_origin(addr.port()));
    }
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

async fn run(adapter: Adapter, bind: Bind, redis: Option<String>) -> Result<(), ConfigError> {
    let listener = listen(&bind)?;
    let config = config_for(&listener, &bind, adapter)?;
    let addr = config.bind;
    let (app, layer_name) = match redis {
        None => (build_app(&config)?, "in-memory channel layer"),
        Some(url) => {
            let layer = chanx_fred::FredLayer::connect(chanx_fred::FredConfig::new(url)).await?;
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
        let filter = quickstart::warp::filter(&app).with(quickstart::warp::request_log());
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
fn serve_async_std(bind: &Bind) -> Result<(), ConfigError> {
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
    let listener = listener.into_std().map_err(|source| ConfigError::Io {
        what: format!("cannot listen on {addr} (--bind)"),
        source,
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
