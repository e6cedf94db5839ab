//! Two `FredLayer`s in one process, acting as two servers on the Redis at
//! `CHANX_REDIS_URL` (default `redis://127.0.0.1:6379`).

mod common;

use std::time::Duration;

use std::future::Future;

use chanx::layer::ChannelLayer;
use chanx_fred::{Error, FredConfig, FredLayer};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_sends_reach_members_on_both_layers() {
    let url = redis_url();
    let prefix = unique_prefix("group");
    let (a, b) = (layer(&url, &prefix).await, layer(&url, &prefix).await);
    let (ch_a, inbox_a) = a.new_channel().await.expect("channel");
    let (ch_b, inbox_b) = b.new_channel().await.expect("channel");
    within("join", a.group_add("lobby", &ch_a))
        .await
        .expect("join");
    within("join", b.group_add("lobby", &ch_b))
        .await
        .expect("join");

    within("send", a.group_send("lobby", event(1)))
        .await
        .expect("send");
    assert_eq!(next(&inbox_a).await, 1);
    assert_eq!(next(&inbox_b).await, 1);
    within("send", b.group_send("lobby", event(2)))
        .await
        .expect("send");
    assert_eq!(next(&inbox_a).await, 2);
    assert_eq!(next(&inbox_b).await, 2);
    // Each member got each message once.
    assert_silent(&inbox_a, Duration::from_millis(200)).await;
    assert_silent(&inbox_b, Duration::from_millis(200)).await;
    // Non-members get nothing.
    within("send", b.group_send("elsewhere", event(3)))
        .await
        .expect("send");
    assert_silent(&inbox_a, Duration::from_millis(200)).await;
    assert_eq!(a.gaps_detected() + b.gaps_detected(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_sends_cross_layers() {
    let url = redis_url();
    let prefix = unique_prefix("channel");
    let (a, b) = (layer(&url, &prefix).await, layer(&url, &prefix).await);
    let (ch_a, inbox_a) = a.new_channel().await.expect("channel");
    let (ch_b, inbox_b) = b.new_channel().await.expect("channel");
    assert!(ch_a.contains(a.layer_id()), "{ch_a} names its layer");

    within("send", a.send(&ch_b, event(1))).await.expect("send");
    assert_eq!(next(&inbox_b).await, 1);
    within("send", b.send(&ch_a, event(2))).await.expect("send");
    assert_eq!(next(&inbox_a).await, 2);
    // Local sends stay local.
    within("send", a.send(&ch_a, event(3))).await.expect("send");
    assert_eq!(next(&inbox_a).await, 3);
    // A channel that is gone, or never existed: silently nothing.
    within("send", a.send("specific.0123456789abcdef!9", event(4)))
        .await
        .expect("send");
    within("send", a.send("no-such-channel", event(5)))
        .await
        .expect("send");
    assert_silent(&inbox_a, Duration::from_millis(200)).await;
    assert_silent(&inbox_b, Duration::from_millis(200)).await;
}

/// Calls in flight at once, started in order (as a connection's worker
/// does), arrive in order on the other layer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_one_sender_stay_in_order() {
    const COUNT: u64 = 500;
    let url = redis_url();
    let prefix = unique_prefix("order");
    let (a, b) = (layer(&url, &prefix).await, layer(&url, &prefix).await);
    let (ch_b, inbox_b) = b.new_channel().await.expect("channel");
    within("join", b.group_add("g", &ch_b)).await.expect("join");

    for target in ["group", "channel"] {
        let mut sends: Vec<_> = (0..COUNT)
            .map(|n| match target {
                "group" => a.group_send("g", event(n)),
                _ => a.send(&ch_b, event(n)),
            })
            .map(futures_util::future::maybe_done)
            .collect();
        // Start every call (poll once) in order, then let them finish.
        for send in &mut sends {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let _ = std::pin::Pin::new(&mut *send).poll(&mut cx);
        }
        within("sends", futures_util::future::join_all(sends.iter_mut())).await;
        for send in &mut sends {
            std::pin::Pin::new(send)
                .take_output()
                .expect("finished")
                .expect("send");
        }
        for n in 0..COUNT {
            assert_eq!(next(&inbox_b).await, n, "{target} sends in order");
        }
    }
    assert_eq!(b.gaps_detected(), 0);
}

/// A join resolves only once the subscription is effective: a message
/// sent right after it reaches the new member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_join_receives_the_next_message() {
    let url = redis_url();
    let prefix = unique_prefix("join");
    let (a, b) = (layer(&url, &prefix).await, layer(&url, &prefix).await);
    let (ch_b, inbox_b) = b.new_channel().await.expect("channel");
    for round in 0..50 {
        let group = format!("room-{round}");
        within("join", b.group_add(&group, &ch_b))
            .await
            .expect("join");
        within("send", a.group_send(&group, event(round)))
            .await
            .expect("send");
        assert_eq!(next(&inbox_b).await, round);
    }
    // A batch join, then one message per group.
    let groups: Vec<String> = (0..100).map(|n| format!("batch-{n}")).collect();
    within("join", b.join_groups(&ch_b, &groups))
        .await
        .expect("join");
    assert_eq!(b.subscription_count(), 1 + 50 + 100);
    for (n, group) in groups.iter().enumerate() {
        within("send", a.group_send(group, event(n as u64)))
            .await
            .expect("send");
    }
    for n in 0..groups.len() {
        assert_eq!(next(&inbox_b).await, n as u64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_stops_delivery_and_unsubscribes() {
    let url = redis_url();
    let prefix = unique_prefix("leave");
    let redis = plain_client(&url).await;
    let (a, b) = (layer(&url, &prefix).await, layer(&url, &prefix).await);
    let own = |layer: &FredLayer| format!("{prefix}:proc:{}", layer.layer_id());
    let mut idle = vec![own(&a), own(&b)];
    idle.sort();

    let (ch_b1, inbox_b1) = b.new_channel().await.expect("channel");
    let (ch_b2, inbox_b2) = b.new_channel().await.expect("channel");
    let groups = vec!["g1".to_owned(), "g2".to_owned()];
    within("join", b.join_groups(&ch_b1, &groups))
        .await
        .expect("join");
    within("join", b.group_add("g1", &ch_b2))
        .await
        .expect("join");
    let mut busy = vec![
        format!("{prefix}:g:g1"),
        format!("{prefix}:g:g2"),
        own(&a),
        own(&b),
    ];
    busy.sort();
    assert_eq!(channels(&redis, &prefix).await, busy);

    // One member of g1 leaves: the other still receives; still subscribed.
    within("leave", b.group_discard("g1", &ch_b1))
        .await
        .expect("leave");
    within("send", a.group_send("g1", event(1)))
        .await
        .expect("send");
    assert_eq!(next(&inbox_b2).await, 1);
    assert_silent(&inbox_b1, Duration::from_millis(200)).await;

    // The last member of g1 leaves (batch), and the one of g2 closes.
    within("leave", b.leave_groups(&ch_b2, &["g1".to_owned()]))
        .await
        .expect("leave");
    drop(inbox_b1);
    assert_eq!(b.group_size("g1"), 0);
    assert_eq!(b.group_size("g2"), 0);
    assert_eq!(b.channel_count(), 1);
    within("send", a.group_send("g1", event(2)))
        .await
        .expect("send");
    within("send", a.group_send("g2", event(3)))
        .await
        .expect("send");
    assert_silent(&inbox_b2, Duration::from_millis(300)).await;

    // No subscription leaked.
    within("unsubscribed", async {
        while channels(&redis, &prefix).await != idle {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    eventually("subscription count", || b.subscription_count() == 1).await;

    // Joining again subscribes again.
    within("join", b.group_add("g1", &ch_b2))
        .await
        .expect("join");
    within("send", a.group_send("g1", event(4)))
        .await
        .expect("send");
    assert_eq!(next(&inbox_b2).await, 4);
}

/// A publisher's sequence jumping is reported as a gap for the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_gap_is_detected() {
    use fred::prelude::PubsubInterface;
    let url = redis_url();
    let prefix = unique_prefix("seq");
    let redis = plain_client(&url).await;
    let b = layer(&url, &prefix).await;
    let (ch_b, inbox_b) = b.new_channel().await.expect("channel");
    within("join", b.group_add("g", &ch_b)).await.expect("join");
    let channel = format!("{prefix}:g:g");
    let wire = |seq: u64, previous: u64| {
        format!(
            r#"{{"p":"other","s":{seq},"q":{previous},"g":"g","m":{}}}"#,
            event(seq).to_json()
        )
    };
    for (seq, previous) in [(7, 3), (8, 7), (10, 9), (10, 9), (11, 10)] {
        let _: i64 = within(
            "publish",
            redis.publish(channel.as_str(), wire(seq, previous)),
        )
        .await
        .expect("publish");
    }
    // Subscribed mid-stream: 7 starts the chain; 9 is missing (the
    // member is told before 10 arrives); the second 10 is a duplicate.
    assert_eq!(next(&inbox_b).await, 7);
    assert_eq!(next(&inbox_b).await, 8);
    assert_eq!(next_gap(&inbox_b).await, "g");
    assert_eq!(next(&inbox_b).await, 10);
    assert_eq!(next(&inbox_b).await, 11);
    assert_silent(&inbox_b, Duration::from_millis(200)).await;
    assert_eq!(b.gaps_detected(), 1);
    // Garbage on the channel is dropped, not delivered.
    let _: i64 = within("publish", redis.publish(channel.as_str(), "not json"))
        .await
        .expect("publish");
    assert_silent(&inbox_b, Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_nothing_fails_clearly() {
    let port = free_port();
    let url = format!("redis://user:secret@127.0.0.1:{port}");
    let config = FredConfig::new(&url).connect_timeout(Duration::from_secs(2));
    let started = std::time::Instant::now();
    let error = within("connect", FredLayer::connect(config))
        .await
        .expect_err("nothing listens there");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(error, Error::Connect { .. } | Error::ConnectTimeout { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("secret"), "{text}");

    let error = FredLayer::connect(FredConfig::new("redis://127.0.0.1:notaport"))
        .await
        .expect_err("not a URL fred knows");
    assert!(matches!(error, Error::Config(_)), "{error:?}");
}

/// The subscription probe finds a healthy connection healthy: no
/// reconnection, no gap, traffic unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_probe_is_quiet_when_all_is_well() {
    let url = redis_url();
    let prefix = unique_prefix("probe");
    let config = FredConfig::new(&url)
        .prefix(&prefix)
        .probe_interval(Some(Duration::from_millis(50)));
    let a = within("connect", FredLayer::connect(config.clone()))
        .await
        .expect("connect");
    let b = within("connect", FredLayer::connect(config))
        .await
        .expect("connect");
    let (ch_b, inbox_b) = b.new_channel().await.expect("channel");
    within("join", b.group_add("g", &ch_b)).await.expect("join");
    for n in 0..20 {
        within("send", a.group_send("g", event(n)))
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for n in 0..20 {
        assert_eq!(next(&inbox_b).await, n);
    }
    assert_eq!((a.gaps_detected(), b.gaps_detected()), (0, 0));
    assert_eq!(b.subscription_count(), 2);
}
