//! The program's configuration: command-line flags and environment.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use chanx::Options;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Which web framework serves the endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Adapter {
    /// Everything, HTTP API and playground included (the default).
    Axum,
    /// Everything, HTTP API and playground included.
    Warp,
    /// The WebSockets only.
    AsyncStd,
}

/// The development key used when `CHANX_SECRET_KEY` is unset.
pub const DEV_SECRET_KEY: &str = "chanx-quickstart-insecure-development-key";

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The web framework.
    pub adapter: Adapter,
    /// The address to listen on.
    pub bind: SocketAddr,
    /// Key that signs session cookies.
    pub secret_key: String,
    /// Whether `secret_key` is the development default.
    pub secret_is_default: bool,
    /// Browser origins allowed to open WebSockets.
    pub allowed_origins: Vec<String>,
    /// The demo users' password.
    pub demo_password: String,
    /// Protocol options of both endpoints.
    pub options: Options,
}

/// A configuration problem, naming the flag or variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag or variable has a value that cannot be used.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The flag or variable.
        field: String,
        /// Why.
        reason: String,
    },
    /// The Redis channel layer did not start.
    #[error("Redis channel layer (--redis or CHANX_REDIS_URL): {0}")]
    Redis(#[from] chanx_fred::Error),
    /// An I/O failure while starting or serving.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Bad endpoint options.
    #[error("invalid endpoint configuration: {0}")]
    Endpoint(#[from] chanx::proto::ConfigError),
    /// Bad routes.
    #[error("invalid routes: {0}")]
    Routes(#[from] chanx::routing::RouteError),
}

impl ConfigError {
    /// The process exit status for this error: 2 for a mistake in the
    /// command line or the environment, 1 for a failure while serving.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConfigError::Invalid { .. } => 2,
            ConfigError::Redis(
                chanx_fred::Error::Config(_) | chanx_fred::Error::Invalid { .. },
            ) => 2,
            ConfigError::Redis(_)
            | ConfigError::Io { .. }
            | ConfigError::Endpoint(_)
            | ConfigError::Routes(_) => 1,
        }
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

impl Config {
    /// The defaults of docs/quick-start.md ("The quickstart program's interface") for `bind`, reading the environment
    /// through `env` (so tests can pass their own).
    pub fn from_env(
        bind: SocketAddr,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let (secret_key, secret_is_default) = match env("CHANX_SECRET_KEY") {
            Some(key) if key.trim().is_empty() => {
                return Err(invalid("CHANX_SECRET_KEY", "must not be empty"));
            }
            Some(key) => (key, false),
            None => (DEV_SECRET_KEY.to_owned(), true),
        };
        let allowed_origins = match env("CHANX_ALLOWED_ORIGINS") {
            Some(list) => {
                let origins: Vec<String> = list
                    .split(',')
                    .map(|o| o.trim().to_owned())
                    .filter(|o| !o.is_empty())
                    .collect();
                for origin in &origins {
                    if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                        return Err(invalid(
                            "CHANX_ALLOWED_ORIGINS",
                            format!("`{origin}` is not an http(s) origin"),
                        ));
                    }
                }
                origins
            }
            None => vec![
                "http://localhost:8000".to_owned(),
                "http://127.0.0.1:8000".to_owned(),
                format!("http://{bind}"),
            ],
        };
        let demo_password = match env("CHANX_DEMO_PASSWORD") {
            Some(p) if p.is_empty() => {
                return Err(invalid("CHANX_DEMO_PASSWORD", "must not be empty"));
            }
            Some(p) => p,
            None => crate::login::DEFAULT_DEMO_PASSWORD.to_owned(),
        };
        Ok(Config {
            adapter: Adapter::Axum,
            bind,
            secret_key,
            secret_is_default,
            allowed_origins,
            demo_password,
            options: Options::default(),
        })
    }
}

/// What the help says about the environment and exit codes.
const ENVIRONMENT_HELP: &str = "\
Environment (besides the variables shown with each flag):
  CHANX_SECRET_KEY       key that signs session cookies; unset: a fixed
                         development key, with a warning in the log
  CHANX_ALLOWED_ORIGINS  comma-separated browser origins allowed to open
                         WebSockets and call the API; unset:
                         http://localhost:8000, http://127.0.0.1:8000 and
                         the bound address
  CHANX_DEMO_PASSWORD    password of the demo users alice, bob and carol
                         (default: chanx-demo)
  RUST_LOG               log filter, e.g. `debug` or `chanx=debug,info`
                         (default: info)

Exit status: 0 on success, 1 when serving fails (address in use, Redis
unreachable), 2 for a mistake in the command line or the environment.";

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "quickstart",
    version,
    about = "The chanx Quick Start, runnable: echo, chat rooms and notifications over WebSockets",
    after_help = ENVIRONMENT_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Format of the log lines on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "CHANX_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the WebSocket endpoints, the HTTP API and the playground.
    #[command(after_help = ENVIRONMENT_HELP)]
    Serve(ServeArgs),
    /// Print a `sessionid` cookie value that `serve` accepts for a demo user
    /// (signed with the same CHANX_SECRET_KEY).
    #[command(after_help = ENVIRONMENT_HELP)]
    Session {
        /// The demo user: alice, bob or carol.
        username: String,
    },
    /// Print the AsyncAPI 3.0 document of the WebSocket endpoints (what
    /// `GET /asyncapi.json` serves), e.g. to generate a client.
    Asyncapi {
        /// The document's format.
        #[arg(long, value_enum, default_value_t = DocumentFormat::Json)]
        format: DocumentFormat,
        /// The server host the document names.
        #[arg(long, default_value = "localhost:8000")]
        host: String,
    },
}

/// The format of a printed document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DocumentFormat {
    /// JSON, pretty-printed.
    Json,
    /// YAML.
    Yaml,
}

/// The flags of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The web framework serving the endpoints (async-std serves the
    /// WebSockets only).
    #[arg(long, value_enum, default_value_t = Adapter::Axum, env = "CHANX_ADAPTER")]
    pub adapter: Adapter,
    /// Where to listen: an IP address or host name, and a port (0 picks a
    /// free one).
    #[arg(long, default_value = "127.0.0.1:8000", env = "CHANX_BIND", value_name = "HOST:PORT", value_parser = parse_bind)]
    pub bind: Bind,
    /// Use the Redis channel layer at this URL, so that several `serve`
    /// processes share groups and events (default: the in-memory layer).
    #[arg(long, env = "CHANX_REDIS_URL", value_name = "URL")]
    pub redis: Option<String>,
}

/// The format of log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event (coloured on a terminal).
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// A `--bind` address: the text given and the socket address it resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    /// The host as given (`localhost`, `127.0.0.1`, `[::1]`...).
    pub host: String,
    /// The first address the host resolves to, with the port.
    pub addr: SocketAddr,
}

impl Bind {
    /// The origin a browser uses for this host on `port`, when the host is
    /// a name rather than an IP address (`http://localhost:9000`).
    pub fn named_origin(&self, port: u16) -> Option<String> {
        let is_ip = self
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok();
        (!is_ip).then(|| format!("http://{}:{port}", self.host))
    }
}

/// Parses `HOST:PORT`, resolving a host name (`localhost:8000`). An IPv4
/// address is preferred when a name has both kinds.
fn parse_bind(text: &str) -> Result<Bind, String> {
    let (host, _) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("`{text}` is not HOST:PORT, like 127.0.0.1:8000"))?;
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve `{text}`: {error}"))?
        .collect();
    let addr = addrs
        .iter()
        .find(|addr| addr.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("`{text}` resolves to no address"))?;
    Ok(Bind {
        host: host.to_owned(),
        addr,
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;
    use clap::error::ErrorKind;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("quickstart").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_serve_flags() {
        let Ok(Cli {
            command: Command::Serve(serve),
            log_format,
        }) = parse(&["serve", "--adapter", "warp", "--bind=0.0.0.0:9000"])
        else {
            panic!("serve flags refused");
        };
        assert_eq!(serve.adapter, Adapter::Warp);
        assert_eq!(serve.bind.addr, ([0, 0, 0, 0], 9000).into());
        assert_eq!(log_format, LogFormat::Text);
        for bad in [
            ["--bind", "nope"],
            ["--adapter", "rocket"],
            ["--history", "1"],
        ] {
            let error = parse(&["serve", bad[0], bad[1]]).map(|_| ());
            assert!(
                error.is_err_and(|e| e.kind() != ErrorKind::DisplayHelp && e.exit_code() == 2),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn host_names_bind_and_name_their_origin() {
        let bind = parse_bind("localhost:8000").expect("localhost resolves");
        assert!(bind.addr.ip().is_loopback());
        assert_eq!(
            bind.named_origin(8000).as_deref(),
            Some("http://localhost:8000")
        );
        let ip = parse_bind("127.0.0.1:0").expect("an IP binds");
        assert_eq!(ip.named_origin(1), None);
        assert_eq!(parse_bind("[::1]:0").map(|b| b.named_origin(1)), Ok(None));
        assert!(parse_bind("8000").is_err_and(|e| e.contains("HOST:PORT")));
    }

    #[test]
    fn help_and_version_are_answered() {
        for args in [
            &["--help"][..],
            &["serve", "--help"],
            &["session", "--help"],
        ] {
            let help = parse(args)
                .map(|_| ())
                .expect_err("help is not a command")
                .to_string();
            for variable in [
                "CHANX_SECRET_KEY",
                "CHANX_ALLOWED_ORIGINS",
                "CHANX_DEMO_PASSWORD",
                "RUST_LOG",
                "CHANX_LOG_FORMAT",
                "Exit status",
            ] {
                assert!(help.contains(variable), "{args:?} help lacks {variable}");
            }
        }
        let serve_help = parse(&["serve", "--help"])
            .map(|_| ())
            .expect_err("help")
            .to_string();
        for variable in ["CHANX_REDIS_URL", "CHANX_BIND", "CHANX_ADAPTER"] {
            assert!(serve_help.contains(variable), "serve help lacks {variable}");
        }
        let version = parse(&["--version"]).map(|_| ()).expect_err("version");
        assert_eq!(version.kind(), ErrorKind::DisplayVersion);
    }

    #[test]
    fn env_errors_name_the_variable() {
        let bind: SocketAddr = ([127, 0, 0, 1], 8000).into();
        let err = Config::from_env(bind, |k| {
            (k == "CHANX_ALLOWED_ORIGINS").then(|| "ftp://x".to_owned())
        });
        assert!(
            err.is_err_and(
                |e| e.to_string().contains("CHANX_ALLOWED_ORIGINS") && e.exit_code() == 2
            )
        );
        let ok = Config::from_env(bind, |_| None).map(|c| c.allowed_origins);
        assert_eq!(
            ok.ok(),
            Some(vec![
                "http://localhost:8000".into(),
                "http://127.0.0.1:8000".into(),
                "http://127.0.0.1:8000".into()
            ])
        );
    }
}
