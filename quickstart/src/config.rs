//! The program's configuration: command-line flags and environment.

use std::net::SocketAddr;

use chanx::Options;

/// Which web framework serves the endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    /// axum (the default).
    Axum,
    /// warp: everything, HTTP API included.
    Warp,
    /// async-std: the WebSockets only.
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
    /// A feature that is not built yet.
    #[error("{0}")]
    Unsupported(String),
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

fn invalid(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

impl Config {
    /// The defaults of QUICKSTART.md for `bind`, reading the environment
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

/// The parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `serve [--adapter A] [--bind ADDR] [--redis URL]`.
    Serve {
        /// `--adapter`.
        adapter: Adapter,
        /// `--bind`.
        bind: SocketAddr,
        /// `--redis` (or `CHANX_REDIS_URL`).
        redis: Option<String>,
    },
    /// `session <username>`.
    Session {
        /// The user to sign a cookie for.
        username: String,
    },
    /// `--help`.
    Help,
}

/// The usage text.
pub const USAGE: &str = "usage:
  quickstart serve [--adapter axum|warp|async-std] [--bind 127.0.0.1:8000] [--redis redis://127.0.0.1:6379]
  quickstart session <username>";

/// Parses the arguments after the program name.
pub fn parse_args(args: &[String], redis_env: Option<String>) -> Result<Command, ConfigError> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => Ok(Command::Help),
        Some("session") => {
            let username = it
                .next()
                .ok_or_else(|| invalid("session <username>", "a username is required"))?;
            if let Some(extra) = it.next() {
                return Err(invalid("session", format!("unexpected argument `{extra}`")));
            }
            Ok(Command::Session {
                username: username.clone(),
            })
        }
        Some("serve") => {
            let mut adapter = Adapter::Axum;
            let mut bind: SocketAddr = ([127, 0, 0, 1], 8000).into();
            let mut redis = redis_env.filter(|r| !r.is_empty());
            while let Some(flag) = it.next() {
                let (name, inline) = match flag.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_owned())),
                    None => (flag.as_str(), None),
                };
                let mut value = || {
                    inline
                        .clone()
                        .or_else(|| it.next().cloned())
                        .ok_or_else(|| invalid(name, "a value is required"))
                };
                match name {
                    "--adapter" => {
                        adapter = match value()?.as_str() {
                            "axum" => Adapter::Axum,
                            "warp" => Adapter::Warp,
                            "async-std" => Adapter::AsyncStd,
                            other => {
                                return Err(invalid(
                                    "--adapter",
                                    format!("`{other}` is not one of axum, warp, async-std"),
                                ));
                            }
                        }
                    }
                    "--bind" => {
                        let v = value()?;
                        bind = v.parse().map_err(|_| {
                            invalid(
                                "--bind",
                                format!("`{v}` is not an address like 127.0.0.1:8000"),
                            )
                        })?;
                    }
                    "--redis" => redis = Some(value()?),
                    other => return Err(invalid("serve", format!("unknown flag `{other}`"))),
                }
            }
            Ok(Command::Serve {
                adapter,
                bind,
                redis,
            })
        }
        Some(other) => Err(invalid(
            "command",
            format!("`{other}` is not `serve` or `session`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_serve_flags() {
        let cmd = parse_args(
            &args(&["serve", "--adapter", "warp", "--bind=0.0.0.0:9000"]),
            None,
        );
        assert!(matches!(
            cmd,
            Ok(Command::Serve {
                adapter: Adapter::Warp,
                redis: None,
                ..
            })
        ));
        let err = parse_args(&args(&["serve", "--bind", "nope"]), None);
        assert!(err.is_err_and(|e| e.to_string().contains("--bind")));
        let err = parse_args(&args(&["serve", "--adapter", "rocket"]), None);
        assert!(err.is_err_and(|e| e.to_string().contains("--adapter")));
    }

    #[test]
    fn env_errors_name_the_variable() {
        let bind: SocketAddr = ([127, 0, 0, 1], 8000).into();
        let err = Config::from_env(bind, |k| {
            (k == "CHANX_ALLOWED_ORIGINS").then(|| "ftp://x".to_owned())
        });
        assert!(err.is_err_and(|e| e.to_string().contains("CHANX_ALLOWED_ORIGINS")));
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
