//! Arbitrary bytes as an HTTP upgrade request head, parsed as hyper parses
//! it (httparse), into `Server::prepare` and the handshake's accessors
//! (cookies, query, path parameters): never a panic, and the decision
//! follows the routes and the origin policy exactly.

use std::net::SocketAddr;

use chanx::layer::InMemoryLayer;
use chanx::routing::{RouteTable, path, re_path};
use chanx::{
    Consumer, Context, Endpoint, HandlerResult, NoEvent, NoGroupMessage, OriginPolicy, Refusal,
    Server,
};
use http::{HeaderMap, HeaderName, HeaderValue};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
enum Incoming {
    Ping,
}

#[derive(Default)]
struct Nothing;

impl Consumer for Nothing {
    type Incoming = Incoming;
    type Outgoing = chanx::NoOutgoing;
    type Event = NoEvent;
    type GroupMessage = NoGroupMessage;

    async fn receive_message(&mut self, _: &mut Context<'_, Self>, _: Incoming) -> HandlerResult {
        Ok(())
    }
}

/// The one origin the server allows.
const ALLOWED_ORIGIN: &str = "http://localhost:8000";

/// The server every input meets: the quickstart's two routes and its
/// origin list (built once: compiling the routes costs more than a run).
fn server() -> &'static Server {
    static SERVER: std::sync::OnceLock<Server> = std::sync::OnceLock::new();
    SERVER.get_or_init(build_server)
}

fn build_server() -> Server {
    let endpoint = || {
        Endpoint::builder(Nothing::default)
            .build()
            .expect("an endpoint")
    };
    let routes = RouteTable::new([
        path("ws/myapp/echo/", endpoint()),
        re_path(r"^ws/myapp/chat/(?P<room_id>\w{1,100})/$", endpoint()),
    ])
    .expect("routes");
    Server::new(routes, InMemoryLayer::new()).origins(OriginPolicy::allow_list([ALLOWED_ORIGIN]))
}

/// Checks `data` (taken as is, as the fuzzer hands it over).
pub fn run(data: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = request.parse(data) else {
        return;
    };
    let Some(target) = request.path else { return };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let mut map = HeaderMap::new();
    for header in request.headers.iter() {
        // hyper refuses a request with such a header before any handler.
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_bytes(header.value),
        ) else {
            return;
        };
        map.append(name, value);
    }
    let server = server();
    let routed = server.routes().resolve(path).is_some();
    let origin_ok = OriginPolicy::allow_list([ALLOWED_ORIGIN]).allows_request(&map);
    let peer: SocketAddr = ([127, 0, 0, 1], 4000).into();
    match server.prepare(path, query, map, Some(peer)) {
        Ok(upgrade) => {
            assert!(routed && origin_ok, "accepted {path:?}");
            let handshake = upgrade.handshake();
            let _ = handshake.cookie("sessionid");
            let _ = handshake.cookie("");
            let _ = handshake.query_param("token");
            let _ = handshake.param("room_id");
            let _ = handshake.header("origin");
            let _ = handshake.request_id();
        }
        Err(Refusal::NotFound) => assert!(!routed, "{path:?} routes"),
        Err(Refusal::ForbiddenOrigin) => assert!(routed && !origin_ok),
        Err(Refusal::ShuttingDown) => panic!("nothing shuts this server down"),
    }
}
