//! The load benchmark: the whole comparison table of issue 11 in one
//! command, `cargo bench -p chanx-e2e --bench load`.
//!
//! # Servers
//!
//! Each server runs as a child process of this bench (the bench binary run
//! again with `--serve <kind>`, on a multi-thread tokio runtime), so that
//! its memory and CPU time are its own:
//!
//! - `bare`: the quickstart's protocol written by hand on tokio-tungstenite,
//!   what a competent user writes without chanx: chanx's 4 KiB read and
//!   8 KiB write buffers, `TCP_NODELAY`, the session cookie checked with the
//!   quickstart's signer, the authentication frame, serde decode and encode
//!   of the typed messages, replies fed and flushed only when no further
//!   frame is ready (as chanx's writer does); chat rooms are an in-process
//!   map of unbounded senders, a room's message serialized once and the
//!   same bytes handed to every other member. Every figure's baseline.
//! - `chanx-axum`, `chanx-warp`, `chanx-async-std`: the quickstart on that
//!   adapter with the in-memory channel layer;
//! - `chanx-axum-redis`: the quickstart on axum with the Redis layer
//!   (`chanx-fred`, as `quickstart serve --redis` builds it) at
//!   `CHANX_REDIS_URL` (default `redis://127.0.0.1:6379`); skipped, with a
//!   note, when Redis does not answer. Redis's own CPU and memory are not
//!   counted.
//!
//! The quickstart's heartbeat is off (idle connections must not ping);
//! every other option is the default.
//!
//! # Figures
//!
//! The load generator is this process: its own tokio-tungstenite clients
//! over loopback, `TCP_NODELAY`, on a multi-thread tokio runtime.
//!
//! - Echo (`/ws/myapp/echo/`): C connections (`LOAD_ECHO_CONNECTIONS`,
//!   default 1, 16, 64) in closed loop (each sends one echo and waits for
//!   its reply), then the largest C pipelined (each keeps
//!   `LOAD_PIPELINE` echoes in flight, default 8, sending one more per
//!   reply). After `LOAD_WARMUP_MS` (default 250) of warm-up, for
//!   `LOAD_SECONDS` (default 2): round trips per second and the latency
//!   of each round trip started in that window (send to reply, `Instant`),
//!   p50 and p99.
//! - Fan-out (`/ws/myapp/chat/<room>/`): M members (`LOAD_FANOUT_MEMBERS`,
//!   default 100 and 1000) in a room of their own and one publisher; the
//!   publisher sends `LOAD_FANOUT_MESSAGES` (default 1000) messages with
//!   at most `LOAD_FANOUT_WINDOW` (default 8) of them not yet received by
//!   every member, each carrying its send time; every member records
//!   receive time minus send time. Deliveries per second (M x messages
//!   over the time until every member has every message), latency p50 and
//!   p99.
//! - CPU: for each echo and fan-out figure, the CPU time of this process
//!   (the load generator) and of the server child over the measured
//!   window, in cores (CPU seconds per second; `/proc/<pid>/stat`, 10 ms
//!   ticks). The machine's cores are shared by both.
//! - Idle memory: for each count of `LOAD_IDLE_COUNTS` (default 1000 and
//!   10000), a fresh server child; one authenticated echo connection, the
//!   server's `VmRSS` after 0.5 s; then that many more idle authenticated
//!   connections, `VmRSS` after 1 s; the growth divided by the count. The
//!   open-file limit is raised to its hard limit in both processes; a
//!   count that does not fit is lowered, and the table says so.
//!
//! Every figure is measured `LOAD_ROUNDS` times (default 3), the servers
//! one after the other within a round (a fresh child per server and round,
//! and per idle count); the table shows medians, and each chanx server's
//! ratio to the bare server's median: chanx / bare for every row, so
//! higher is better for rates, lower for latencies and memory.
//!
//! Other knobs: `LOAD_SERVERS` (comma list of the kinds above, default
//! all), `LOAD_PARTS` (comma list of `echo`, `fanout`, `idle`, default
//! all), `LOAD_SERVER_WRAPPER` (a command the server children run under,
//! for profiling: `valgrind --tool=callgrind
//! --callgrind-out-file=server.%p.out` counts each server's instructions
//! under the same load; the figures are then meaningless). Linux only
//! (`/proc`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chanx_e2e::{Adapter, Running, Ws, knob, median, start_on, start_with, ws_as};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The servers, in the order they run within a round.
const KINDS: [&str; 5] = [
    "bare",
    "chanx-axum",
    "chanx-warp",
    "chanx-async-std",
    "chanx-axum-redis",
];

const ECHO_PATH: &str = "/ws/myapp/echo/";
const ECHO_FRAME: &str = r#"{"action":"echo","payload":{"content":"Hello, Chanx!"}}"#;
/// The longest wait for any one frame or connection: a stuck server fails
/// the bench instead of hanging it.
const WAIT: Duration = Duration::from_secs(60);
/// Connections opened at once.
const CONNECT_BATCH: usize = 100;

/// The bench's settings, from its environment knobs.
struct Settings {
    rounds: usize,
    seconds: Duration,
    warmup: Duration,
    echo_connections: Vec<usize>,
    pipeline: usize,
    fanout_members: Vec<usize>,
    fanout_messages: usize,
    fanout_window: usize,
    idle_counts: Vec<usize>,
    servers: Vec<&'static str>,
    echo: bool,
    fanout: bool,
    idle: bool,
}

/// A comma list knob (`default` when unset).
fn list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

/// A comma list of numbers knob.
fn numbers(name: &str, default: &str) -> Vec<usize> {
    list(name, default)
        .iter()
        .map(|n| {
            n.parse()
                .unwrap_or_else(|_| panic!("{name}: {n} is not a number"))
        })
        .collect()
}

impl Settings {
    fn from_env() -> Settings {
        let servers = list("LOAD_SERVERS", &KINDS.join(","))
            .iter()
            .map(|name| {
                *KINDS
                    .iter()
                    .find(|kind| *kind == name)
                    .unwrap_or_else(|| panic!("LOAD_SERVERS: unknown server {name}"))
            })
            .collect();
        let parts = list("LOAD_PARTS", "echo,fanout,idle");
        for part in &parts {
            assert!(
                ["echo", "fanout", "idle"].contains(&part.as_str()),
                "LOAD_PARTS: unknown part {part}"
            );
        }
        Settings {
            rounds: knob("LOAD_ROUNDS", 3).max(1),
            seconds: Duration::from_secs(knob("LOAD_SECONDS", 2).max(1) as u64),
            warmup: Duration::from_millis(knob("LOAD_WARMUP_MS", 250) as u64),
            echo_connections: numbers("LOAD_ECHO_CONNECTIONS", "1,16,64"),
            pipeline: knob("LOAD_PIPELINE", 8).max(1),
            fanout_members: numbers("LOAD_FANOUT_MEMBERS", "100,1000"),
            fanout_messages: knob("LOAD_FANOUT_MESSAGES", 1000).max(1),
            fanout_window: knob("LOAD_FANOUT_WINDOW", 8).max(1),
            idle_counts: numbers("LOAD_IDLE_COUNTS", "1000,10000"),
            servers,
            echo: parts.iter().any(|p| p == "echo"),
            fanout: parts.iter().any(|p| p == "fanout"),
            idle: parts.iter().any(|p| p == "idle"),
        }
    }
}

// ---------------------------------------------------------------------
// The server child.

/// The child: serves `kind` on a free loopback port, prints
/// `listening <addr> <open-file limit>`, runs until the bench ends.
async fn serve(kind: &str) {
    let nofile = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    // The bench holds our stdin: end with it, however the bench ends.
    std::thread::spawn(|| {
        let mut buffer = [0_u8; 64];
        while matches!(std::io::stdin().read(&mut buffer), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    let quiet = |config: &mut quickstart::Config| config.options.heartbeat = None;
    let addr = match kind {
        "bare" => bare::serve().await,
        "chanx-axum" => keep(start_with(Adapter::Axum, quiet).await),
        "chanx-warp" => keep(start_with(Adapter::Warp, quiet).await),
        "chanx-async-std" => keep(start_with(Adapter::AsyncStd, quiet).await),
        "chanx-axum-redis" => {
            let url = std::env::var("CHANX_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
            let config = chanx_fred::FredConfig::new(url.clone());
            match chanx_fred::FredLayer::connect(config).await {
                Ok(layer) => keep(start_on(Adapter::Axum, layer, quiet).await),
                Err(error) => {
                    eprintln!("load: no Redis at {url}: {error}");
                    std::process::exit(1);
                }
            }
        }
        other => panic!("unknown server kind {other}"),
    };
    println!("listening {addr} {nofile}");
    std::future::pending::<()>().await;
}

/// Keeps a server running for the life of the process.
fn keep<L>(running: Running<L>) -> SocketAddr {
    let addr = running.addr;
    std::mem::forget(running);
    addr
}

/// A server child as the bench sees it; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// The child's open-file limit.
    nofile: u64,
}

impl Server {
    /// Starts a child serving `kind` and waits until it listens.
    async fn start(kind: &'static str) -> Result<Server, String> {
        tokio::task::spawn_blocking(move || Server::start_blocking(kind))
            .await
            .expect("starting a server child")
    }

    fn start_blocking(kind: &str) -> Result<Server, String> {
        let bench = std::env::current_exe().expect("this bench");
        let wrapper = std::env::var("LOAD_SERVER_WRAPPER").unwrap_or_default();
        let mut command = wrapper.split_whitespace();
        let mut child = match command.next() {
            Some(program) => {
                let mut wrapped = Command::new(program);
                wrapped.args(command).arg(bench);
                wrapped
            }
            None => Command::new(bench),
        };
        let mut child = child
            .args(["--serve", kind])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the {kind} server: {e}"))?;
        let stdout = child.stdout.take().expect("the child's stdout");
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("listening ") {
                let (addr, nofile) = rest.split_once(' ').expect("address and limit");
                return Ok(Server {
                    child,
                    addr: addr.parse().expect("an address"),
                    nofile: nofile.parse().expect("a limit"),
                });
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("the {kind} server did not start"))
    }

    /// The child's resident set, in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        let kb: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .expect("VmRSS");
        kb * 1024
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The child ends with its stdin; a profiler around it gets time to
        // write its results.
        drop(self.child.stdin.take());
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(30) {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time of a process so far, in seconds: user + system time of all
/// its threads, from `/proc/<pid>/stat` (in ticks of 1/100 s, Linux's
/// `USER_HZ`).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the command name (which may hold spaces), from the
    // third: utime and stime are the 14th and 15th.
    let (_, rest) = stat.rsplit_once(')').expect("a stat line");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / 100.0
}

/// CPU times of the generator and of a server at one instant.
struct Cpu {
    at: Instant,
    generator: f64,
    server: f64,
}

impl Cpu {
    fn now(server: &Server) -> Cpu {
        Cpu {
            at: Instant::now(),
            generator: cpu_seconds("self"),
            server: cpu_seconds(&server.child.id().to_string()),
        }
    }

    /// Cores used since `self`: `[generator, server]`.
    fn cores_since(&self, server: &Server) -> [f64; 2] {
        let end = Cpu::now(server);
        let wall = end.at.duration_since(self.at).as_secs_f64();
        [
            (end.generator - self.generator) / wall,
            (end.server - self.server) / wall,
        ]
    }
}

// ---------------------------------------------------------------------
// The load generator's clients.

/// `count` connections of `user` to `path`, opened [`CONNECT_BATCH`] at a
/// time.
async fn connect_many(addr: SocketAddr, path: &str, user: &str, count: usize) -> Vec<Ws> {
    let mut open = Vec::with_capacity(count);
    while open.len() < count {
        let batch = (count - open.len()).min(CONNECT_BATCH);
        let connecting: Vec<_> = (0..batch).map(|_| ws_as(addr, path, user)).collect();
        open.extend(futures_util::future::join_all(connecting).await);
    }
    open
}

/// What one run of an echo or fan-out figure measured.
struct Run {
    /// Round trips or deliveries per second.
    rate: f64,
    /// Latencies in nanoseconds.
    latencies: Vec<u64>,
    /// `[generator, server]` cores.
    cores: [f64; 2],
}

/// One echo client: waits for `start`, keeps `depth` echoes in flight
/// (one more sent per reply) until `until`, then collects the last
/// replies. Returns the latency of every round trip started in
/// `[from, until)`.
async fn echo_client(
    mut ws: Ws,
    depth: usize,
    start: Instant,
    from: Instant,
    until: Instant,
) -> Vec<u64> {
    let frame = || Message::Text(Utf8Bytes::from_static(ECHO_FRAME));
    tokio::time::sleep_until(start.into()).await;
    let mut in_flight: VecDeque<Instant> = VecDeque::with_capacity(depth);
    let mut latencies = Vec::new();
    for _ in 0..depth {
        in_flight.push_back(Instant::now());
        ws.feed(frame()).await.expect("send");
    }
    ws.flush().await.expect("send");
    while !in_flight.is_empty() {
        // This reply and every one already there.
        let mut answered = 0;
        let mut next = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("an echo reply in time");
        loop {
            match next {
                Some(Ok(Message::Text(_))) => {
                    let received = Instant::now();
                    let sent = in_flight.pop_front().expect("a reply to a sent echo");
                    if sent >= from && sent < until {
                        latencies.push(received.duration_since(sent).as_nanos() as u64);
                    }
                    answered += 1;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("echo client stopped: {other:?}"),
            }
            match ws.next().now_or_never() {
                Some(ready) => next = ready,
                None => break,
            }
        }
        if Instant::now() < until {
            for _ in 0..answered {
                in_flight.push_back(Instant::now());
                ws.feed(frame()).await.expect("send");
            }
            ws.flush().await.expect("send");
        }
    }
    latencies
}

/// The echo figure: `connections` clients with `depth` echoes in flight
/// each.
async fn echo(server: &Server, settings: &Settings, connections: usize, depth: usize) -> Run {
    let clients = connect_many(server.addr, ECHO_PATH, "alice", connections).await;
    // Every client starts at once, a moment after all are spawned.
    let start = Instant::now() + Duration::from_millis(100);
    let from = start + settings.warmup;
    let until = from + settings.seconds;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|ws| tokio::spawn(echo_client(ws, depth, start, from, until)))
        .collect();
    tokio::time::sleep_until(from.into()).await;
    let cpu = Cpu::now(server);
    tokio::time::sleep_until(until.into()).await;
    let cores = cpu.cores_since(server);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("an echo client"));
    }
    Run {
        rate: latencies.len() as f64 / settings.seconds.as_secs_f64(),
        latencies,
        cores,
    }
}

/// How far the fan-out's messages got.
struct Tally {
    /// Members that received each message.
    received: Vec<AtomicU32>,
    /// Messages every member received.
    complete: AtomicUsize,
    /// Wakes the publisher when a message completes.
    wake: tokio::sync::Notify,
}

/// `"<user>: <seq> <nanos since the epoch>"` in a `chat_message` frame.
fn stamp(frame: &str) -> Option<(usize, u64)> {
    if !frame.contains(r#""action":"chat_message""#) {
        return None;
    }
    let (_, content) = frame.split_once(r#""content":""#)?;
    let (_, text) = content.split_once(": ")?;
    let (seq, nanos) = text.split('"').next()?.split_once(' ')?;
    Some((seq.parse().ok()?, nanos.parse().ok()?))
}

/// One fan-out member: counts `messages` chat messages and returns their
/// delivery latencies and when the last arrived.
async fn member(
    mut ws: Ws,
    tally: Arc<Tally>,
    epoch: Instant,
    messages: usize,
    members: u32,
) -> (Vec<u64>, Instant) {
    let mut latencies = Vec::with_capacity(messages);
    while latencies.len() < messages {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let Some((seq, sent)) = stamp(&text) else {
                    continue;
                };
                let now = epoch.elapsed().as_nanos() as u64;
                latencies.push(now.saturating_sub(sent));
                if tally.received[seq].fetch_add(1, Ordering::Relaxed) + 1 == members {
                    tally.complete.fetch_add(1, Ordering::Release);
                    tally.wake.notify_one();
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!(
                "fan-out member stopped after {} of {messages} messages: {other:?}",
                latencies.len()
            ),
        }
    }
    (latencies, Instant::now())
}

/// The fan-out figure: `members` members of a new room and a publisher.
async fn fanout(server: &Server, settings: &Settings, members: usize) -> Run {
    static ROOMS: AtomicUsize = AtomicUsize::new(0);
    // A room of its own (Redis is shared with whoever else uses it).
    let room = format!(
        "load_{}_{}",
        std::process::id(),
        ROOMS.fetch_add(1, Ordering::Relaxed)
    );
    let path = format!("/ws/myapp/chat/{room}/");
    let receivers = connect_many(server.addr, &path, "bob", members).await;
    let mut publisher = connect_many(server.addr, &path, "alice", 1).await.remove(0);
    let messages = settings.fanout_messages;
    let tally = Arc::new(Tally {
        received: (0..messages).map(|_| AtomicU32::new(0)).collect(),
        complete: AtomicUsize::new(0),
        wake: tokio::sync::Notify::new(),
    });
    let epoch = Instant::now();
    let tasks: Vec<_> = receivers
        .into_iter()
        .map(|ws| {
            tokio::spawn(member(
                ws,
                Arc::clone(&tally),
                epoch,
                messages,
                members as u32,
            ))
        })
        .collect();
    let started = Instant::now();
    let cpu = Cpu::now(server);
    for seq in 0..messages {
        loop {
            let woken = tally.wake.notified();
            if seq < tally.complete.load(Ordering::Acquire) + settings.fanout_window {
                break;
            }
            woken.await;
        }
        let sent = epoch.elapsed().as_nanos();
        let frame = format!(r#"{{"action":"echo","payload":{{"content":"{seq} {sent}"}}}}"#);
        publisher.send(Message::text(frame)).await.expect("publish");
    }
    let mut latencies = Vec::with_capacity(members * messages);
    let mut finished = started;
    for task in tasks {
        let (member_latencies, last) = task.await.expect("a fan-out member");
        latencies.extend(member_latencies);
        finished = finished.max(last);
    }
    let cores = cpu.cores_since(server);
    Run {
        rate: (members * messages) as f64 / finished.duration_since(started).as_secs_f64(),
        latencies,
        cores,
    }
}

/// Bytes per idle connection of a fresh `kind` server at `count`
/// connections, and the count used (lowered to fit the open-file limits).
async fn idle(kind: &'static str, count: usize, own_nofile: u64) -> (f64, usize) {
    let server = Server::start(kind).await.expect("the server");
    let fits = own_nofile.min(server.nofile).saturating_sub(100) as usize;
    let count = count.min(fits);
    let first = connect_many(server.addr, ECHO_PATH, "alice", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss();
    let open = connect_many(server.addr, ECHO_PATH, "alice", count).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = server.rss();
    drop(server);
    drop((first, open));
    (after.saturating_sub(before) as f64 / count as f64, count)
}

// ---------------------------------------------------------------------
// The table.

/// Which way a row is better.
#[derive(Clone, Copy)]
enum Unit {
    /// Per second, higher is better.
    Rate,
    /// Microseconds, lower is better.
    Micros,
    /// Bytes, lower is better.
    Bytes,
    /// Generator and server cores; no ratio.
    Cores,
}

struct Row {
    label: String,
    unit: Unit,
}

/// Rows in order and the values measured for each (row, server), one per
/// round; a value is `[v, _]`, or `[generator, server]` for CPU rows.
#[derive(Default)]
struct Table {
    rows: Vec<Row>,
    values: HashMap<(usize, &'static str), Vec<[f64; 2]>>,
}

impl Table {
    fn row(&mut self, label: String, unit: Unit) -> usize {
        self.rows.push(Row { label, unit });
        self.rows.len() - 1
    }

    /// Four rows for a throughput figure: rate, p50, p99, CPU.
    fn figure(&mut self, name: &str, rate: &str) -> usize {
        let first = self.row(format!("{name}: {rate}"), Unit::Rate);
        self.row(format!("{name}: latency p50"), Unit::Micros);
        self.row(format!("{name}: latency p99"), Unit::Micros);
        self.row(
            format!("{name}: CPU cores, generator + server"),
            Unit::Cores,
        );
        first
    }

    fn record(&mut self, row: usize, server: &'static str, value: [f64; 2]) {
        self.values.entry((row, server)).or_default().push(value);
    }

    /// Records a run in the four rows of its figure and prints it.
    fn record_run(&mut self, first: usize, server: &'static str, round: usize, mut run: Run) {
        let p50 = percentile(&mut run.latencies, 0.50);
        let p99 = percentile(&mut run.latencies, 0.99);
        self.record(first, server, [run.rate, 0.0]);
        self.record(first + 1, server, [p50, 0.0]);
        self.record(first + 2, server, [p99, 0.0]);
        self.record(first + 3, server, run.cores);
        println!(
            "  round {round} {server:<16} {:<44} {:>9}/s  p50 {:>9}  p99 {:>9}  CPU {}",
            self.rows[first].label,
            si(run.rate),
            micros(p50),
            micros(p99),
            cores(run.cores)
        );
    }

    fn median(&self, row: usize, server: &'static str) -> Option<[f64; 2]> {
        let values = self.values.get(&(row, server))?;
        let component = |i: usize| median(values.iter().map(|v| v[i]).collect());
        Some([component(0), component(1)])
    }

    fn markdown(&self, servers: &[&'static str]) -> String {
        let mut out = String::from("| figure | better |");
        for server in servers {
            out.push_str(&format!(" {server} |"));
        }
        out.push_str("\n|---|---|");
        out.push_str(&"---:|".repeat(servers.len()));
        for (index, row) in self.rows.iter().enumerate() {
            let better = match row.unit {
                Unit::Rate => "higher",
                Unit::Micros | Unit::Bytes => "lower",
                Unit::Cores => "",
            };
            out.push_str(&format!("\n| {} | {better} |", row.label));
            let bare = self.median(index, "bare");
            for server in servers {
                let Some(value) = self.median(index, server) else {
                    out.push_str(" - |");
                    continue;
                };
                let shown = match row.unit {
                    Unit::Rate => format!("{}/s", si(value[0])),
                    Unit::Micros => micros(value[0]),
                    Unit::Bytes => format!("{} B", thousands(value[0])),
                    Unit::Cores => cores(value),
                };
                let ratio = match (row.unit, bare) {
                    (Unit::Cores, _) | (_, None) => String::new(),
                    _ if *server == "bare" => String::new(),
                    (_, Some(bare)) => format!(" ({:.2}x)", value[0] / bare[0]),
                };
                out.push_str(&format!(" {shown}{ratio} |"));
            }
        }
        out.push('\n');
        out
    }
}

/// The `p` quantile of `latencies` (nanoseconds), in microseconds.
fn percentile(latencies: &mut [u64], p: f64) -> f64 {
    if latencies.is_empty() {
        return f64::NAN;
    }
    let index = ((latencies.len() - 1) as f64 * p).round() as usize;
    let (_, value, _) = latencies.select_nth_unstable(index);
    *value as f64 / 1000.0
}

/// `1.23 M`, `456.7 k`.
fn si(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

fn micros(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.1} ms", value / 1000.0)
    } else {
        format!("{value:.0} µs")
    }
}

fn cores([generator, server]: [f64; 2]) -> String {
    format!("{generator:.2} + {server:.2}")
}

fn thousands(value: f64) -> String {
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

// ---------------------------------------------------------------------

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if let Some(at) = args.iter().position(|a| a == "--serve") {
        let kind = args.get(at + 1).expect("a server kind").clone();
        return serve(&kind).await;
    }
    let began = Instant::now();
    let mut settings = Settings::from_env();
    let own_nofile = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    if settings.servers.contains(&"chanx-axum-redis")
        && let Err(error) = Server::start("chanx-axum-redis").await
    {
        println!("note: {error}; skipping chanx-axum-redis");
        settings.servers.retain(|kind| *kind != "chanx-axum-redis");
    }
    let servers = settings.servers.clone();
    println!(
        "load: servers {}; {} rounds; echo {:?} connections closed loop and x{} pipelined, {} s each after {} ms warm-up; fan-out {:?} members x {} messages (window {}); idle {:?}",
        servers.join(", "),
        settings.rounds,
        settings.echo_connections,
        settings.pipeline,
        settings.seconds.as_secs(),
        settings.warmup.as_millis(),
        settings.fanout_members,
        settings.fanout_messages,
        settings.fanout_window,
        settings.idle_counts,
    );

    let mut table = Table::default();
    let mut echo_rows = Vec::new();
    if settings.echo {
        for &connections in &settings.echo_connections {
            let plural = if connections == 1 { "" } else { "s" };
            let name = format!("echo, {connections} conn{plural}, closed loop");
            echo_rows.push((table.figure(&name, "round trips/s"), connections, 1));
        }
        if let Some(&connections) = settings.echo_connections.iter().max() {
            let depth = settings.pipeline;
            let name = format!("echo, {connections} conns x {depth} pipelined");
            echo_rows.push((table.figure(&name, "round trips/s"), connections, depth));
        }
    }
    let mut fanout_rows = Vec::new();
    if settings.fanout {
        for &members in &settings.fanout_members {
            let name = format!("fan-out, {members} members");
            fanout_rows.push((table.figure(&name, "deliveries/s"), members));
        }
    }
    if !echo_rows.is_empty() || !fanout_rows.is_empty() {
        for round in 1..=settings.rounds {
            for &kind in &servers {
                let server = Server::start(kind).await.expect("the server");
                for &(row, connections, depth) in &echo_rows {
                    let run = echo(&server, &settings, connections, depth).await;
                    table.record_run(row, kind, round, run);
                    // Let the server close the last connections.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                for &(row, members) in &fanout_rows {
                    let run = fanout(&server, &settings, members).await;
                    table.record_run(row, kind, round, run);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    }
    if settings.idle {
        for &count in &settings.idle_counts {
            let row = table.row(String::new(), Unit::Bytes);
            let mut used = count;
            for round in 1..=settings.rounds {
                for &kind in &servers {
                    let (bytes, count) = idle(kind, count, own_nofile).await;
                    used = used.min(count);
                    table.record(row, kind, [bytes, 0.0]);
                    println!(
                        "  round {round} {kind:<16} idle memory at {count} connections: {} B per connection",
                        thousands(bytes)
                    );
                }
            }
            table.rows[row].label = if used == count {
                format!("memory per idle connection, {count} connections")
            } else {
                format!(
                    "memory per idle connection, {used} connections ({count} asked; open-file limit)"
                )
            };
        }
    }

    println!(
        "\nMedians of {} rounds; in parentheses chanx / bare (higher is better for rates, lower for latencies and memory); CPU: cores used by the load generator + by the server.\n",
        settings.rounds
    );
    print!("{}", table.markdown(&servers));
    println!("\nload: done in {:.0} s", began.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------

/// The baseline: the quickstart's echo and chat endpoints written by hand
/// on tokio-tungstenite.
mod bare {
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use futures_util::{FutureExt, SinkExt, StreamExt};
    use serde::{Deserialize, Serialize};
    use tokio::net::TcpStream;
    use tokio::sync::mpsc;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

    #[derive(Deserialize, Serialize)]
    struct Payload {
        content: String,
    }

    #[derive(Deserialize)]
    #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
    enum Incoming {
        Echo(Payload),
        Ping,
    }

    #[derive(Serialize)]
    #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
    enum Outgoing {
        Echo(Payload),
        Pong(()),
    }

    /// A chat line as the other members get it.
    #[derive(Serialize)]
    struct ChatMessage<'a> {
        action: &'static str,
        payload: &'a Payload,
        is_mine: bool,
        is_current: bool,
    }

    const AUTHENTICATED: &str = r#"{"action":"authentication","payload":{"status_code":200,"status_text":"OK","data":{"detail":"OK"}}}"#;
    const REFUSED: &str = r#"{"action":"authentication","payload":{"status_code":403,"status_text":"Forbidden","data":{"detail":"Authentication credentials were not provided."}}}"#;

    struct Member {
        id: u64,
        user: Arc<str>,
        outbox: mpsc::UnboundedSender<Utf8Bytes>,
    }

    type Rooms = Arc<Mutex<HashMap<String, Vec<Member>>>>;

    /// Serves on a free loopback port; returns it.
    pub(super) async fn serve() -> SocketAddr {
        let listener = chanx_warp::listener(([127, 0, 0, 1], 0).into()).expect("listen");
        let addr = listener.local_addr().expect("local addr");
        let rooms = Rooms::default();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(connection(stream, Arc::clone(&rooms)));
            }
        });
        addr
    }

    /// The user of a valid `sessionid` cookie.
    fn user_of(request: &Request) -> Option<String> {
        let signer = quickstart::session::SessionSigner::new(chanx_e2e::SECRET);
        let now = quickstart::store::now_unix();
        request
            .headers()
            .get_all("cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .find_map(|cookie| cookie.trim().strip_prefix("sessionid="))
            .and_then(|session| signer.verify(session, now).ok())
    }

    // The handshake callback's error type is tungstenite's, large or not.
    #[allow(clippy::result_large_err)]
    async fn connection(stream: TcpStream, rooms: Rooms) {
        let _ = stream.set_nodelay(true);
        let mut path = String::new();
        let mut user = None;
        let callback = |request: &Request, response: Response| {
            path = request.uri().path().to_owned();
            user = user_of(request);
            Ok(response)
        };
        let config = chanx::ws::websocket_config(1 << 20);
        let Ok(mut ws) =
            tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
        else {
            return;
        };
        let Some(user) = user else {
            let _ = ws.send(Message::text(REFUSED)).await;
            let _ = ws.close(None).await;
            return;
        };
        match path
            .strip_prefix("/ws/myapp/chat/")
            .and_then(|room| room.strip_suffix('/'))
        {
            Some(room) => chat(ws, rooms, room.to_owned(), user.into()).await,
            None => echo(ws).await,
        }
    }

    fn answer(message: Incoming) -> Message {
        let reply = match message {
            Incoming::Echo(payload) => Outgoing::Echo(Payload {
                content: format!("Echo: {}", payload.content),
            }),
            Incoming::Ping => Outgoing::Pong(()),
        };
        Message::text(serde_json::to_string(&reply).expect("a reply"))
    }

    const INVALID: &str = r#"{"action":"error","payload":[{"msg":"invalid message"}]}"#;

    /// Answers each echo; replies are flushed once no frame is ready.
    async fn echo(mut ws: WebSocketStream<TcpStream>) {
        if ws.send(Message::text(AUTHENTICATED)).await.is_err() {
            return;
        }
        let mut next = ws.next().await;
        while let Some(Ok(message)) = next {
            if let Message::Text(text) = message {
                let reply = match serde_json::from_str::<Incoming>(&text) {
                    Ok(message) => answer(message),
                    Err(_) => Message::text(INVALID),
                };
                if ws.feed(reply).await.is_err() {
                    return;
                }
            }
            next = match ws.next().now_or_never() {
                Some(ready) => ready,
                None => {
                    if ws.flush().await.is_err() {
                        return;
                    }
                    ws.next().await
                }
            };
        }
    }

    enum Event {
        Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
        Out(Utf8Bytes),
    }

    async fn next_event(
        ws: &mut WebSocketStream<TcpStream>,
        outbox: &mut mpsc::UnboundedReceiver<Utf8Bytes>,
    ) -> Event {
        tokio::select! {
            frame = ws.next() => Event::Frame(frame),
            Some(out) = outbox.recv() => Event::Out(out),
        }
    }

    /// A member of `room`: its echoes go to every other member as chat
    /// messages, theirs come through its outbox.
    async fn chat(mut ws: WebSocketStream<TcpStream>, rooms: Rooms, room: String, user: Arc<str>) {
        static IDS: AtomicU64 = AtomicU64::new(0);
        let id = IDS.fetch_add(1, Ordering::Relaxed);
        let (outbox, mut inbox) = mpsc::unbounded_channel();
        rooms
            .lock()
            .expect("rooms")
            .entry(room.clone())
            .or_default()
            .push(Member {
                id,
                user: Arc::clone(&user),
                outbox,
            });
        if ws.send(Message::text(AUTHENTICATED)).await.is_ok() {
            loop {
                let event = match next_event(&mut ws, &mut inbox).now_or_never() {
                    Some(event) => event,
                    None => {
                        if ws.flush().await.is_err() {
                            break;
                        }
                        next_event(&mut ws, &mut inbox).await
                    }
                };
                let sent = match event {
                    Event::Out(text) => ws.feed(Message::Text(text)).await,
                    Event::Frame(Some(Ok(Message::Text(text)))) => {
                        match serde_json::from_str::<Incoming>(&text) {
                            Ok(Incoming::Echo(payload)) => {
                                let content = format!("{user}: {}", payload.content);
                                broadcast(&rooms, &room, id, &user, Payload { content });
                                Ok(())
                            }
                            Ok(other) => ws.feed(answer(other)).await,
                            Err(_) => ws.feed(Message::text(INVALID)).await,
                        }
                    }
                    Event::Frame(Some(Ok(_))) => Ok(()),
                    Event::Frame(_) => break,
                };
                if sent.is_err() {
                    break;
                }
            }
        }
        let mut rooms = rooms.lock().expect("rooms");
        if let Some(members) = rooms.get_mut(&room) {
            members.retain(|member| member.id != id);
            if members.is_empty() {
                rooms.remove(&room);
            }
        }
    }

    /// Sends a chat message to every member of `room` but `from`, the
    /// frame serialized once (once more for the sender's other
    /// connections, where `is_mine` is true).
    fn broadcast(rooms: &Rooms, room: &str, from: u64, user: &str, payload: Payload) {
        let frame = |is_mine| {
            let message = ChatMessage {
                action: "chat_message",
                payload: &payload,
                is_mine,
                is_current: false,
            };
            Utf8Bytes::from(serde_json::to_string(&message).expect("a chat message"))
        };
        let theirs = frame(false);
        let mut mine = None;
        let rooms = rooms.lock().expect("rooms");
        for member in rooms.get(room).into_iter().flatten() {
            if member.id == from {
                continue;
            }
            let text = if &*member.user == user {
                mine.get_or_insert_with(|| frame(true)).clone()
            } else {
                theirs.clone()
            };
            let _ = member.outbox.send(text);
        }
    }
}
