//! Helpers shared by the core's tests (`tests/*.rs`) and the fuzz targets
//! (`fuzz/fuzz_targets/*.rs` include this file by path): building
//! protocols and open connections, draining and describing outputs.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use chanx_proto::{
    AuthOutcome, Connection, LayerCommand, LayerMessage, MessageSet, Options, Output, Protocol,
};
use serde_json::Value;

/// An endpoint's protocol with `options`; panics on invalid options.
pub fn protocol<M: MessageSet, E: MessageSet>(options: Options) -> Arc<Protocol<M, E>> {
    Arc::new(Protocol::new(options).expect("valid options"))
}

/// An accepted authentication for `user_pk`, joining `groups`.
pub fn accepted(user_pk: Option<Value>, groups: &[&str]) -> AuthOutcome {
    AuthOutcome::Accepted {
        user_pk,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

/// A refused authentication.
pub fn rejected(status: u16, detail: &str) -> AuthOutcome {
    AuthOutcome::Rejected {
        status,
        detail: detail.to_owned(),
    }
}

/// A connection on `channel`, authenticated with `outcome`, its handshake
/// outputs and layer commands drained (its frames still count as queued).
pub fn open_connection<M: MessageSet, E: MessageSet>(
    protocol: Arc<Protocol<M, E>>,
    channel: &str,
    outcome: AuthOutcome,
    now: Instant,
) -> Connection<M, E> {
    let mut conn = Connection::new(protocol, channel, now);
    conn.handle_auth(outcome, now)
        .expect("first authentication");
    while conn.poll_output().is_some() {}
    while conn.poll_layer().is_some() {}
    conn
}

/// Every pending output (not the layer commands); asserts that no frame
/// follows a close.
pub fn drain<M, E>(conn: &mut Connection<M, E>) -> Vec<Output<M, E>>
where
    M: MessageSet + Debug,
    E: MessageSet + Debug,
{
    let out: Vec<_> = std::iter::from_fn(|| conn.poll_output()).collect();
    if let Some(i) = out.iter().position(|o| matches!(o, Output::Close { .. })) {
        assert!(
            !out[i..].iter().any(|o| matches!(o, Output::Frame(_))),
            "a frame follows a close: {:?}",
            describe(&out)
        );
    }
    out
}

/// Every pending layer command.
pub fn drain_layer<M: MessageSet, E: MessageSet>(conn: &mut Connection<M, E>) -> Vec<LayerCommand> {
    std::iter::from_fn(|| conn.poll_layer()).collect()
}

/// One line per output: frames as their text, the rest as `<kind arg>`.
pub fn describe<M: Debug, E: Debug>(outs: &[Output<M, E>]) -> Vec<String> {
    outs.iter()
        .map(|o| match o {
            Output::Frame(text) => text.clone(),
            Output::Ping => "<ping>".to_owned(),
            Output::Close {
                code,
                discard_queued: false,
                ..
            } => format!("<close {code}>"),
            Output::Close { code, .. } => format!("<close {code} discarding>"),
            Output::Message(m) => format!("<message {m:?}>"),
            Output::Event(e) => format!("<event {e:?}>"),
            Output::LayerRejected(r) => format!("<rejected {r:?}>"),
            Output::Gap(group) => format!("<gap {group}>"),
            Output::Topic(request) => {
                let what = match &request.action {
                    chanx_proto::topic::TopicAction::Subscribe => "subscribe",
                    chanx_proto::topic::TopicAction::Unsubscribed => "unsubscribed",
                    chanx_proto::topic::TopicAction::Message(_) => "message",
                };
                format!("<topic {what} {}>", request.envelope.topic)
            }
        })
        .collect()
}

/// One line per layer command: `<join a,b>`, `<leave a>`, `<group_send g>`.
pub fn describe_layer(commands: &[LayerCommand]) -> Vec<String> {
    commands
        .iter()
        .map(|c| match c {
            LayerCommand::Join(groups) => format!("<join {}>", groups.join(",")),
            LayerCommand::Leave(groups) => format!("<leave {}>", groups.join(",")),
            LayerCommand::GroupSend { group, .. } => format!("<group_send {group}>"),
        })
        .collect()
}

/// The layer commands pending on `conn`, described.
pub fn layer_log<M: MessageSet, E: MessageSet>(conn: &mut Connection<M, E>) -> Vec<String> {
    describe_layer(&drain_layer(conn))
}

/// The frames among `outs`, parsed.
pub fn frames<M, E>(outs: &[Output<M, E>]) -> Vec<Value> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Frame(text) => Some(serde_json::from_str(text).unwrap()),
            _ => None,
        })
        .collect()
}

/// The envelopes of the pending `GroupSend` commands, with their target group.
pub fn group_sends<M: MessageSet, E: MessageSet>(
    conn: &mut Connection<M, E>,
) -> Vec<(String, Arc<LayerMessage>)> {
    drain_layer(conn)
        .into_iter()
        .filter_map(|c| match c {
            LayerCommand::GroupSend { group, message } => Some((group, message)),
            _ => None,
        })
        .collect()
}

/// Every pending output, then every pending layer command, described.
pub fn describe_all<M, E>(conn: &mut Connection<M, E>) -> Vec<String>
where
    M: MessageSet + Debug,
    E: MessageSet + Debug,
{
    let mut lines = describe(&drain(conn));
    lines.extend(layer_log(conn));
    lines
}
