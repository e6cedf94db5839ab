#![allow(clippy::unwrap_used, missing_docs)]
//! `InMemoryLayer` semantics (the contract in `chanx::layer`'s docs).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chanx::layer::{ChannelLayer, InMemoryLayer, Inbox};
use chanx::proto::LayerMessage;
use futures_executor::block_on;
use futures_util::FutureExt;
use futures_util::future::{Either, select};
use serde_json::{Value, json};

fn event(n: u64) -> Arc<LayerMessage> {
    Arc::new(LayerMessage::event(&json!({"handler": "n", "payload": n})).unwrap())
}

fn number(message: &LayerMessage) -> u64 {
    match message {
        LayerMessage::Event(e) => {
            let v: Value = serde_json::from_str(e.event_data()).unwrap();
            v["payload"].as_u64().unwrap()
        }
        LayerMessage::Group(_) | LayerMessage::Gap(_) | LayerMessage::Topic(_) => {
            panic!("expected an event")
        }
    }
}

/// The next message, waiting at most 1 s.
async fn next(inbox: &Inbox) -> Option<u64> {
    let recv = inbox.recv();
    futures_util::pin_mut!(recv);
    match select(recv, futures_timer::Delay::new(Duration::from_secs(1))).await {
        Either::Left((m, _)) => m.map(|m| number(&m)),
        Either::Right(_) => None,
    }
}

/// A message already waiting, without blocking.
fn ready(inbox: &Inbox) -> Option<u64> {
    inbox.recv().now_or_never().flatten().map(|m| number(&m))
}

#[test]
fn channel_names_are_unique() {
    block_on(async {
        let layer = InMemoryLayer::new();
        let mut names = HashSet::new();
        let mut inboxes = Vec::new();
        for _ in 0..100 {
            let (name, inbox) = layer.new_channel().await.unwrap();
            assert!(name.starts_with("specific."), "{name}");
            assert!(names.insert(name));
            inboxes.push(inbox);
        }
        assert_eq!(layer.channel_count(), 100);
        // A second layer in the same process never reuses names either.
        let other = InMemoryLayer::new();
        let (name, _inbox) = other.new_channel().await.unwrap();
        assert!(!names.contains(&name));
    });
}

#[test]
fn group_add_send_discard() {
    block_on(async {
        let layer = InMemoryLayer::new();
        let (a, inbox_a) = layer.new_channel().await.unwrap();
        let (b, inbox_b) = layer.new_channel().await.unwrap();
        let (_c, inbox_c) = layer.new_channel().await.unwrap();
        layer.group_add("g", &a).await.unwrap();
        layer.group_add("g", &b).await.unwrap();
        assert_eq!(layer.group_size("g"), 2);

        layer.group_send("g", event(1)).await.unwrap();
        assert_eq!(next(&inbox_a).await, Some(1));
        assert_eq!(next(&inbox_b).await, Some(1));
        assert_eq!(ready(&inbox_c), None, "not a member");

        layer.group_discard("g", &a).await.unwrap();
        assert_eq!(layer.group_size("g"), 1);
        layer.group_send("g", event(2)).await.unwrap();
        assert_eq!(next(&inbox_b).await, Some(2));
        assert_eq!(ready(&inbox_a), None, "left the group");

        layer.group_discard("g", &b).await.unwrap();
        assert_eq!(layer.group_size("g"), 0);
        // Sending to an empty or unknown group is fine.
        layer.group_send("g", event(3)).await.unwrap();
        layer.group_send("nobody", event(4)).await.unwrap();
        assert_eq!(ready(&inbox_a), None);
        assert_eq!(ready(&inbox_b), None);
        // Discarding what is not there is fine too.
        layer.group_discard("g", &b).await.unwrap();
        layer.group_discard("nobody", "specific.x!0").await.unwrap();
    });
}

#[test]
fn group_add_of_unknown_channel_is_ignored() {
    block_on(async {
        let layer = InMemoryLayer::new();
        layer.group_add("g", "specific.ghost!1").await.unwrap();
        assert_eq!(layer.group_size("g"), 0);
        layer.group_send("g", event(1)).await.unwrap();
    });
}

#[test]
fn send_to_one_channel() {
    block_on(async {
        let layer = InMemoryLayer::new();
        let (a, inbox_a) = layer.new_channel().await.unwrap();
        let (_b, inbox_b) = layer.new_channel().await.unwrap();
        layer.send(&a, event(7)).await.unwrap();
        assert_eq!(next(&inbox_a).await, Some(7));
        assert_eq!(ready(&inbox_b), None);
        // An unknown channel is silently skipped.
        layer.send("specific.ghost!9", event(8)).await.unwrap();
    });
}

#[test]
fn at_most_once_per_member() {
    block_on(async {
        let layer = InMemoryLayer::new();
        let (a, inbox) = layer.new_channel().await.unwrap();
        layer.group_add("g", &a).await.unwrap();
        layer.group_add("g", &a).await.unwrap();
        assert_eq!(layer.group_size("g"), 1);
        layer.group_send("g", event(1)).await.unwrap();
        assert_eq!(next(&inbox).await, Some(1));
        assert_eq!(ready(&inbox), None, "delivered once");
        // One discard removes the membership entirely.
        layer.group_discard("g", &a).await.unwrap();
        layer.group_send("g", event(2)).await.unwrap();
        assert_eq!(ready(&inbox), None);
    });
}

#[test]
fn shared_message_is_not_copied_per_member() {
    block_on(async {
        let layer = InMemoryLayer::new();
        let (a, inbox_a) = layer.new_channel().await.unwrap();
        let (b, inbox_b) = layer.new_channel().await.unwrap();
        layer.group_add("g", &a).await.unwrap();
        layer.group_add("g", &b).await.unwrap();
        let message = event(5);
        layer.group_send("g", Arc::clone(&message)).await.unwrap();
        let got_a = inbox_a.recv().await.unwrap();
        let got_b = inbox_b.recv().await.unwrap();
        assert!(Arc::ptr_eq(&got_a, &message));
        assert!(Arc::ptr_eq(&got_b, &message));
    });
}

#[test]
fn order_per_sender_is_preserved() {
    block_on(async {
        let layer = InMemoryLayer::new();
        let (a, inbox_a) = layer.new_channel().await.unwrap();
        let (b, inbox_b) = layer.new_channel().await.unwrap();
        layer.group_add("g", &a).await.unwrap();
        layer.group_add("g", &b).await.unwrap();
        for i in 0..100 {
            layer.group_send("g", event(i)).await.unwrap();
        }
        for inbox in [&inbox_a, &inbox_b] {
            let mut got = Vec::new();
            for _ in 0..100 {
                got.push(next(inbox).await.unwrap());
            }
            assert_eq!(got, (0..100).collect::<Vec<_>>());
            assert_eq!(ready(inbox), None);
        }
    });
}

#[test]
fn order_is_preserved_for_direct_sends_too() {
    block_on(async {
        let layer = InMemoryLayer::new();
        let (a, inbox) = layer.new_channel().await.unwrap();
        for i in 0..100 {
            layer.send(&a, event(i)).await.unwrap();
        }
        let mut got = Vec::new();
        while let Some(n) = ready(&inbox) {
            got.push(n);
        }
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    });
}

#[test]
fn full_inbox_drops_new_messages_without_blocking() {
    block_on(async {
        let layer = InMemoryLayer::with_capacity(2);
        let (a, slow) = layer.new_channel().await.unwrap();
        let (b, fast) = layer.new_channel().await.unwrap();
        layer.group_add("g", &a).await.unwrap();
        layer.group_add("g", &b).await.unwrap();
        for i in 1..=2 {
            layer.group_send("g", event(i)).await.unwrap();
        }
        // Drain the fast member; the slow one stays full.
        assert_eq!(ready(&fast), Some(1));
        assert_eq!(ready(&fast), Some(2));
        // The third send must not block on the full inbox.
        let third = layer.group_send("g", event(3)).now_or_never();
        assert!(
            matches!(third, Some(Ok(()))),
            "group_send blocked or failed"
        );
        let direct = layer.send(&a, event(4)).now_or_never();
        assert!(matches!(direct, Some(Ok(()))), "send blocked or failed");

        assert_eq!(ready(&slow), Some(1));
        assert_eq!(ready(&slow), Some(2));
        assert_eq!(ready(&slow), None, "the third message was dropped");
        assert_eq!(ready(&fast), Some(3), "other members still got it");
        // Once there is room again, new messages arrive.
        layer.group_send("g", event(5)).await.unwrap();
        assert_eq!(ready(&slow), Some(5));
    });
}

#[test]
fn capacity_is_at_least_one() {
    block_on(async {
        let layer = InMemoryLayer::with_capacity(0);
        let (a, inbox) = layer.new_channel().await.unwrap();
        layer.send(&a, event(1)).await.unwrap();
        layer.send(&a, event(2)).await.unwrap();
        assert_eq!(ready(&inbox), Some(1));
        assert_eq!(ready(&inbox), None);
    });
}

#[test]
fn dropping_an_inbox_unregisters_the_channel_everywhere() {
    block_on(async {
        let layer = InMemoryLayer::new();
        let (a, inbox_a) = layer.new_channel().await.unwrap();
        let (b, inbox_b) = layer.new_channel().await.unwrap();
        for g in ["g1", "g2", "g3"] {
            layer.group_add(g, &a).await.unwrap();
        }
        layer.group_add("g1", &b).await.unwrap();
        assert_eq!(layer.channel_count(), 2);
        assert_eq!(layer.group_size("g1"), 2);
        assert_eq!(layer.group_size("g2"), 1);

        drop(inbox_a);
        assert_eq!(layer.channel_count(), 1);
        assert_eq!(layer.group_size("g1"), 1);
        assert_eq!(layer.group_size("g2"), 0);
        assert_eq!(layer.group_size("g3"), 0);

        // The dropped channel can no longer be added or addressed.
        layer.group_add("g2", &a).await.unwrap();
        assert_eq!(layer.group_size("g2"), 0);
        layer.send(&a, event(1)).await.unwrap();
        layer.group_send("g1", event(2)).await.unwrap();
        assert_eq!(next(&inbox_b).await, Some(2));

        drop(inbox_b);
        assert_eq!(layer.channel_count(), 0);
        assert_eq!(layer.group_size("g1"), 0);
        let _ = b;
    });
}

#[test]
fn clones_share_state() {
    block_on(async {
        let layer = InMemoryLayer::new();
        let clone = layer.clone();
        let (a, inbox) = layer.new_channel().await.unwrap();
        clone.group_add("g", &a).await.unwrap();
        assert_eq!(layer.group_size("g"), 1);
        assert_eq!(clone.channel_count(), 1);
        clone.group_send("g", event(1)).await.unwrap();
        assert_eq!(next(&inbox).await, Some(1));
        // Through an Arc<dyn ChannelLayer> as the server holds it.
        let shared: Arc<dyn ChannelLayer> = Arc::new(layer.clone());
        shared.group_send("g", event(2)).await.unwrap();
        assert_eq!(next(&inbox).await, Some(2));
    });
}

#[test]
fn inbox_outliving_the_layer_is_fine() {
    let inbox = block_on(async {
        let layer = InMemoryLayer::new();
        let (a, inbox) = layer.new_channel().await.unwrap();
        layer.send(&a, event(1)).await.unwrap();
        inbox
    });
    assert_eq!(ready(&inbox), Some(1));
    // The layer and its senders are gone: recv reports the end.
    assert_eq!(block_on(inbox.recv()).map(|m| number(&m)), None);
    drop(inbox);
}

#[test]
fn concurrent_group_sends_from_threads() {
    const THREADS: u64 = 8;
    const EACH: u64 = 200;
    const CHURN: u64 = 9_999_999;
    let layer = InMemoryLayer::with_capacity(10_000);
    let (members, inboxes): (Vec<String>, Vec<Inbox>) = block_on(async {
        let mut names = Vec::new();
        let mut inboxes = Vec::new();
        for _ in 0..4 {
            let (name, inbox) = layer.new_channel().await.unwrap();
            layer.group_add("g", &name).await.unwrap();
            names.push(name);
            inboxes.push(inbox);
        }
        (names, inboxes)
    });
    let mut threads = Vec::new();
    for t in 0..THREADS {
        let layer = layer.clone();
        threads.push(std::thread::spawn(move || {
            block_on(async {
                for i in 0..EACH {
                    layer.group_send("g", event(t * 1000 + i)).await.unwrap();
                }
            });
        }));
    }
    // Churn on other groups and channels meanwhile.
    let churn = {
        let layer = layer.clone();
        let member = members[0].clone();
        std::thread::spawn(move || {
            block_on(async {
                for i in 0..200 {
                    let group = format!("other{}", i % 5);
                    layer.group_add(&group, &member).await.unwrap();
                    let (_, temp) = layer.new_channel().await.unwrap();
                    layer.group_send(&group, event(CHURN)).await.unwrap();
                    drop(temp);
                    layer.group_discard(&group, &member).await.unwrap();
                }
            });
        })
    };
    for t in threads {
        t.join().unwrap();
    }
    churn.join().unwrap();

    for (k, inbox) in inboxes.iter().enumerate() {
        let mut last = vec![None::<u64>; THREADS as usize];
        let mut count = 0;
        while let Some(n) = ready(inbox) {
            if n == CHURN {
                // From the churn thread's groups.
                continue;
            }
            let (t, i) = ((n / 1000) as usize, n % 1000);
            if let Some(prev) = last[t] {
                assert!(i > prev, "per-sender order broken: {prev} then {i}");
            }
            last[t] = Some(i);
            count += 1;
        }
        assert_eq!(count, THREADS * EACH, "member {k}");
    }
    assert_eq!(layer.group_size("g"), 4);
    assert_eq!(layer.channel_count(), 4);
    for i in 0..5 {
        assert_eq!(layer.group_size(&format!("other{i}")), 0);
    }
}
