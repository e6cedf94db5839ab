//! Fan-out through a topic against fan-out through a plain group, in one
//! run, over real WebSockets: the quickstart on axum, one publisher and
//! `FANOUT_MEMBERS` receivers (default 100) in chat room `fan`
//! (`/ws/myapp/chat/fan/`, a group message to the other members) or
//! subscribed to `room:fan` (`/ws/myapp/rooms/`, a topic broadcast). Each
//! round sends `FANOUT_MESSAGES` (default 500) and times until every
//! receiver has every message; deliveries per second, medians of
//! `FANOUT_ROUNDS` (default 3). Read the ratio (the machine is shared).
//!
//! `cargo bench -p chanx-e2e --bench topic_fanout`

use std::time::{Duration, Instant};

use chanx_e2e::{Adapter, Running, Ws, knob, median, start_with, ws_as};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// How the members listen.
#[derive(Clone, Copy)]
enum Via {
    Group,
    Topic,
}

impl Via {
    fn path(self) -> &'static str {
        match self {
            Via::Group => "/ws/myapp/chat/fan/",
            Via::Topic => "/ws/myapp/rooms/",
        }
    }

    fn message(self, i: usize) -> String {
        let payload = serde_json::json!({"content": format!("m{i}")});
        match self {
            Via::Group => serde_json::json!({"action": "echo", "payload": payload}),
            Via::Topic => serde_json::json!({"version": 1, "topic": "room:fan", "action": "echo", "payload": payload}),
        }
        .to_string()
    }
}

/// The next text frame containing `needle`.
async fn until(ws: &mut Ws, needle: &str) {
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message
            && text.contains(needle)
        {
            return;
        }
    }
    panic!("the connection ended before a frame with {needle}");
}

/// An authenticated connection on `via`'s path, subscribed to `room:fan`
/// for a topic.
async fn member(server: &Running, via: Via, user: &str) -> Ws {
    let mut ws = ws_as(server.addr, via.path(), user).await;
    if let Via::Topic = via {
        let subscribe = r#"{"version":1,"topic":"room:fan","ref":"s","action":"subscribe"}"#;
        ws.send(Message::text(subscribe)).await.expect("send");
        until(&mut ws, "subscribed").await;
    }
    ws
}

/// Deliveries per second for one round.
async fn round(server: &Running, via: Via, members: usize, messages: usize) -> f64 {
    let mut receivers = Vec::with_capacity(members);
    for i in 0..members {
        receivers.push(member(server, via, if i % 2 == 0 { "bob" } else { "carol" }).await);
    }
    let mut publisher = member(server, via, "alice").await;
    let started = Instant::now();
    let counting: Vec<_> = receivers
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let mut received = 0;
                while received < messages {
                    let next = tokio::time::timeout(Duration::from_secs(20), ws.next()).await;
                    match next {
                        Ok(Some(Ok(Message::Text(text)))) if text.contains("chat_message") => {
                            received += 1
                        }
                        Ok(Some(Ok(_))) => {}
                        _ => break,
                    }
                }
                received
            })
        })
        .collect();
    let frames: Vec<Message> = (0..messages)
        .map(|i| Message::text(via.message(i)))
        .collect();
    let mut frames = futures_util::stream::iter(frames.into_iter().map(Ok));
    publisher.send_all(&mut frames).await.expect("send");
    // The publisher's own answers (`sent`, its copy of the broadcast).
    let drain = tokio::spawn(async move { while publisher.next().await.is_some() {} });
    let mut delivered = 0;
    for count in counting {
        delivered += count.await.expect("a receiver");
    }
    let elapsed = started.elapsed().as_secs_f64();
    drain.abort();
    assert_eq!(
        delivered,
        members * messages,
        "every receiver got every message"
    );
    delivered as f64 / elapsed
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let members = knob("FANOUT_MEMBERS", 100);
    let messages = knob("FANOUT_MESSAGES", 500);
    let rounds = knob("FANOUT_ROUNDS", 3);
    let server = start_with(Adapter::Axum, |config| {
        config.options.heartbeat = None;
        // The publisher sends in one burst.
        config.options.input_budget = None;
    })
    .await;
    println!(
        "topic fan-out: {members} receivers x {messages} messages, {rounds} rounds (deliveries/s)"
    );
    let (mut groups, mut topics) = (Vec::new(), Vec::new());
    for n in 1..=rounds {
        let group = round(&server, Via::Group, members, messages).await;
        let topic = round(&server, Via::Topic, members, messages).await;
        println!(
            "round {n}: group {group:>10.0}  topic {topic:>10.0}  topic/group {:.2}",
            topic / group
        );
        groups.push(group);
        topics.push(topic);
    }
    let (group, topic) = (median(groups), median(topics));
    println!(
        "median: group {group:.0}, topic {topic:.0}, topic / group = {:.2}",
        topic / group
    );
}
