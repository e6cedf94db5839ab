//! The connection's side of topics: subscriptions, the topic frames it
//! answers itself, and what runtimes report back.

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Connection, Handled, LayerCommand, Output, State};
use crate::codec::{Decoded, Serialized};
use crate::error::{EncodeError, ProtoError, SendError};
use crate::message::{CoreFrame, MessageSet};
use crate::topic::{self, Envelope, TopicAction, TopicRefusal, TopicRequest};

/// One subscription of the connection.
#[derive(Debug)]
pub(super) struct Subscription {
    /// The topic type (index into the protocol's topics).
    pub(super) kind: usize,
    /// The channel-layer group of the topic.
    pub(super) group: String,
    /// The pattern's parameters.
    pub(super) params: Vec<(String, String)>,
    /// The join is done and the group not left: broadcasts are delivered.
    pub(super) joined: bool,
    /// The connection ended and the group was left.
    pub(super) left: bool,
    /// The endpoint serves this one topic on its own route: frames carry
    /// no envelope and no confirmation is sent.
    pub(super) bare: bool,
}

/// The payload of a topic error frame.
#[derive(Serialize)]
struct TopicError<'a> {
    reason: &'a str,
    detail: String,
}

impl<M: MessageSet, E: MessageSet> Connection<M, E> {
    /// Handles a frame that may name a topic; `false` when it names none
    /// (the endpoint's own handlers take it).
    pub(super) fn handle_topic_frame(&mut self, text: &str) -> bool {
        // A topic on its own route takes no envelope frames: its frames go
        // to its handler, and nothing may subscribe past the route.
        if self.subscriptions.values().any(|s| s.bare) {
            return false;
        }
        let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
            return false;
        };
        let frame = match topic::split_envelope(object, self.protocol.options.max_topic_length) {
            Ok(None) => return false,
            Ok(Some(frame)) => frame,
            Err(errors) => {
                // A malformed envelope: the errors, and no `complete`.
                self.emit_core(&CoreFrame {
                    action: "error",
                    payload: errors,
                });
                return true;
            }
        };
        let envelope = frame.envelope;
        let options = &self.protocol.options;
        let action_of = |key: &str| frame.message.get(key).and_then(Value::as_str);
        // Keys arrive camelized on a camelizing endpoint.
        let action = if options.camelize {
            crate::case::with_camelized(&options.action_key, action_of)
        } else {
            action_of(&options.action_key)
        };
        match action {
            Some("subscribe") => self.request_subscription(envelope),
            Some("unsubscribe") => self.unsubscribe(envelope),
            _ => self.topic_message(envelope, frame.message),
        }
        true
    }

    /// The mounted topic type whose pattern `topic` matches, with the
    /// parameters it captures.
    fn find_topic_type(&self, topic: &str) -> Option<(usize, Vec<(String, String)>)> {
        self.protocol
            .topics
            .iter()
            .enumerate()
            .find_map(|(kind, t)| t.pattern().matches(topic).map(|params| (kind, params)))
    }

    fn request_subscription(&mut self, envelope: Envelope) {
        let Some((kind, params)) = self.find_topic_type(&envelope.topic) else {
            return self.refuse_topic(&envelope, TopicRefusal::UnknownTopic);
        };
        if self.subscriptions.contains_key(&envelope.topic) {
            // Subscribing twice confirms again.
            return self.emit_topic_frame("subscribed", &envelope);
        }
        if self.subscriptions.len() >= self.protocol.options.max_subscriptions {
            return self.refuse_topic(&envelope, TopicRefusal::TooManySubscriptions);
        }
        self.requested.insert(envelope.topic.clone());
        self.outputs.push_back(Output::Topic(TopicRequest {
            kind,
            envelope,
            params,
            action: TopicAction::Subscribe,
        }));
    }

    fn unsubscribe(&mut self, envelope: Envelope) {
        // A subscription still being authorised is withdrawn.
        self.requested.remove(&envelope.topic);
        let removed = self.subscriptions.remove(&envelope.topic);
        if let Some(subscription) = &removed
            && !self.group_in_use(&subscription.group)
        {
            // Also when its join is still pending: the layer performs
            // commands in order, so the leave comes after it.
            self.layer
                .push_back(LayerCommand::Leave(vec![subscription.group.clone()]));
        }
        // Confirmed even when the client was not subscribed.
        self.emit_topic_frame("unsubscribed", &envelope);
        if let Some(subscription) = removed {
            self.outputs.push_back(Output::Topic(TopicRequest {
                kind: subscription.kind,
                envelope,
                params: subscription.params,
                action: TopicAction::Unsubscribed,
            }));
        }
    }

    fn topic_message(&mut self, envelope: Envelope, message: serde_json::Map<String, Value>) {
        let Some(subscription) = self.subscriptions.get(&envelope.topic) else {
            let refusal = if self.find_topic_type(&envelope.topic).is_some() {
                TopicRefusal::NotSubscribed
            } else {
                TopicRefusal::UnknownTopic
            };
            return self.refuse_topic(&envelope, refusal);
        };
        let kind = subscription.kind;
        let params = subscription.params.clone();
        let topic_type = &self.protocol.topics[kind];
        match topic::decode_message(topic_type, message, self.protocol.options.camelize) {
            Decoded::Message(message) => {
                self.pending_topic_messages.push(envelope.clone());
                self.outputs.push_back(Output::Topic(TopicRequest {
                    kind,
                    envelope,
                    params,
                    action: TopicAction::Message(message),
                }));
            }
            Decoded::BuiltinPing => {
                self.emit_topic_frame("pong", &envelope);
                self.complete("complete", Some(&envelope));
            }
            Decoded::Invalid(errors) => self.reject(errors, Some(&envelope)),
        }
    }

    fn emit_topic_frame(&mut self, action: &'static str, envelope: &Envelope) {
        self.emit_core_on(
            &CoreFrame {
                action,
                payload: (),
            },
            Some(envelope),
        );
    }

    /// Whether another subscription or the endpoint's own groups still use
    /// `group` (two topic names may clean to one group name).
    fn group_in_use(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
            || self.subscriptions.values().any(|s| s.group == group)
    }

    /// The runtime authorised the subscription of `request`: the
    /// connection joins the topic's group (one [`LayerCommand::Join`]);
    /// once the runtime performed it, it calls
    /// [`subscription_joined`](Self::subscription_joined), which confirms.
    /// `false` when no join was queued (the request was withdrawn by an
    /// unsubscribe, the topic is already subscribed, the cap is reached):
    /// then there is nothing to confirm and no subscribe hook to run.
    pub fn accept_subscription(&mut self, request: &TopicRequest) -> bool {
        if self.state != State::Open {
            return false;
        }
        let envelope = &request.envelope;
        let requested = self.requested.remove(&envelope.topic);
        if self.subscriptions.contains_key(&envelope.topic) {
            self.emit_topic_frame("subscribed", envelope);
            return false;
        }
        if !requested {
            // Withdrawn by an unsubscribe meanwhile (already confirmed).
            return false;
        }
        if self.subscriptions.len() >= self.protocol.options.max_subscriptions {
            self.refuse_topic(envelope, TopicRefusal::TooManySubscriptions);
            return false;
        }
        let params = request.params.clone();
        if !self.join_topic(request.kind, &envelope.topic, params, false) {
            self.refuse_topic(envelope, TopicRefusal::UnknownTopic);
            return false;
        }
        true
    }

    /// Records a subscription to `topic` of the type `kind` and queues the
    /// join of its group; `false` for a kind the protocol does not have.
    fn join_topic(
        &mut self,
        kind: usize,
        topic: &str,
        params: Vec<(String, String)>,
        bare: bool,
    ) -> bool {
        let Some(topic_type) = self.protocol.topics.get(kind) else {
            return false;
        };
        let group = topic::group_name(topic_type.name(), topic);
        self.layer
            .push_back(LayerCommand::Join(vec![group.clone()]));
        let subscription = Subscription {
            kind,
            group,
            params,
            joined: false,
            left: false,
            bare,
        };
        self.subscriptions.insert(topic.to_owned(), subscription);
        true
    }

    /// The join of an accepted subscription is done: broadcasts reach the
    /// client from now on, and it gets `subscribed` (with its `ref`).
    pub fn subscription_joined(&mut self, envelope: &Envelope) {
        if self.state != State::Open {
            return;
        }
        if let Some(subscription) = self.subscriptions.get_mut(&envelope.topic) {
            subscription.joined = true;
            if !subscription.bare {
                self.emit_topic_frame("subscribed", envelope);
            }
        }
    }

    /// For an endpoint serving one topic type on its own route: subscribes
    /// the connection to `topic` (authorised by the runtime) without any
    /// frame; broadcasts then arrive without envelope, like the endpoint's
    /// own messages. Join with the [`LayerCommand::Join`] queued here, then
    /// call [`subscription_joined`](Self::subscription_joined).
    pub fn subscribe_route(
        &mut self,
        kind: usize,
        topic: &str,
        params: Vec<(String, String)>,
    ) -> bool {
        self.state == State::Open
            && !self.subscriptions.contains_key(topic)
            && self.join_topic(kind, topic, params, true)
    }

    /// Refuses a topic request with an error frame carrying its envelope.
    pub fn refuse_topic(&mut self, envelope: &Envelope, refusal: TopicRefusal) {
        self.requested.remove(&envelope.topic);
        let limit = self.protocol.options.max_subscriptions;
        self.emit_core_on(
            &CoreFrame {
                action: "error",
                payload: TopicError {
                    reason: refusal.reason(),
                    detail: refusal.detail(&envelope.topic, limit),
                },
            },
            Some(envelope),
        );
    }

    /// Reports that the handler of the topic message `envelope` came with
    /// finished (topic messages may finish in any order with concurrent
    /// handlers): the failure's error frame and `complete` carry its
    /// envelope.
    pub fn topic_message_handled(
        &mut self,
        handled: Handled,
        envelope: &Envelope,
    ) -> Result<(), ProtoError> {
        let Some(at) = self
            .pending_topic_messages
            .iter()
            .position(|pending| pending == envelope)
        else {
            return Err(ProtoError::NothingPending("topic message"));
        };
        // Equal envelopes are interchangeable: order does not matter.
        self.pending_topic_messages.swap_remove(at);
        self.finish_message(handled, Some(envelope));
        Ok(())
    }

    /// Sends a message on a topic: a direct reply when the envelope has
    /// the request's `ref`, a push to this client when it has none.
    pub fn send_topic(
        &mut self,
        message: Serialized,
        envelope: &Envelope,
    ) -> Result<(), SendError> {
        self.check_can_send()?;
        let frame = message.into_frame(self.protocol.options.camelize)?;
        self.push_frame(envelope.stamp(&frame, None));
        Ok(())
    }

    /// Broadcasts `content` (a serialized JSON object) to every subscriber
    /// of `topic`, a topic of the type `kind`, in every process sharing the
    /// channel layer.
    pub fn broadcast_topic(
        &mut self,
        kind: usize,
        topic: &str,
        content: Box<RawValue>,
    ) -> Result<(), SendError> {
        self.check_can_send()?;
        let topic_type = self
            .protocol
            .topics
            .get(kind)
            .ok_or(EncodeError::NotAnObject)?;
        let (group, message) = topic::broadcast(topic_type.name(), topic, content)?;
        self.layer.push_back(LayerCommand::GroupSend {
            group,
            message: std::sync::Arc::new(message),
        });
        Ok(())
    }

    /// The topics subscribed to, with their type and parameters.
    pub fn subscriptions(&self) -> impl Iterator<Item = (&str, usize, &[(String, String)])> {
        self.subscriptions
            .iter()
            .map(|(topic, s)| (topic.as_str(), s.kind, s.params.as_slice()))
    }
}
