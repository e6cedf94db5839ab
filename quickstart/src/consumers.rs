//! The Quick Start's consumers (`myapp/consumers.py` in chanx's Quick
//! Start (Python)).

use chanx::{Consumer, Context, HandlerResult, NoEvent, NoGroupMessage};

use crate::messages::{
    ChatEvent, ChatGroupMessage, MessagePayload, MyIncomingMessage, MyOutgoingMessage,
};

/// Simple echo consumer with authentication.
#[derive(Debug, Default)]
pub struct EchoConsumer;

impl Consumer for EchoConsumer {
    type Incoming = MyIncomingMessage;
    type Outgoing = MyOutgoingMessage;
    type Event = NoEvent;
    type GroupMessage = NoGroupMessage;

    async fn receive_message(
        &mut self,
        ctx: &mut Context<'_, Self>,
        message: MyIncomingMessage,
    ) -> HandlerResult {
        match message {
            MyIncomingMessage::Ping => ctx.send_message(&MyOutgoingMessage::Pong(())).await?,
            MyIncomingMessage::Echo(payload) => {
                let content = format!("Echo: {}", payload.content);
                ctx.send_message(&MyOutgoingMessage::Echo(MessagePayload { content }))
                    .await?
            }
        }
        Ok(())
    }
}

/// Chat consumer with room-based groups and event handling.
#[derive(Debug, Default)]
pub struct ChatConsumer;

impl Consumer for ChatConsumer {
    type Incoming = MyIncomingMessage;
    type Outgoing = MyOutgoingMessage;
    type Event = ChatEvent;
    type GroupMessage = ChatGroupMessage;

    async fn build_groups(&mut self, ctx: &Context<'_, Self>) -> Vec<String> {
        let room_id = ctx.param("room_id").unwrap_or("lobby");
        vec![format!("chat_{room_id}")]
    }

    async fn receive_message(
        &mut self,
        ctx: &mut Context<'_, Self>,
        message: MyIncomingMessage,
    ) -> HandlerResult {
        match message {
            MyIncomingMessage::Ping => ctx.send_message(&MyOutgoingMessage::Pong(())).await?,
            MyIncomingMessage::Echo(payload) => {
                let username = ctx.user().map_or("Anonymous", |u| u.username.as_str());
                let content = format!("{username}: {}", payload.content);
                ctx.send_group_message(&ChatGroupMessage::ChatMessage(MessagePayload { content }))
                    .await?
            }
        }
        Ok(())
    }

    async fn receive_event(
        &mut self,
        ctx: &mut Context<'_, Self>,
        event: ChatEvent,
    ) -> HandlerResult {
        match event {
            ChatEvent::Notify(payload) => {
                let content = format!("{}: {}", payload.level.to_uppercase(), payload.content);
                ctx.send_message(&MyOutgoingMessage::Echo(MessagePayload { content }))
                    .await?
            }
        }
        Ok(())
    }
}
