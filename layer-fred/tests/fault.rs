//! Faults under running layers, each ending with messages flowing again
//! and the members told they may have missed some: Redis dies and comes
//! back (on a `redis-server` of the test's own, from PATH), the
//! subscribing connection stops receiving without closing, and the local
//! pub/sub buffer overflows.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chanx::layer::ChannelLayer;
use chanx_fred::{FredConfig, FredLayer};
use chanx_proto::LayerMessage;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_restores_subscriptions_and_reports_a_gap() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("chanx_fred=debug")
        .try_init();
    let port = free_port();
    let mut redis = RedisServer::start(port, &[]).await;
    let url = redis.url();
    let prefix = unique_prefix("fault");
    let (a, b) = (layer(&url, &prefix).await, layer(&url, &prefix).await);
    let (ch_a, inbox_a) = a.new_channel().await.expect("channel");
    let (ch_b, inbox_b) = b.new_channel().await.expect("channel");
    within("join", a.group_add("room", &ch_a))
        .await
        .expect("join");
    within(
        "join",
        b.join_groups(&ch_b, &["room".to_owned(), "other".to_owned()]),
    )
    .await
    .expect("join");
    within("send", a.group_send("room", event(1)))
        .await
        .expect("send");
    assert_eq!(next(&inbox_a).await, 1);
    assert_eq!(next(&inbox_b).await, 1);
    assert_eq!((a.gaps_detected(), b.gaps_detected()), (0, 0));

    redis.kill();
    // Both layers notice the connection is gone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _redis = RedisServer::start(port, &[]).await;

    // Every subscription is restored (confirmed by the new server) and
    // each local group is told it may have lost messages: `room` on both
    // layers, `other` on b, plus each layer's own channel.
    eventually("a resubscribed", || a.subscription_count() == 2).await;
    eventually("b resubscribed", || b.subscription_count() == 3).await;
    eventually("gaps reported", || {
        a.gaps_detected() >= 2 && b.gaps_detected() >= 3
    })
    .await;
    // The members got the notice (after the subscriptions were back).
    assert_eq!(next_gap(&inbox_a).await, "room");
    let mut gaps_b = vec![next_gap(&inbox_b).await, next_gap(&inbox_b).await];
    gaps_b.sort();
    assert_eq!(gaps_b, ["other", "room"]);
    let redis_view = plain_client(&url).await;
    let mut expected = vec![
        format!("{prefix}:g:other"),
        format!("{prefix}:g:room"),
        format!("{prefix}:proc:{}", a.layer_id()),
        format!("{prefix}:proc:{}", b.layer_id()),
    ];
    expected.sort();
    assert_eq!(channels(&redis_view, &prefix).await, expected);

    // Messages flow again through the same layers, both ways.
    within("send", a.group_send("room", event(2)))
        .await
        .expect("send");
    assert_eq!(next(&inbox_a).await, 2);
    assert_eq!(next(&inbox_b).await, 2);
    within("send", b.group_send("room", event(3)))
        .await
        .expect("send");
    assert_eq!(next(&inbox_a).await, 3);
    assert_eq!(next(&inbox_b).await, 3);
    within("send", b.send(&ch_a, event(4))).await.expect("send");
    assert_eq!(next(&inbox_a).await, 4);
    within("send", a.send(&ch_b, event(5))).await.expect("send");
    assert_eq!(next(&inbox_b).await, 5);

    // Joins after the restart work as before.
    let (ch_b2, inbox_b2) = b.new_channel().await.expect("channel");
    within("join", b.group_add("late", &ch_b2))
        .await
        .expect("join");
    within("send", a.group_send("late", event(6)))
        .await
        .expect("send");
    assert_eq!(next(&inbox_b2).await, 6);
}

/// A TCP proxy to Redis whose first connection (a layer's subscribing
/// connection: `FredLayer::connect` opens it first) can be made to stop
/// passing Redis's bytes on while staying open: a half-open connection.
struct Proxy {
    port: u16,
    blackhole_first: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(redis_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let blackhole_first = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&blackhole_first);
        tokio::spawn(async move {
            let mut first = true;
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", redis_port)).await else {
                    continue;
                };
                let blackhole = first.then(|| Arc::clone(&flag));
                first = false;
                tokio::spawn(pipe(client, server, blackhole));
            }
        });
        Proxy {
            port,
            blackhole_first,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// Copies bytes both ways; Redis's bytes are dropped while `blackhole` is set.
async fn pipe(client: TcpStream, server: TcpStream, blackhole: Option<Arc<AtomicBool>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    });
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let n = match server_read.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let silenced = blackhole
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed));
        if !silenced && client_write.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    upstream.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_subscribing_connection_is_found_by_the_probe() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("chanx_fred=debug")
        .try_init();
    let url = redis_url();
    let prefix = unique_prefix("halfopen");
    let proxy = Proxy::start(
        url.rsplit(':')
            .next()
            .and_then(|port| port.trim_end_matches('/').parse().ok())
            .expect("CHANX_REDIS_URL ends with a port"),
    )
    .await;
    let a = layer(&url, &prefix).await;
    let config = FredConfig::new(proxy.url())
        .prefix(&prefix)
        .probe_interval(Some(Duration::from_millis(200)))
        .command_timeout(Duration::from_secs(1))
        .max_reconnect_delay(Duration::from_millis(200));
    let b = within("connect", FredLayer::connect(config))
        .await
        .expect("connect through the proxy");
    let (ch_b, inbox_b) = b.new_channel().await.expect("channel");
    within("join", b.group_add("g", &ch_b)).await.expect("join");
    within("send", a.group_send("g", event(1)))
        .await
        .expect("send");
    assert_eq!(next(&inbox_b).await, 1);

    // b's subscribing connection stays open but hears nothing any more.
    proxy.blackhole_first.store(true, Ordering::Relaxed);
    within("send", a.group_send("g", event(2)))
        .await
        .expect("send");
    assert!(
        resumes_after_gap(&a, "g", &inbox_b).await,
        "the member was told about the gap before delivery resumed"
    );
    assert!(b.gaps_detected() >= 1);
}

/// fred hands pub/sub messages to the layer through a bounded buffer; a
/// burst bigger than the buffer, arriving faster than the layer routes it,
/// loses messages there, and the group hears about it.
#[tokio::test(flavor = "current_thread")]
async fn a_pubsub_buffer_overflow_is_reported_as_a_gap() {
    let url = redis_url();
    let prefix = unique_prefix("lag");
    let config = FredConfig::new(&url)
        .prefix(&prefix)
        .broadcast_capacity(16)
        .capacity(50_000);
    let b = within("connect", FredLayer::connect(config))
        .await
        .expect("connect");
    let (ch_b, inbox_b) = b.new_channel().await.expect("channel");
    within("join", b.group_add("g", &ch_b)).await.expect("join");

    // Redis itself publishes a chained burst, as fast as it can write.
    let burst = 20_000;
    let script = r#"
        for i = 1, tonumber(ARGV[2]) do
            local wire = '{"p":"lua","s":' .. i .. ',"q":' .. (i - 1) .. ',"g":"g","m":' .. ARGV[1] .. '}'
            redis.call('publish', KEYS[1], wire)
        end
        return 0"#;
    let key = format!("{prefix}:g:g");
    let (message, count) = (event(7).to_json(), burst.to_string());
    let output = redis_cli(&url, &["eval", script, "1", &key, &message, &count]);
    assert_eq!(output.trim(), "0", "{output}");

    let mut delivered = 0;
    let mut gap_seen = false;
    within("burst routed", async {
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(500), inbox_b.recv()).await
        {
            match &*message {
                LayerMessage::Gap(notice) => gap_seen |= notice.group() == "g",
                _ => delivered += 1,
            }
        }
    })
    .await;
    assert!(delivered < burst, "the buffer overflowed");
    assert!(
        gap_seen,
        "the member was told ({delivered} of {burst} delivered)"
    );
    assert!(b.gaps_detected() >= 1);
}
