//! Helpers shared by the Redis tests.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chanx::layer::{ChannelLayer, Inbox};
use chanx_fred::{FredConfig, FredLayer};
use chanx_proto::LayerMessage;

/// Longest wait for anything that should happen.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The Redis the tests use: `CHANX_REDIS_URL`, else the local default.
pub fn redis_url() -> String {
    std::env::var("CHANX_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A key prefix no other test uses.
pub fn unique_prefix(test: &str) -> String {
    format!("chanx-test-{test}-{:08x}", fastrand_u32())
}

fn fastrand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish() as u32
}

/// A layer on the test Redis; fails the test with a clear message if
/// Redis is unreachable.
pub async fn layer(url: &str, prefix: &str) -> FredLayer {
    let config = FredConfig::new(url)
        .prefix(prefix)
        .connect_timeout(Duration::from_secs(3))
        .command_timeout(Duration::from_secs(5))
        .max_reconnect_delay(Duration::from_millis(500));
    match FredLayer::connect(config).await {
        Ok(layer) => layer,
        Err(error) => panic!(
            "these tests need a Redis server at {url} (set CHANX_REDIS_URL to use another): {error}"
        ),
    }
}

/// A channel event carrying `n`.
pub fn event(n: u64) -> Arc<LayerMessage> {
    let event = serde_json::json!({"handler": "n", "payload": n});
    Arc::new(LayerMessage::event(&event).expect("an event"))
}

/// The number an [`event`] carries.
pub fn number(message: &LayerMessage) -> u64 {
    let json: serde_json::Value =
        serde_json::from_str(&message.to_json()).expect("layer messages are JSON");
    json["event_data"]["payload"]
        .as_u64()
        .unwrap_or_else(|| panic!("not a test event: {json}"))
}

/// The next message, failing the test after [`PATIENCE`].
pub async fn next_message(inbox: &Inbox) -> Arc<LayerMessage> {
    match tokio::time::timeout(PATIENCE, inbox.recv()).await {
        Ok(Some(message)) => message,
        Ok(None) => panic!("the inbox closed"),
        Err(_) => panic!("no message within {PATIENCE:?}"),
    }
}

/// The next message's number, failing the test after [`PATIENCE`].
pub async fn next(inbox: &Inbox) -> u64 {
    number(&*next_message(inbox).await)
}

/// The group of the next message, which must be a gap notice.
pub async fn next_gap(inbox: &Inbox) -> String {
    match &*next_message(inbox).await {
        LayerMessage::Gap(notice) => notice.group().to_owned(),
        other => panic!("expected a gap notice, got {other:?}"),
    }
}

/// Asserts nothing arrives for a while.
pub async fn assert_silent(inbox: &Inbox, how_long: Duration) {
    if let Ok(message) = tokio::time::timeout(how_long, inbox.recv()).await {
        panic!("unexpected message: {message:?}");
    }
}

/// Awaits `future`, failing the test after [`PATIENCE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {PATIENCE:?}"))
}

/// Polls `condition` until it holds, failing the test after [`PATIENCE`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    within(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// A plain fred client on `url`, to look at Redis from outside.
pub async fn plain_client(url: &str) -> fred::prelude::Client {
    use fred::prelude::ClientLike;
    let config = fred::prelude::Config::from_url(url).expect("a valid URL");
    let client = fred::prelude::Builder::from_config(config)
        .build()
        .expect("a client");
    within("plain client connect", client.init())
        .await
        .unwrap_or_else(|error| panic!("cannot connect to Redis at {url}: {error}"));
    client
}

/// The Redis channels with at least one subscriber whose names start with `prefix`.
pub async fn channels(client: &fred::prelude::Client, prefix: &str) -> Vec<String> {
    use fred::prelude::PubsubInterface;
    let mut channels: Vec<String> = within(
        "PUBSUB CHANNELS",
        client.pubsub_channels(format!("{prefix}*")),
    )
    .await
    .expect("PUBSUB CHANNELS");
    channels.sort();
    channels
}

/// A `redis-server` child process of a test's own, killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `redis-server` (from PATH) on `port` with `extra` arguments,
    /// persisting nothing, and waits until it accepts connections.
    pub async fn start(port: u16, extra: &[&str]) -> RedisServer {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("this test runs `redis-server` from PATH: {error}"));
        let server = RedisServer {
            port,
            child: Some(child),
        };
        within("redis-server accepting", async {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (no clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `redis-cli -u url args...` and returns what it printed (stdout,
/// then stderr).
pub fn redis_cli(url: &str, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-u", url])
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("this test runs `redis-cli` from PATH: {error}"));
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Sends numbered group messages from `from` until one reaches `inbox`,
/// noting whether a gap notice for `group` came first; returns that.
pub async fn resumes_after_gap(from: &FredLayer, group: &str, inbox: &Inbox) -> bool {
    let mut gap_seen = false;
    within("delivery resumes", async {
        for n in 1000.. {
            if let Err(error) = from.group_send(group, event(n)).await {
                eprintln!("send {n} failed: {error}");
            }
            let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
            while let Ok(Some(message)) = tokio::time::timeout_at(deadline, inbox.recv()).await {
                match &*message {
                    LayerMessage::Gap(notice) => gap_seen |= notice.group() == group,
                    _ => return,
                }
            }
        }
    })
    .await;
    gap_seen
}
