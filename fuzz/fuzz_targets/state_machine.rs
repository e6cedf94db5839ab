//! Arbitrary sequences of inputs: never a panic, nothing sent after the
//! close frame, every joined group left exactly once.
#![no_main]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chanx_proto::{Handled, InFrame, LayerMessage, Output};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Text(String),
    Binary(Vec<u8>),
    Ping,
    Pong,
    PeerClose,
    Layer(Vec<u8>),
    OwnGroupMessage { exclude: bool },
    Advance(u16),
    Written(u8),
    Send(String),
    Close(u16),
    Shutdown,
    TransportClosed,
    MessageHandled(bool),
    EventHandled,
}

fuzz_target!(|input: (bool, Vec<u8>, Vec<Op>)| {
    let (camelize, group_ids, ops) = input;
    let groups: Vec<String> = group_ids.iter().take(6).map(|g| format!("g{}", g % 4)).collect();
    let mut now = Instant::now();
    let mut conn = common::open(common::protocol(camelize, false), groups, now);
    let mut joined: HashMap<String, i32> = HashMap::new();
    let mut closed = false;
    let mut own: Option<LayerMessage> = None;
    let mut drain = |conn: &mut common::Conn, joined: &mut HashMap<String, i32>, closed: &mut bool| {
        while let Some(output) = conn.poll_output() {
            match output {
                Output::JoinGroup(g) => *joined.entry(g).or_default() += 1,
                Output::LeaveGroup(g) => *joined.entry(g).or_default() -= 1,
                Output::Close { .. } => *closed = true,
                Output::Frame(_) | Output::Ping => assert!(!*closed, "nothing after the close frame"),
                _ => {}
            }
        }
    };
    drain(&mut conn, &mut joined, &mut closed);
    for op in ops.into_iter().take(64) {
        let _ = match op {
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
                let r = conn.send_group_message(&serde_json::json!({"action": "x"}), None, exclude);
                while let Some(output) = conn.poll_output() {
                    if let Output::GroupSend { message, .. } = output {
                        own = Some((*message).clone());
                    }
                }
                if let Some(m) = &own {
                    let _ = conn.handle_layer_message(m);
                }
                r
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
            Op::Send(s) => conn.send_message(&serde_json::json!({"action": "s", "payload": s})),
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
            Op::MessageHandled(ok) => conn.message_handled(if ok { Handled::Completed } else { Handled::Failed }),
            Op::EventHandled => conn.event_handled(),
        };
        drain(&mut conn, &mut joined, &mut closed);
    }
    conn.handle_transport_closed();
    drain(&mut conn, &mut joined, &mut closed);
    for (group, balance) in joined {
        assert_eq!(balance, 0, "group {group} joined and left a different number of times");
    }
});
