//! What the Node-driven tests share: a quickstart process, the npm
//! packages of `tests/node/`, Chromium, and running a program with a
//! time bound.

#![allow(dead_code)] // each test binary uses part of it
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The key the test servers sign session cookies with.
pub(crate) const SECRET_KEY: &str = "quickstart-test-key";

/// A running `quickstart serve`, killed on drop.
pub(crate) struct Served {
    pub(crate) child: Child,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// What it printed (stdout and stderr), for failure reports.
    output: Arc<Mutex<Vec<String>>>,
}

impl Served {
    /// Starts `quickstart serve --bind 127.0.0.1:0` on the in-memory layer
    /// and waits for its banner.
    pub(crate) fn start() -> Served {
        Served::start_with(&[], "warn")
    }

    /// [`start`](Self::start) with more flags (`--redis` for the Redis
    /// layer) and `RUST_LOG` set to `log_filter`.
    pub(crate) fn start_with(args: &[&str], log_filter: &str) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_quickstart"))
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(args)
            .env("CHANX_SECRET_KEY", SECRET_KEY)
            // Redis only where a test asks for it with `--redis`.
            .env_remove("CHANX_REDIS_URL")
            .env("RUST_LOG", log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the quickstart binary starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        keep_lines(child.stderr.take().expect("piped stderr"), &output);
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the program prints where it listens")
                .expect("stdout is text");
            output
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line.clone());
            // `quickstart serving on http://ADDR ...`, or on async-std
            // `quickstart serving WebSockets on ws://ADDR ...`.
            if let Some((_, rest)) = line
                .split_once("://")
                .filter(|_| line.starts_with("quickstart serving"))
            {
                let addr = rest.split_whitespace().next().expect("an address");
                break addr
                    .trim_end_matches('/')
                    .parse()
                    .expect("a socket address");
            }
        };
        // Keep reading so the program never blocks on a full pipe.
        let kept = Arc::clone(&output);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        Served {
            child,
            addr,
            output,
        }
    }

    /// The first line printed so far that contains `text`.
    pub(crate) fn line_with(&self, text: &str) -> Option<String> {
        let output = self.output.lock().unwrap_or_else(|e| e.into_inner());
        output.iter().find(|line| line.contains(text)).cloned()
    }

    /// Everything it printed so far.
    pub(crate) fn printed(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends each line of `pipe` to `output` on a thread of its own.
fn keep_lines(pipe: impl Read + Send + 'static, output: &Arc<Mutex<Vec<String>>>) {
    let output = Arc::clone(output);
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            output.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
}

/// How a program run by [`run_bounded`] ended.
pub(crate) struct Finished {
    /// Its exit status; `None` when it ran over its bound and was killed.
    pub(crate) status: Option<std::process::ExitStatus>,
    /// What it printed, stdout and stderr interleaved.
    pub(crate) printed: String,
}

/// Runs `command` (stdin closed) to its end or for at most `bound`.
pub(crate) fn run_bounded(command: &mut Command, bound: Duration) -> Finished {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?} (is it installed?): {e}"));
    let output = Arc::new(Mutex::new(Vec::new()));
    keep_lines(child.stdout.take().expect("piped stdout"), &output);
    keep_lines(child.stderr.take().expect("piped stderr"), &output);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Let the reader threads take the last lines.
    std::thread::sleep(Duration::from_millis(100));
    let printed = output.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
    Finished { status, printed }
}

/// Runs `command` for at most `bound` and panics, with what it and the
/// server printed, unless it succeeds; what it printed.
pub(crate) fn run_to_success(
    command: &mut Command,
    bound: Duration,
    served: Option<&Served>,
) -> String {
    let what = format!("{command:?}");
    let Finished { status, printed } = run_bounded(command, bound);
    let server = served.map(Served::printed).unwrap_or_default();
    match status {
        Some(status) if status.success() => printed,
        Some(status) => {
            panic!("{what} failed ({status})\n--- output ---\n{printed}\n--- server ---\n{server}")
        }
        None => panic!(
            "{what} ran over {bound:?} and was killed\n--- output ---\n{printed}\n--- server ---\n{server}"
        ),
    }
}

/// The packages of `tests/node/package-lock.json`, installed with `npm ci`
/// under `CARGO_TARGET_TMPDIR/node` unless that same lock file was
/// installed there before; the path of their `node_modules`.
pub(crate) fn node_modules() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("node");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let lock =
        std::fs::read(source.join("package-lock.json")).expect("tests/node/package-lock.json");
    // Written only after `npm ci` succeeded: a failed install is retried.
    let installed = dir.join("package-lock.json.installed");
    let modules = dir.join("node_modules");
    if std::fs::read(&installed).ok().as_ref() == Some(&lock) && modules.is_dir() {
        return modules;
    }
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let _ = std::fs::remove_file(&installed);
    std::fs::copy(source.join("package.json"), dir.join("package.json")).expect("package.json");
    std::fs::write(dir.join("package-lock.json"), &lock).expect("package-lock.json");
    run_to_success(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir),
        Duration::from_secs(600),
        None,
    );
    std::fs::write(&installed, &lock).expect("the install marker");
    modules
}

/// The browser: `CHROMIUM`, else `/usr/bin/chromium`.
pub(crate) fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "Chromium not found at {}: install it (Debian/Ubuntu: `apt-get install -y chromium`) \
         or set CHROMIUM to a Chromium or Chrome binary",
        path.display()
    );
    path
}
