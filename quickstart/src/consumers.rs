//! The Quick Start's consumers (`myapp/consumers.py` in chanx's Quick
//! Start (Python)): the guide's own (`examples/quick-start`, shown file by
//! file in docs/quick-start.md), so that the program runs exactly the code
//! the guide teaches.

pub use quick_start::chat::ChatConsumer;
pub use quick_start::echo::EchoConsumer;
