//! A topic type served as a whole endpoint: connecting to its route
//! subscribes the socket to the topic the path names, and frames need no
//! envelope.

use std::sync::Arc;

use chanx_proto::topic::{Envelope, TopicPattern};

use super::{Topic, TopicCall, TopicRequestInfo};
use crate::consumer::{Consumer, Context, HandlerResult};
use crate::endpoint::{Endpoint, EndpointBuilder};
use crate::session::Command;
use crate::{NoEvent, NoGroupMessage};

/// The close code when the path names no topic the type serves (4000 +
/// 404, as a refused authentication would say "not found").
const NO_SUCH_TOPIC: u16 = 4404;
/// The close code when the topic type refuses the subscription.
const NOT_ALLOWED: u16 = 4403;

/// Serves `topic` on a route of its own. The topic is named by filling the
/// type's pattern with the route's path parameters of the same names
/// (`room:{room_id}` on `rooms/<room_id>/`); the connection is subscribed
/// once authenticated (closed with 4404 when the path names no topic of the
/// type, 4403 when the topic type refuses it), receives the topic's
/// broadcasts and its handler's frames without envelope, and its own frames
/// go to the topic's handler. Broadcasts reach these connections and
/// envelope subscribers alike.
///
/// ```
/// # use chanx::topic::{Topic, TopicContext};
/// # #[derive(serde::Deserialize, schemars::JsonSchema)]
/// # #[serde(tag = "action", content = "payload")] enum In { Say(String) }
/// # #[derive(serde::Serialize, schemars::JsonSchema)]
/// # #[serde(tag = "action", content = "payload")] enum Out { Said(String) }
/// # struct RoomTopic;
/// # impl Topic for RoomTopic {
/// #     const PATTERN: &'static str = "room:{room_id}";
/// #     type Incoming = In; type Outgoing = Out;
/// #     async fn receive(&self, ctx: &mut TopicContext<'_, Self>, m: In) -> chanx::HandlerResult {
/// #         let In::Say(text) = m; ctx.broadcast(&Out::Said(text)).await?; Ok(())
/// #     }
/// # }
/// use chanx::routing::{RouteTable, re_path};
///
/// let room = chanx::topic::route(RoomTopic).build().unwrap();
/// let routes = RouteTable::new([re_path(r"^rooms/(?P<room_id>\w+)/$", room)]).unwrap();
/// # let _ = routes;
/// ```
pub fn route<T: Topic>(topic: T) -> EndpointBuilder<TopicRoute<T>> {
    let topic = Arc::new(topic);
    let mounted = Arc::clone(&topic);
    Endpoint::builder(move || TopicRoute {
        topic: Arc::clone(&topic),
        subscribed: None,
    })
    .name(T::name())
    .topic(mounted)
}

/// The consumer of a topic served on its own route (see [`route`]).
pub struct TopicRoute<T> {
    topic: Arc<T>,
    /// The topic and its parameters, once subscribed.
    subscribed: Option<(String, Vec<(String, String)>)>,
}

impl<T> TopicRoute<T> {
    fn call<'a>(&'a self, connection: &'a mut dyn super::Perform) -> Option<TopicCall<'a>> {
        let (topic, params) = self.subscribed.as_ref()?;
        Some(TopicCall {
            connection,
            kind: 0,
            envelope: Envelope {
                topic: topic.clone(),
                reference: None,
            },
            params,
            bare: true,
        })
    }
}

/// The topic `pattern` names with the route's path parameters, if every
/// parameter is there and the result is a topic of the pattern.
fn topic_of(
    pattern: &TopicPattern,
    ctx: &Context<'_, impl Consumer>,
) -> Option<(String, Vec<(String, String)>)> {
    let mut topic = pattern.as_str().to_owned();
    for name in pattern.params() {
        let value = ctx.param(name)?;
        topic = topic.replace(&format!("{{{name}}}"), value);
    }
    let params = pattern.matches(&topic)?;
    Some((topic, params))
}

impl<T: Topic> Consumer for TopicRoute<T> {
    type Incoming = T::Incoming;
    type Outgoing = T::Outgoing;
    type Event = NoEvent;
    type GroupMessage = NoGroupMessage;

    async fn post_authentication(&mut self, ctx: &mut Context<'_, Self>) -> HandlerResult {
        let pattern = TopicPattern::parse(T::PATTERN)?;
        let Some((topic, params)) = topic_of(&pattern, ctx) else {
            tracing::info!(pattern = T::PATTERN, "the path names no topic of the type");
            ctx.close(NO_SUCH_TOPIC).await?;
            return Ok(());
        };
        let info = ctx.info();
        let request = TopicRequestInfo {
            user: info.user.as_ref(),
            handshake: info.handshake.get(),
            topic: &topic,
            params: &params,
        };
        if let Err(refusal) = super::decide(&*self.topic, None, &request).await {
            tracing::info!(topic, reason = refusal.reason(), "subscription refused");
            let code = match refusal {
                chanx_proto::topic::TopicRefusal::UnknownTopic => NO_SUCH_TOPIC,
                _ => NOT_ALLOWED,
            };
            ctx.close(code).await?;
            return Ok(());
        }
        ctx.perform(Command::TopicRoute {
            kind: 0,
            topic: topic.clone(),
            params: params.clone(),
        })
        .await?;
        self.subscribed = Some((topic, params));
        match self.call(ctx) {
            Some(call) => T::on_subscribe(&self.topic, &mut call.typed::<T>()).await,
            None => Ok(()),
        }
    }

    async fn receive_message(
        &mut self,
        ctx: &mut Context<'_, Self>,
        message: T::Incoming,
    ) -> HandlerResult {
        match self.call(ctx) {
            Some(call) => T::receive(&self.topic, &mut call.typed::<T>(), message).await,
            None => Ok(()),
        }
    }
}

impl<T: Topic> Topic for Arc<T> {
    const PATTERN: &'static str = T::PATTERN;
    type Incoming = T::Incoming;
    type Outgoing = T::Outgoing;

    fn name() -> String {
        T::name()
    }

    fn exists(&self, request: &TopicRequestInfo<'_>) -> bool {
        (**self).exists(request)
    }

    async fn authorize(&self, request: &TopicRequestInfo<'_>) -> bool {
        (**self).authorize(request).await
    }

    async fn on_subscribe(&self, ctx: &mut super::TopicContext<'_, Self>) -> HandlerResult {
        (**self).on_subscribe(&mut ctx.retyped()).await
    }

    async fn on_unsubscribe(&self, ctx: &mut super::TopicContext<'_, Self>) -> HandlerResult {
        (**self).on_unsubscribe(&mut ctx.retyped()).await
    }

    async fn receive(
        &self,
        ctx: &mut super::TopicContext<'_, Self>,
        message: T::Incoming,
    ) -> HandlerResult {
        (**self).receive(&mut ctx.retyped(), message).await
    }
}
