//! Arbitrary sequences of inputs: never a panic, nothing sent after the
//! close frame, every joined group left exactly once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use chanx_proto::topic::{Envelope, TopicAction, TopicRefusal, TopicRequest};
use chanx_proto::{Failure, Handled, InFrame, LayerCommand, LayerMessage, Output, TransportError};

use super::common;

#[derive(Arbitrary, Debug)]
enum Op {
    Text(String),
    Binary(Vec<u8>),
    Ping,
    Pong,
    PeerClose,
    Layer(Vec<u8>),
    OwnGroupMessage {
        exclude: bool,
    },
    Advance(u16),
    Written(u8),
    Send(String),
    Close(u16),
    Shutdown,
    TransportClosed,
    MessageHandled(bool),
    EventHandled,
    ReadsPaused(bool),
    GroupsJoined,
    TooBig,
    Failure,
    /// A topic request frame (`subscribe`, `unsubscribe` or a message).
    Topic {
        topic: u8,
        action: u8,
        reference: bool,
        body: String,
    },
    /// The runtime's answer to the oldest subscription request.
    Authorize(bool),
    /// The runtime performed the oldest accepted subscription's join.
    SubscriptionJoined,
    /// A broadcast to a topic arrives from the layer.
    Broadcast(u8),
    /// A handler replies on a topic it was asked on.
    TopicReply(u8),
}

/// Decodes `data` as the fuzzer does and checks it.
pub fn run(data: &[u8]) {
    if let Ok(input) = <(bool, Vec<u8>, Vec<Op>)>::arbitrary_take_rest(Unstructured::new(data)) {
        check(input);
    }
}

fn check(input: (bool, Vec<u8>, Vec<Op>)) {
    let (camelize, group_ids, ops) = input;
    let groups: Vec<String> = group_ids
        .iter()
        .take(6)
        .map(|g| format!("g{}", g % 4))
        .collect();
    let mut now = Instant::now();
    let protocol = common::protocol(camelize, false);
    let mut conn = chanx_proto::Connection::new(protocol, "fuzz.self", now);
    let outcome = chanx_proto::AuthOutcome::Accepted {
        user_pk: Some(1.into()),
        groups,
    };
    conn.handle_auth(outcome, now)
        .expect("first authentication");
    let mut joined: HashMap<String, i32> = HashMap::new();
    let mut closed = false;
    let mut own: Option<LayerMessage> = None;
    let mut requests: Vec<TopicRequest> = Vec::new();
    let mut accepted: Vec<Envelope> = Vec::new();
    let drain = |conn: &mut common::Conn,
                 joined: &mut HashMap<String, i32>,
                 closed: &mut bool,
                 requests: &mut Vec<TopicRequest>| {
        while let Some(output) = conn.poll_output() {
            match output {
                Output::Close { .. } => *closed = true,
                Output::Frame(frame) => {
                    assert!(!*closed, "nothing after the close frame");
                    assert!(
                        serde_json::from_str::<serde_json::Value>(&frame).is_ok(),
                        "every frame is JSON: {frame}"
                    );
                }
                Output::Ping => assert!(!*closed, "nothing after the close frame"),
                Output::Topic(request) => {
                    if matches!(request.action, TopicAction::Subscribe) {
                        requests.push(request);
                    }
                }
                _ => {}
            }
        }
        while let Some(command) = conn.poll_layer() {
            match command {
                LayerCommand::Join(groups) => groups
                    .into_iter()
                    .for_each(|g| *joined.entry(g).or_default() += 1),
                LayerCommand::Leave(groups) => groups
                    .into_iter()
                    .for_each(|g| *joined.entry(g).or_default() -= 1),
                LayerCommand::GroupSend { .. } => {
                    assert!(!*closed, "no group send after the close")
                }
            }
        }
    };
    drain(&mut conn, &mut joined, &mut closed, &mut requests);
    for op in ops.into_iter().take(64) {
        // Outcomes are outputs: only a send may fail, and only when closed or unencodable.
        let mut send = None;
        let misuse = match op {
            Op::Text(t) => conn.handle_frame(InFrame::Text(&t), now),
            Op::Binary(b) => conn.handle_frame(InFrame::Binary(&b), now),
            Op::Ping => conn.handle_frame(InFrame::Ping, now),
            Op::Pong => conn.handle_frame(InFrame::Pong, now),
            Op::PeerClose => conn.handle_frame(InFrame::Close(Some(1000)), now),
            Op::Layer(bytes) => match LayerMessage::from_json(&bytes) {
                Ok(m) => conn.handle_layer_message(&m),
                Err(_) => Ok(()),
            },
            Op::OwnGroupMessage { exclude } => {
                send = Some(conn.send_group_message(
                    &serde_json::json!({"action": "x"}),
                    None,
                    exclude,
                ));
                let mut commands = Vec::new();
                while let Some(command) = conn.poll_layer() {
                    if let LayerCommand::GroupSend { message, .. } = &command {
                        own = Some((**message).clone());
                    }
                    commands.push(command);
                }
                for command in commands {
                    if let LayerCommand::Leave(groups) = command {
                        groups
                            .into_iter()
                            .for_each(|g| *joined.entry(g).or_default() -= 1);
                    }
                }
                match &own {
                    Some(m) => conn.handle_layer_message(m),
                    None => Ok(()),
                }
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms) * 100);
                conn.handle_timeout(now);
                Ok(())
            }
            Op::Written(n) => {
                conn.handle_frames_written(usize::from(n));
                Ok(())
            }
            Op::Send(s) => {
                send = Some(conn.send_message(&serde_json::json!({"action": "s", "payload": s})));
                Ok(())
            }
            Op::Close(code) => {
                conn.close(code, "fuzz");
                Ok(())
            }
            Op::Shutdown => {
                conn.shutdown();
                Ok(())
            }
            Op::TransportClosed => {
                conn.handle_transport_closed();
                Ok(())
            }
            Op::MessageHandled(ok) => conn.message_handled(if ok {
                Handled::Completed
            } else {
                Handled::Failed
            }),
            Op::EventHandled => conn.event_handled(),
            Op::ReadsPaused(true) => {
                conn.handle_reads_paused();
                Ok(())
            }
            Op::ReadsPaused(false) => {
                conn.handle_reads_resumed();
                Ok(())
            }
            Op::GroupsJoined => {
                conn.handle_groups_joined();
                Ok(())
            }
            Op::TooBig => {
                conn.handle_transport_error(TransportError::MessageTooBig);
                Ok(())
            }
            Op::Failure => {
                conn.handle_failure(Failure::LayerUnavailable);
                Ok(())
            }
            Op::Topic {
                topic,
                action,
                reference,
                body,
            } => {
                let mut frame = serde_json::json!({"version": 1, "topic": common::topic(topic)});
                if reference {
                    frame["ref"] = serde_json::Value::from(body.len().to_string());
                }
                match action % 4 {
                    0 => frame["action"] = "subscribe".into(),
                    1 => frame["action"] = "unsubscribe".into(),
                    2 => {
                        frame["action"] = "echo".into();
                        frame["payload"] = serde_json::json!({"content": body});
                    }
                    _ => frame["action"] = body.into(),
                }
                conn.handle_frame(InFrame::Text(&frame.to_string()), now)
            }
            Op::Authorize(allow) => {
                if !requests.is_empty() {
                    let request = requests.remove(0);
                    if allow {
                        conn.accept_subscription(&request);
                        accepted.push(request.envelope);
                    } else {
                        conn.refuse_topic(&request.envelope, TopicRefusal::Unauthorized);
                    }
                }
                Ok(())
            }
            Op::SubscriptionJoined => {
                if !accepted.is_empty() {
                    conn.subscription_joined(&accepted.remove(0));
                }
                Ok(())
            }
            Op::Broadcast(topic) => {
                let content = serde_json::value::to_raw_value(&serde_json::json!({"action": "b"}))
                    .expect("a JSON object");
                let (_, message) =
                    chanx_proto::topic::broadcast("T", &common::topic(topic), content)
                        .expect("a JSON object");
                conn.handle_layer_message(&message)
            }
            Op::TopicReply(topic) => {
                let envelope = Envelope {
                    topic: common::topic(topic),
                    reference: Some("r".into()),
                };
                let reply = chanx_proto::Serialized::new(&serde_json::json!({"action": "r"}));
                send = reply.ok().map(|reply| conn.send_topic(reply, &envelope));
                Ok(())
            }
        };
        if let Err(error) = misuse {
            assert!(
                matches!(error, chanx_proto::ProtoError::NothingPending(_)),
                "only a completion with nothing pending is misuse here: {error}"
            );
        }
        if let Some(Err(error)) = send {
            assert!(matches!(error, chanx_proto::SendError::Closed), "{error}");
        }
        drain(&mut conn, &mut joined, &mut closed, &mut requests);
    }
    conn.handle_transport_closed();
    drain(&mut conn, &mut joined, &mut closed, &mut requests);
    for (group, balance) in joined {
        assert_eq!(
            balance, 0,
            "group {group} joined and left a different number of times"
        );
    }
}
