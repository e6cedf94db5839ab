//! Topics in the core, without sockets: the envelope, subscriptions, the
//! topic error frames, per-topic dispatch, broadcasts and limits
//! (docs/topics.md).
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Instant;

use chanx_proto::topic::{TopicAction, TopicRequest, TopicType, group_name};
use chanx_proto::{Connection, Handled, InFrame, LayerMessage, NoEvent, Options, Output, Protocol};
use serde::Deserialize;
use serde_json::{Value, json};
use support::{accepted, describe, drain, frames, layer_log};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum Own {
    Hello,
}

#[derive(Debug, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", content = "payload", rename_all = "snake_case")]
enum RoomIn {
    Say { content: String },
}

type Conn = Connection<Own, NoEvent>;

fn connection(options: Options) -> Conn {
    let topics = vec![
        TopicType::new::<RoomIn>("RoomTopic", "room:{room_id}", "action").unwrap(),
        TopicType::new::<RoomIn>("FeedTopic", "feed", "action").unwrap(),
    ];
    let protocol = Protocol::<Own, NoEvent>::new(options)
        .unwrap()
        .with_topics(topics)
        .unwrap();
    support::open_connection(
        Arc::new(protocol),
        "chan.1",
        accepted(None, &[]),
        Instant::now(),
    )
}

fn send(conn: &mut Conn, frame: Value) -> Vec<Output<Own, NoEvent>> {
    conn.handle_frame(InFrame::Text(&frame.to_string()), Instant::now())
        .unwrap();
    drain(conn)
}

fn subscribe_request(conn: &mut Conn, topic: &str, reference: &str) -> TopicRequest {
    let outs = send(
        conn,
        json!({"version": 1, "topic": topic, "ref": reference, "action": "subscribe"}),
    );
    match outs.into_iter().next() {
        Some(Output::Topic(request)) => request,
        other => panic!("expected a subscription request, got {other:?}"),
    }
}

/// Subscribes as a runtime would: accept, perform the join, report it.
fn subscribe(conn: &mut Conn, topic: &str, reference: &str) -> Vec<Value> {
    let request = subscribe_request(conn, topic, reference);
    assert!(matches!(request.action, TopicAction::Subscribe));
    conn.accept_subscription(&request);
    assert_eq!(
        layer_log(conn),
        [format!("<join {}>", group_name("RoomTopic", topic))]
    );
    conn.subscription_joined(&request.envelope);
    frames(&drain(conn))
}

#[test]
fn subscribe_confirms_with_the_envelope_after_the_join() {
    let mut conn = connection(Options::default());
    let request = subscribe_request(&mut conn, "room:lobby", "1");
    assert_eq!(request.params, [("room_id".to_owned(), "lobby".to_owned())]);
    conn.accept_subscription(&request);
    // Nothing is confirmed before the join is done.
    assert!(drain(&mut conn).is_empty());
    assert_eq!(layer_log(&mut conn), ["<join RoomTopic.room-lobby>"]);
    conn.subscription_joined(&request.envelope);
    assert_eq!(
        frames(&drain(&mut conn)),
        [
            json!({"action": "subscribed", "payload": null, "version": 1, "topic": "room:lobby", "ref": "1"})
        ]
    );

    // Twice: confirmed again, no second join.
    let again = send(
        &mut conn,
        json!({"version": 1, "topic": "room:lobby", "ref": "2", "action": "subscribe"}),
    );
    assert_eq!(
        frames(&again),
        [
            json!({"action": "subscribed", "payload": null, "version": 1, "topic": "room:lobby", "ref": "2"})
        ]
    );
    assert!(layer_log(&mut conn).is_empty());
}

#[test]
fn unsubscribe_leaves_and_is_confirmed_even_when_not_subscribed() {
    let mut conn = connection(Options::default());
    subscribe(&mut conn, "room:a", "1");
    let outs = send(
        &mut conn,
        json!({"version": 1, "topic": "room:a", "ref": "2", "action": "unsubscribe"}),
    );
    assert_eq!(
        describe(&outs),
        [
            r#"{"action":"unsubscribed","payload":null,"version":1,"topic":"room:a","ref":"2"}"#,
            "<topic unsubscribed room:a>"
        ]
    );
    assert_eq!(layer_log(&mut conn), ["<leave RoomTopic.room-a>"]);
    let outs = send(
        &mut conn,
        json!({"version": 1, "topic": "room:b", "ref": "3", "action": "unsubscribe"}),
    );
    assert_eq!(
        frames(&outs),
        [
            json!({"action": "unsubscribed", "payload": null, "version": 1, "topic": "room:b", "ref": "3"})
        ]
    );
    assert!(layer_log(&mut conn).is_empty());
}

#[test]
fn topic_errors_carry_the_envelope() {
    let mut conn = connection(Options::default());
    let unknown = send(
        &mut conn,
        json!({"version": 1, "topic": "x", "ref": "3", "action": "subscribe"}),
    );
    assert_eq!(
        frames(&unknown),
        [
            json!({"action": "error", "payload": {"reason": "unknown_topic", "detail": "Unknown topic 'x'"},
                "version": 1, "topic": "x", "ref": "3"})
        ]
    );
    let not_subscribed = send(
        &mut conn,
        json!({"version": 1, "topic": "room:z", "ref": "4", "action": "say", "payload": {"content": "hi"}}),
    );
    assert_eq!(
        frames(&not_subscribed),
        [
            json!({"action": "error", "payload": {"reason": "not_subscribed", "detail": "Not subscribed to 'room:z'"},
                "version": 1, "topic": "room:z", "ref": "4"})
        ]
    );
    let request = subscribe_request(&mut conn, "room:q", "5");
    conn.refuse_topic(
        &request.envelope,
        chanx_proto::topic::TopicRefusal::Unauthorized,
    );
    assert_eq!(
        frames(&drain(&mut conn)),
        [
            json!({"action": "error", "payload": {"reason": "unauthorized", "detail": "Not allowed to subscribe to 'room:q'"},
                "version": 1, "topic": "room:q", "ref": "5"})
        ]
    );
}

#[test]
fn a_malformed_envelope_gets_validation_errors_and_no_complete() {
    let mut conn = connection(Options {
        send_completion: true,
        ..Options::default()
    });
    for (frame, loc) in [
        (
            json!({"version": 1, "topic": "room:a", "ref": 1, "action": "subscribe"}),
            "ref",
        ),
        (
            json!({"version": "x", "topic": "room:a", "action": "subscribe"}),
            "version",
        ),
        (
            json!({"version": 2, "topic": "room:a", "action": "subscribe"}),
            "version",
        ),
        (
            json!({"version": 1, "topic": 5, "action": "subscribe"}),
            "topic",
        ),
    ] {
        let outs = frames(&send(&mut conn, frame.clone()));
        assert_eq!(outs.len(), 1, "{frame}: {outs:?}");
        assert_eq!(outs[0]["action"], "error", "{frame}");
        assert_eq!(outs[0]["payload"][0]["loc"], json!([loc]), "{frame}");
    }
    let long = "r".repeat(201);
    let outs = frames(&send(
        &mut conn,
        json!({"version": 1, "topic": long, "action": "subscribe"}),
    ));
    assert_eq!(outs[0]["payload"][0]["type"], "string_too_long");
}

#[test]
fn messages_on_a_topic_go_to_its_type_and_replies_carry_the_ref() {
    let mut conn = connection(Options {
        send_completion: true,
        ..Options::default()
    });
    subscribe(&mut conn, "room:a", "1");
    let outs = send(
        &mut conn,
        json!({"version": 1, "topic": "room:a", "ref": "7", "action": "say", "payload": {"content": "hi"}}),
    );
    let Some(Output::Topic(TopicRequest {
        action: TopicAction::Message(message),
        envelope,
        params,
        ..
    })) = outs.into_iter().next()
    else {
        panic!("a topic message");
    };
    assert_eq!(
        message.downcast_ref::<RoomIn>(),
        Some(&RoomIn::Say {
            content: "hi".into()
        })
    );
    assert_eq!(params, [("room_id".to_owned(), "a".to_owned())]);
    let reply = chanx_proto::Serialized::new(&json!({"action": "said", "payload": null})).unwrap();
    conn.send_topic(reply, &envelope).unwrap();
    // Topic messages are reported by their envelope, in any order.
    assert!(conn.message_handled(Handled::Completed).is_err());
    conn.topic_message_handled(Handled::Completed, &envelope)
        .unwrap();
    assert_eq!(
        frames(&drain(&mut conn)),
        [
            json!({"action": "said", "payload": null, "version": 1, "topic": "room:a", "ref": "7"}),
            json!({"action": "complete", "payload": null, "version": 1, "topic": "room:a", "ref": "7"}),
        ]
    );

    // An invalid message: the errors with the envelope, then complete.
    let outs = frames(&send(
        &mut conn,
        json!({"version": 1, "topic": "room:a", "ref": "8", "action": "say", "payload": {}}),
    ));
    assert_eq!(
        outs[0]["payload"][0]["loc"],
        json!(["say", "payload", "content"])
    );
    assert_eq!(outs[0]["ref"], "8");
    assert_eq!(outs[1]["action"], "complete");

    // The built-in ping, on a topic.
    let outs = frames(&send(
        &mut conn,
        json!({"version": 1, "topic": "room:a", "ref": "9", "action": "ping"}),
    ));
    assert_eq!(
        outs[0],
        json!({"action": "pong", "payload": null, "version": 1, "topic": "room:a", "ref": "9"})
    );

    // A frame without `topic` still reaches the endpoint's own set.
    let outs = send(&mut conn, json!({"action": "hello"}));
    assert_eq!(describe(&outs), ["<message Hello>"]);
}

#[test]
fn broadcasts_reach_subscribers_only_with_the_envelope() {
    let mut conn = connection(Options::default());
    let (group, message) = chanx_proto::topic::broadcast(
        "RoomTopic",
        "room:a",
        serde_json::value::to_raw_value(
            &json!({"action": "chat_message", "payload": {"content": "x"}}),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(group, "RoomTopic.room-a");
    conn.handle_layer_message(&message).unwrap();
    assert!(drain(&mut conn).is_empty(), "not subscribed yet");
    subscribe(&mut conn, "room:a", "1");
    conn.handle_layer_message(&message).unwrap();
    assert_eq!(
        frames(&drain(&mut conn)),
        [
            json!({"action": "chat_message", "payload": {"content": "x"}, "version": 1, "topic": "room:a"})
        ]
    );
    // The wire format round-trips (the Redis layer carries it).
    let wire = message.to_json();
    assert!(matches!(
        LayerMessage::from_json(wire.as_bytes()),
        Ok(LayerMessage::Topic(_))
    ));
}

#[test]
fn the_subscription_cap_refuses_one_more() {
    let mut conn = connection(Options {
        max_subscriptions: 2,
        ..Options::default()
    });
    subscribe(&mut conn, "room:1", "1");
    subscribe(&mut conn, "room:2", "2");
    let outs = frames(&send(
        &mut conn,
        json!({"version": 1, "topic": "room:3", "ref": "3", "action": "subscribe"}),
    ));
    assert_eq!(outs[0]["payload"]["reason"], "too_many_subscriptions");
    assert_eq!(conn.subscriptions().count(), 2);
}

#[test]
fn closing_leaves_every_topic_group() {
    let mut conn = connection(Options::default());
    subscribe(&mut conn, "room:1", "1");
    subscribe(&mut conn, "room:2", "2");
    conn.close(1000, "bye");
    let left = layer_log(&mut conn);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].contains("RoomTopic.room-1") && left[0].contains("RoomTopic.room-2"),
        "{left:?}"
    );
}

/// Found by the state-machine fuzz target: a close followed by the
/// transport's end left the topic groups twice.
#[test]
fn topic_groups_are_left_once_when_a_close_is_followed_by_the_transport_end() {
    let mut conn = connection(Options::default());
    subscribe(&mut conn, "room:1", "1");
    conn.close(1000, "bye");
    conn.handle_transport_closed();
    assert_eq!(layer_log(&mut conn), ["<leave RoomTopic.room-1>"]);
    // The subscriptions stay listed for the runtime's unsubscribe hooks.
    assert_eq!(conn.subscriptions().count(), 1);
}

#[test]
fn an_escaped_topic_key_still_names_a_topic() {
    let mut conn = connection(Options::default());
    let frame = r#"{"version":1,"to\u0070ic":"nowhere","ref":"1","action":"subscribe"}"#;
    conn.handle_frame(InFrame::Text(frame), Instant::now())
        .unwrap();
    let outs = frames(&drain(&mut conn));
    assert_eq!(outs[0]["payload"]["reason"], "unknown_topic", "{outs:?}");
}

#[test]
fn an_unsubscribe_withdraws_a_subscription_still_being_authorised() {
    let mut conn = connection(Options::default());
    let request = subscribe_request(&mut conn, "room:w", "1");
    let outs = send(
        &mut conn,
        json!({"version": 1, "topic": "room:w", "ref": "2", "action": "unsubscribe"}),
    );
    assert_eq!(frames(&outs)[0]["action"], "unsubscribed");
    conn.accept_subscription(&request);
    assert!(
        layer_log(&mut conn).is_empty(),
        "no join for a withdrawn request"
    );
    assert_eq!(conn.subscriptions().count(), 0);
}

/// One step of a client and runtime around topics.
#[derive(Clone, Debug)]
enum Step {
    Subscribe(u8),
    Unsubscribe(u8),
    Say(u8),
    Authorize(bool),
    Joined,
    Broadcast(u8),
    Close,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        (0u8..5).prop_map(Step::Subscribe),
        (0u8..5).prop_map(Step::Unsubscribe),
        (0u8..5).prop_map(Step::Say),
        any::<bool>().prop_map(Step::Authorize),
        Just(Step::Joined),
        (0u8..5).prop_map(Step::Broadcast),
        Just(Step::Close),
    ]
}

proptest::proptest! {
    /// Whatever the client and the runtime do: every frame is JSON with an
    /// action, a frame with a `ref` answers a request made with it, the
    /// subscriptions stay under the cap, a broadcast reaches only a joined
    /// subscription, and every topic group joined is left exactly once.
    #[test]
    fn topic_sequences_keep_their_invariants(steps in proptest::collection::vec(step(), 0..40)) {
        let mut conn = connection(Options { max_subscriptions: 3, ..Options::default() });
        let topic = |n: u8| if n == 4 { "nowhere".to_owned() } else { format!("room:{n}") };
        let mut requests: Vec<TopicRequest> = Vec::new();
        let mut accepted: Vec<chanx_proto::topic::Envelope> = Vec::new();
        let mut refs: Vec<String> = Vec::new();
        let mut balance: std::collections::HashMap<String, i32> = Default::default();
        let count = |conn: &mut Conn, balance: &mut std::collections::HashMap<String, i32>| {
            for command in support::drain_layer(conn) {
                match command {
                    chanx_proto::LayerCommand::Join(groups) => groups.into_iter().for_each(|g| *balance.entry(g).or_default() += 1),
                    chanx_proto::LayerCommand::Leave(groups) => groups.into_iter().for_each(|g| *balance.entry(g).or_default() -= 1),
                    chanx_proto::LayerCommand::GroupSend { .. } => {}
                }
            }
        };
        for (i, step) in steps.into_iter().enumerate() {
            let reference = i.to_string();
            let frame = match step {
                Step::Subscribe(n) => Some(json!({"version": 1, "topic": topic(n), "ref": reference, "action": "subscribe"})),
                Step::Unsubscribe(n) => Some(json!({"version": 1, "topic": topic(n), "ref": reference, "action": "unsubscribe"})),
                Step::Say(n) => Some(json!({"version": 1, "topic": topic(n), "ref": reference, "action": "say", "payload": {"content": "x"}})),
                Step::Authorize(allow) => {
                    if !requests.is_empty() {
                        let request = requests.remove(0);
                        if allow {
                            conn.accept_subscription(&request);
                            accepted.push(request.envelope);
                        } else {
                            conn.refuse_topic(&request.envelope, chanx_proto::topic::TopicRefusal::Unauthorized);
                        }
                    }
                    None
                }
                Step::Joined => {
                    if !accepted.is_empty() {
                        conn.subscription_joined(&accepted.remove(0));
                    }
                    None
                }
                Step::Broadcast(n) => {
                    let content = serde_json::value::to_raw_value(&json!({"action": "b"})).unwrap();
                    let (_, message) = chanx_proto::topic::broadcast("RoomTopic", &topic(n), content).unwrap();
                    conn.handle_layer_message(&message).unwrap();
                    None
                }
                Step::Close => {
                    conn.close(1000, "bye");
                    None
                }
            };
            if let Some(frame) = frame {
                refs.push(reference);
                conn.handle_frame(InFrame::Text(&frame.to_string()), Instant::now()).unwrap();
            }
            for out in drain(&mut conn) {
                match out {
                    Output::Frame(text) => {
                        let value: Value = serde_json::from_str(&text).unwrap();
                        proptest::prop_assert!(value["action"].is_string(), "{}", text);
                        if let Some(r) = value.get("ref") {
                            proptest::prop_assert!(refs.iter().any(|known| r == known), "{}", text);
                        }
                        if value["action"] == "b" {
                            let subscribed = conn.subscriptions().any(|(t, _, _)| value["topic"] == t);
                            proptest::prop_assert!(subscribed, "a broadcast to a topic not subscribed: {}", text);
                        }
                    }
                    Output::Topic(request) => match request.action {
                        TopicAction::Subscribe => requests.push(request),
                        TopicAction::Message(_) => conn.topic_message_handled(Handled::Completed, &request.envelope).unwrap(),
                        TopicAction::Unsubscribed => {}
                    },
                    _ => {}
                }
            }
            proptest::prop_assert!(conn.subscriptions().count() <= 3);
            count(&mut conn, &mut balance);
        }
        conn.handle_transport_closed();
        drain(&mut conn);
        count(&mut conn, &mut balance);
        for (group, joins) in balance {
            proptest::prop_assert_eq!(joins, 0, "group {} joined and left a different number of times", group);
        }
    }
}

#[test]
fn topics_sharing_a_group_keep_it_until_the_last_leaves() {
    let mut conn = connection(Options::default());
    // Both clean to the group `RoomTopic.room--`.
    let first = subscribe_request(&mut conn, "room:é", "1");
    assert!(conn.accept_subscription(&first));
    let _ = layer_log(&mut conn);
    conn.subscription_joined(&first.envelope);
    drain(&mut conn);
    let second = subscribe_request(&mut conn, "room:ü", "2");
    assert!(conn.accept_subscription(&second));
    let _ = layer_log(&mut conn);
    conn.subscription_joined(&second.envelope);
    drain(&mut conn);
    send(
        &mut conn,
        json!({"version": 1, "topic": "room:é", "ref": "3", "action": "unsubscribe"}),
    );
    assert!(
        layer_log(&mut conn).is_empty(),
        "room:ü still uses the group"
    );
    conn.close(1000, "bye");
    assert_eq!(layer_log(&mut conn), ["<leave RoomTopic.room-->"]);
}

#[test]
fn a_duplicate_subscription_in_flight_queues_no_second_join() {
    let mut conn = connection(Options::default());
    let first = subscribe_request(&mut conn, "room:d", "1");
    let second = subscribe_request(&mut conn, "room:d", "2");
    assert!(conn.accept_subscription(&first));
    assert!(
        !conn.accept_subscription(&second),
        "already subscribed: nothing to join"
    );
    assert_eq!(layer_log(&mut conn), ["<join RoomTopic.room-d>"]);
}
