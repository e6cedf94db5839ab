//! Redis dies and comes back under two running layers: subscriptions are
//! restored, messages flow again and the members are told they may have
//! missed some. Runs its own `redis-server` (from PATH).

mod common;

use std::time::Duration;

use chanx::layer::ChannelLayer;
use common::*;

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
