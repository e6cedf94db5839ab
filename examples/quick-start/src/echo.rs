//! The echo endpoint's consumer.

use chanx::{Consumer, Context, HandlerResult, NoEvent, NoGroupMessage};

use crate::messages::{MessagePayload, MyIncomingMessage, MyOutgoingMessage};

/// Answers `ping` with `pong` and echoes text back.
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
