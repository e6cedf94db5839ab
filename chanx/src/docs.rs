//! Machine-readable descriptions of the endpoints: the playground's
//! `websocket-info` list and an AsyncAPI 3.0 document, both generated from
//! the message types' JSON Schemas.

use serde::Serialize;
use serde_json::{Map, Value, json};

use chanx_proto::MessageSchema;

use crate::endpoint::Endpoint;
use crate::routing::RouteTable;

/// The playground page: lists the endpoints from `../websocket-info/`,
/// fills in path parameters, connects, sends examples or any JSON, and
/// shows the frames exchanged. Serve it at `.../playground/websocket/`.
pub const PLAYGROUND_HTML: &str = include_str!("playground.html");

/// One example message of an endpoint.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MessageExample {
    /// The message's name (its tag in PascalCase).
    pub name: String,
    /// The variant's doc comment, if any.
    pub description: String,
    /// A valid instance.
    pub example: Value,
}

/// A path parameter of an endpoint.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PathParamDoc {
    /// The parameter's name.
    pub name: String,
    /// Its regular expression.
    pub pattern: String,
    /// A description.
    pub description: String,
}

/// One entry of `GET .../websocket-info/` (docs/protocol.md, "Playground
/// and AsyncAPI").
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EndpointDoc {
    /// The consumer's name.
    pub name: String,
    /// Full URL with the raw pattern.
    pub url: String,
    /// Full URL with parameters written `:name`.
    pub friendly_url: String,
    /// The endpoint's description.
    pub description: String,
    /// A valid example of every incoming message.
    pub message_examples: Vec<MessageExample>,
    /// An example of every message the endpoint's handlers send
    /// ([`Consumer::Outgoing`](crate::Consumer::Outgoing)) and of every
    /// group message its clients receive (with `is_mine` and `is_current`).
    pub outgoing_examples: Vec<MessageExample>,
    /// The path parameters.
    pub path_params: Vec<PathParamDoc>,
    /// The topic types clients may subscribe to on this endpoint (beyond
    /// chanx 0.12).
    pub topics: Vec<TopicDoc>,
}

/// A topic type of an endpoint, for the playground.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TopicDoc {
    /// The type's name.
    pub name: String,
    /// Its pattern, e.g. `room:{room_id}`.
    pub pattern: String,
    /// The pattern's parameters.
    pub params: Vec<String>,
    /// A valid example of every message subscribers send (without the
    /// envelope).
    pub message_examples: Vec<MessageExample>,
    /// An example of every message the topic sends.
    pub outgoing_examples: Vec<MessageExample>,
}

/// The playground's endpoint list; `base_url` is e.g. `ws://localhost:8000`.
pub fn websocket_info(routes: &RouteTable<Endpoint>, base_url: &str) -> Vec<EndpointDoc> {
    let base = base_url.trim_end_matches('/');
    routes
        .routes()
        .map(|route| {
            let info = route.target.info();
            let mut examples = message_examples(&info.incoming);
            let mut outgoing = message_examples(&info.outgoing);
            for mut group in message_examples(&info.group_messages) {
                if let Value::Object(frame) = &mut group.example {
                    frame.insert("is_mine".into(), Value::Bool(false));
                    frame.insert("is_current".into(), Value::Bool(false));
                }
                outgoing.push(group);
            }
            if info.options.camelize {
                for e in examples.iter_mut().chain(&mut outgoing) {
                    e.example = chanx_proto::case::convert_keys(
                        e.example.take(),
                        chanx_proto::case::camelize,
                    );
                }
            }
            EndpointDoc {
                name: info.name.clone(),
                url: format!("{base}/{}", route.pattern),
                friendly_url: format!("{base}/{}", route.friendly_path),
                description: info.description.clone(),
                message_examples: examples,
                outgoing_examples: outgoing,
                topics: info.topics.iter().map(topic_doc).collect(),
                path_params: route
                    .params
                    .iter()
                    .map(|p| PathParamDoc {
                        name: p.name.clone(),
                        pattern: p.pattern.clone(),
                        description: format!("Path parameter: {}", p.name),
                    })
                    .collect(),
            }
        })
        .collect()
}

fn topic_doc(topic: &crate::topic::TopicInfo) -> TopicDoc {
    TopicDoc {
        name: topic.name.clone(),
        pattern: topic.pattern.clone(),
        params: topic.params.clone(),
        message_examples: message_examples(&topic.incoming),
        outgoing_examples: message_examples(&topic.outgoing),
    }
}

fn pascal_case(tag: &str) -> String {
    tag.split(['_', '-'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// A valid example of each message of a set, in declaration order.
pub fn message_examples(set: &MessageSchema) -> Vec<MessageExample> {
    set.variants()
        .map(|(tag, variant)| {
            let mut example = example_of(variant, set.defs(), 0);
            if let Value::Object(map) = &mut example
                && variant
                    .get("properties")
                    .and_then(Value::as_object)
                    .is_some_and(|p| p.len() == 1)
            {
                map.insert("payload".into(), Value::Null);
            }
            MessageExample {
                name: pascal_case(tag),
                description: variant
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                example,
            }
        })
        .collect()
}

fn example_of(schema: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    if depth > 16 {
        return Value::Null;
    }
    if let Some(name) = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        return defs
            .get(name)
            .map_or(Value::Null, |s| example_of(s, defs, depth + 1));
    }
    if let Some(v) = schema.get("const") {
        return v.clone();
    }
    if let Some(v) = schema.get("default") {
        return v.clone();
    }
    if let Some(Value::Array(choices)) = schema.get("enum") {
        return choices.first().cloned().unwrap_or(Value::Null);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = schema.get(key) {
            let branch = branches
                .iter()
                .find(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                .or(branches.first());
            return branch.map_or(Value::Null, |b| example_of(b, defs, depth + 1));
        }
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "null",
    };
    match ty {
        "string" => {
            let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
            Value::String("string".chars().cycle().take(min.max(6)).collect())
        }
        "integer" => json!(schema.get("minimum").and_then(Value::as_i64).unwrap_or(0)),
        "number" => json!(schema.get("minimum").and_then(Value::as_f64).unwrap_or(0.0)),
        "boolean" => json!(true),
        "array" => Value::Array(Vec::new()),
        "object" => {
            let mut out = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    out.insert(name.clone(), example_of(prop, defs, depth + 1));
                }
            }
            Value::Object(out)
        }
        _ => Value::Null,
    }
}

/// An AsyncAPI 3.0 document describing every endpoint: one channel per
/// route (address, parameters), a `receive` operation for what clients
/// send, a `send` operation for what the server sends (the handlers'
/// [`Consumer::Outgoing`](crate::Consumer::Outgoing) set, the group
/// messages and the framework's frames), the built-in `ping` with its
/// `pong` reply, and every payload schema under `components.schemas`.
pub fn asyncapi(routes: &RouteTable<Endpoint>, title: &str, server_host: &str) -> Value {
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut schemas = Map::new();
    for route in routes.routes() {
        let info = route.target.info();
        let mut id = info.name.clone();
        let mut n = 1;
        while channels.contains_key(&id) {
            n += 1;
            id = format!("{}{n}", info.name);
        }
        let mut channel = ChannelDoc::new(&id, &mut schemas);
        let received = channel.add_set(&info.incoming, "", "", |_| {});
        let mut sent = channel.add_set(&info.outgoing, "send_", "Outgoing", |_| {});
        sent.extend(channel.add_set(&info.group_messages, "group_", "Group", add_group_fields));
        sent.extend(channel.add_framework_frames(&info.options));
        let ping_reply = info
            .incoming
            .variant(chanx_proto::codec::PING)
            .is_none()
            .then(|| channel.add_builtin_ping());
        let parameters: Map<String, Value> = route
            .params
            .iter()
            .map(|p| {
                let description = format!("Path parameter `{}`, matching `{}`.", p.name, p.pattern);
                (p.name.clone(), json!({ "description": description }))
            })
            .collect();
        let channel_ref = json!({ "$ref": format!("#/channels/{id}") });
        let address = asyncapi_address(&route.friendly_path, &route.params);
        channels.insert(
            id.clone(),
            json!({
                "address": address,
                "description": info.description,
                "parameters": parameters,
                "messages": channel.messages,
            }),
        );
        operations.insert(
            format!("{id}_receive"),
            json!({ "action": "receive", "channel": channel_ref, "summary": "What clients send.", "messages": received }),
        );
        operations.insert(
            format!("{id}_send"),
            json!({ "action": "send", "channel": channel_ref, "summary": "What the server sends its clients.", "messages": sent }),
        );
        for topic in &info.topics {
            let topic_id = format!("{id}_{}", topic.name);
            let mut topic_channel = ChannelDoc::new(&topic_id, &mut schemas);
            let mut received = topic_channel.add_topic_requests();
            received.extend(topic_channel.add_set(&topic.incoming, "", "TopicIn", |p| {
                add_envelope_fields(p, true)
            }));
            let mut sent = topic_channel.add_set(&topic.outgoing, "send_", "TopicOut", |p| {
                add_envelope_fields(p, false)
            });
            sent.extend(topic_channel.add_topic_frames());
            let topic_ref = json!({ "$ref": format!("#/channels/{topic_id}") });
            channels.insert(
                topic_id.clone(),
                json!({
                    "address": address,
                    "description": format!("Topics `{}` of {}: frames carry the envelope keys `version`, `topic` and `ref`.", topic.pattern, info.name),
                    "parameters": parameters,
                    "messages": topic_channel.messages,
                    "x-topic": {
                        "name": topic.name,
                        "pattern": topic.pattern,
                        "parameters": topic.params,
                    },
                }),
            );
            operations.insert(
                format!("{topic_id}_receive"),
                json!({ "action": "receive", "channel": topic_ref, "summary": "What subscribers send on a topic.", "messages": received }),
            );
            operations.insert(
                format!("{topic_id}_send"),
                json!({ "action": "send", "channel": topic_ref, "summary": "What a topic sends: replies, pushes, broadcasts.", "messages": sent }),
            );
        }
        if let Some((ping, pong)) = ping_reply {
            operations.insert(
                format!("{id}_ping"),
                json!({ "action": "receive", "channel": channel_ref,
                        "summary": "Built-in liveness check (the endpoint declares no `ping` of its own).",
                        "messages": [ping], "reply": { "channel": channel_ref, "messages": [pong] } }),
            );
        }
    }
    json!({
        "asyncapi": "3.0.0",
        "info": { "title": title, "version": env!("CARGO_PKG_VERSION") },
        "servers": { "default": { "host": server_host, "protocol": "ws" } },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": { "schemas": schemas },
    })
}

/// The messages of one channel as they are being collected, and the
/// shared `components.schemas` their payloads point into.
struct ChannelDoc<'a> {
    id: &'a str,
    messages: Map<String, Value>,
    schemas: &'a mut Map<String, Value>,
}

impl<'a> ChannelDoc<'a> {
    fn new(id: &'a str, schemas: &'a mut Map<String, Value>) -> Self {
        ChannelDoc {
            id,
            messages: Map::new(),
            schemas,
        }
    }

    /// A message of this channel; the reference an operation lists.
    fn add_message(&mut self, key: String, message: Value) -> Value {
        let reference = json!({ "$ref": format!("#/channels/{}/messages/{key}", self.id) });
        self.messages.insert(key, message);
        reference
    }

    /// Every variant of `set` as a message keyed `<key_prefix><tag>`, its
    /// definitions under `<endpoint>_` (or `<endpoint>_<kind>_` where a
    /// name is taken by a different schema, as two sets of one endpoint
    /// may each have a `Payload`); `decorate` adds what the frame carries
    /// beside the payload (a group message's flags, a topic's envelope).
    fn add_set(
        &mut self,
        set: &MessageSchema,
        key_prefix: &str,
        kind: &str,
        decorate: impl Fn(&mut Value),
    ) -> Vec<Value> {
        let shared = format!("{}_", self.id);
        let clashes = set.defs().iter().any(|(name, def)| {
            self.schemas
                .get(&format!("{shared}{name}"))
                .is_some_and(|known| *known != rewrite_refs(def.clone(), &shared))
        });
        let prefix = if clashes {
            format!("{}_{kind}_", self.id)
        } else {
            shared
        };
        for (name, def) in set.defs() {
            self.schemas.insert(
                format!("{prefix}{name}"),
                rewrite_refs(def.clone(), &prefix),
            );
        }
        set.variants()
            .map(|(tag, variant)| {
                let mut payload = rewrite_refs(variant.clone(), &prefix);
                decorate(&mut payload);
                let mut message =
                    json!({ "name": tag, "title": pascal_case(tag), "payload": payload });
                if let Some(description) = variant.get("description") {
                    message["summary"] = description.clone();
                }
                self.add_message(format!("{key_prefix}{tag}"), message)
            })
            .collect()
    }

    /// `subscribe` and `unsubscribe`, which every topic takes.
    fn add_topic_requests(&mut self) -> Vec<Value> {
        [
            (
                "subscribe",
                "Subscribe to the topic; answered with `subscribed` (or an error).",
            ),
            (
                "unsubscribe",
                "Unsubscribe from the topic; answered with `unsubscribed`.",
            ),
        ]
        .into_iter()
        .map(|(action, summary)| {
            let mut message = framework_message(action, summary, json!({ "type": "null" }));
            message["payload"]["required"] = json!(["action"]);
            add_envelope_fields(&mut message["payload"], true);
            self.add_message(format!("framework_{action}"), message)
        })
        .collect()
    }

    /// The frames the core answers topic requests with.
    fn add_topic_frames(&mut self) -> Vec<Value> {
        let confirmation = |action: &str, summary: &str| {
            let mut message = framework_message(action, summary, json!({ "type": "null" }));
            add_envelope_fields(&mut message["payload"], false);
            message
        };
        let mut error = framework_message(
            "error",
            "A refused topic request: `reason` is unknown_topic, unauthorized, not_subscribed or too_many_subscriptions.",
            json!({
                "type": "object",
                "properties": { "reason": { "type": "string" }, "detail": { "type": "string" } },
                "required": ["reason", "detail"],
            }),
        );
        add_envelope_fields(&mut error["payload"], false);
        let frames = [
            (
                "subscribed",
                confirmation(
                    "subscribed",
                    "The subscription is effective (answers `subscribe`, with its `ref`).",
                ),
            ),
            (
                "unsubscribed",
                confirmation("unsubscribed", "Answers `unsubscribe`, with its `ref`."),
            ),
            ("error", error),
        ];
        frames
            .into_iter()
            .map(|(action, message)| self.add_message(format!("framework_{action}"), message))
            .collect()
    }

    /// The frames the framework itself may send on this endpoint.
    fn add_framework_frames(&mut self, options: &chanx_proto::Options) -> Vec<Value> {
        let mut frames = Vec::new();
        if options.send_authentication_message {
            frames.push(("authentication", "The authentication result, first after the upgrade (a refusal is followed by close code 4000 + status).", json!({
                "type": "object",
                "properties": {
                    "status_code": { "type": "integer" },
                    "status_text": { "type": "string" },
                    "data": { "type": "object" },
                },
                "required": ["status_code", "status_text", "data"],
            })));
        }
        frames.push(("error", "A refused frame (a list of validation errors) or a failed handler (`detail`).", json!({
            "oneOf": [
                { "type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "type": { "type": "string" },
                        "loc": { "type": "array", "items": { "type": ["string", "integer"] } },
                        "msg": { "type": "string" },
                    },
                    "required": ["type", "loc", "msg"],
                } },
                { "type": "object", "properties": { "detail": { "type": "string" } }, "required": ["detail"] },
            ],
        })));
        if options.send_completion {
            frames.push((
                "complete",
                "An incoming frame or a channel event has been handled.",
                json!({ "type": "null" }),
            ));
            frames.push((
                "group_complete",
                "A group message has been relayed.",
                json!({ "type": "null" }),
            ));
        }
        if options.send_gap_frames {
            frames.push((
                "group_gap",
                "The channel layer may have lost messages for this group: fetch its state again.",
                json!({
                    "type": "object",
                    "properties": { "group": { "type": "string" } },
                    "required": ["group"],
                }),
            ));
        }
        frames
            .into_iter()
            .map(|(action, summary, payload)| {
                let message = framework_message(action, summary, payload);
                self.add_message(format!("framework_{action}"), message)
            })
            .collect()
    }

    /// The built-in `ping` and its `pong` reply.
    fn add_builtin_ping(&mut self) -> (Value, Value) {
        let ping = framework_message(
            "ping",
            "Liveness check; answered with `pong`.",
            json!({ "type": "null" }),
        );
        let pong = framework_message("pong", "The answer to `ping`.", json!({ "type": "null" }));
        (
            self.add_message("framework_ping".into(), ping),
            self.add_message("framework_pong".into(), pong),
        )
    }
}

/// A message the framework defines: `{"action": <action>, "payload": ...}`
/// (framework frames always use the `action` key). The server always sends
/// the payload; a client's `ping` may leave it out.
fn framework_message(action: &str, summary: &str, payload: Value) -> Value {
    let required = if action == chanx_proto::codec::PING {
        json!(["action"])
    } else {
        json!(["action", "payload"])
    };
    json!({
        "name": action,
        "title": pascal_case(action),
        "summary": summary,
        "payload": {
            "type": "object",
            "properties": { "action": { "type": "string", "const": action }, "payload": payload },
            "required": required,
        },
    })
}

/// A topic frame's envelope keys: `version` and `topic` always, `ref` on
/// requests and direct replies (optional in both).
fn add_envelope_fields(payload: &mut Value, from_client: bool) {
    if let Some(properties) = payload.get_mut("properties").and_then(Value::as_object_mut) {
        properties.insert("version".into(), json!({ "type": "integer", "const": 1 }));
        properties.insert("topic".into(), json!({ "type": "string" }));
        properties.insert("ref".into(), json!({ "type": "string" }));
    }
    if let Some(required) = payload.get_mut("required").and_then(Value::as_array_mut) {
        required.push(json!("topic"));
        if !from_client {
            required.push(json!("version"));
        }
    }
}

/// A group message as its receivers get it: with `is_mine` (sent by another
/// connection of the same user) and `is_current` (sent by this connection).
fn add_group_fields(payload: &mut Value) {
    if let Some(properties) = payload.get_mut("properties").and_then(Value::as_object_mut) {
        properties.insert("is_mine".into(), json!({ "type": "boolean" }));
        properties.insert("is_current".into(), json!({ "type": "boolean" }));
    }
    if let Some(required) = payload.get_mut("required").and_then(Value::as_array_mut) {
        required.extend([json!("is_mine"), json!("is_current")]);
    }
}

/// The AsyncAPI address of a route: its friendly path with each `:name`
/// parameter written `{name}`.
fn asyncapi_address(friendly_path: &str, params: &[crate::routing::ParamInfo]) -> String {
    let mut out = String::with_capacity(friendly_path.len() + 1);
    out.push('/');
    let mut rest = friendly_path;
    while let Some(at) = rest.find(':') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let name = params
            .iter()
            .map(|p| p.name.as_str())
            .filter(|n| {
                after.starts_with(n)
                    && !after[n.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            })
            .max_by_key(|n| n.len());
        match name {
            Some(name) => {
                out.push('{');
                out.push_str(name);
                out.push('}');
                rest = &after[name.len()..];
            }
            None => {
                out.push(':');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Points JSON Schema `#/$defs/X` references at `#/components/schemas/<prefix>X`.
fn rewrite_refs(value: Value, prefix: &str) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        let r =
                            r.replacen("#/$defs/", &format!("#/components/schemas/{prefix}"), 1);
                        (k, Value::String(r))
                    }
                    (_, v) => (k, rewrite_refs(v, prefix)),
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| rewrite_refs(v, prefix)).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_follow_the_schema() {
        #[derive(schemars::JsonSchema, serde::Deserialize)]
        #[serde(tag = "action", content = "payload", rename_all = "snake_case")]
        #[allow(dead_code)]
        enum In {
            /// Echo text back.
            Echo {
                content: String,
            },
            Ping,
        }
        let set = MessageSchema::of::<In>("action").unwrap();
        let examples = message_examples(&set);
        assert_eq!(examples.len(), 2);
        assert_eq!(examples[0].name, "Echo");
        assert_eq!(examples[0].description, "Echo text back.");
        assert_eq!(
            examples[0].example,
            json!({"action": "echo", "payload": {"content": "string"}})
        );
        assert_eq!(
            examples[1].example,
            json!({"action": "ping", "payload": null})
        );
        let decoded: Result<In, _> = serde_json::from_value(examples[0].example.clone());
        assert!(decoded.is_ok());
    }
}

/// Where the playground, its endpoint list and the AsyncAPI document live.
pub mod paths {
    /// The playground page.
    pub const PLAYGROUND: &str = "/playground/websocket/";
    /// The playground's endpoint list.
    pub const WEBSOCKET_INFO: &str = "/playground/websocket-info/";
    /// The AsyncAPI 3.0 document.
    pub const ASYNCAPI: &str = "/asyncapi.json";
}

/// Answers a `GET` for one of the [`paths`], for any framework: the
/// playground page, the endpoint list (URLs on the request's host, `wss://`
/// behind a proxy that says `X-Forwarded-Proto: https` or
/// `Forwarded: proto=https`) or the AsyncAPI document (JSON, or YAML with
/// the query `format=yaml`). `None` for any other path.
///
/// ```
/// # use chanx::routing::RouteTable;
/// let routes: RouteTable<chanx::Endpoint> = RouteTable::new([]).unwrap();
/// let mut headers = http::HeaderMap::new();
/// headers.insert("host", "example.com".parse().unwrap());
/// headers.insert("x-forwarded-proto", "https".parse().unwrap());
/// let page = chanx::docs::respond(&routes, "/playground/websocket/", None, &headers).unwrap();
/// assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
/// let doc = chanx::docs::respond(&routes, "/asyncapi.json", None, &headers).unwrap();
/// assert!(doc.body().contains("example.com"));
/// let yaml = chanx::docs::respond(&routes, "/asyncapi.json", Some("format=yaml"), &headers).unwrap();
/// assert!(yaml.body().starts_with("asyncapi: 3.0.0"));
/// assert!(chanx::docs::respond(&routes, "/elsewhere/", None, &headers).is_none());
/// ```
pub fn respond(
    routes: &RouteTable<Endpoint>,
    path: &str,
    query: Option<&str>,
    headers: &http::HeaderMap,
) -> Option<http::Response<String>> {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let (body, content_type) = match path {
        paths::PLAYGROUND => (PLAYGROUND_HTML.to_owned(), "text/html; charset=utf-8"),
        paths::WEBSOCKET_INFO => {
            let scheme = if is_secure(headers) { "wss" } else { "ws" };
            let info = websocket_info(routes, &format!("{scheme}://{host}"));
            (json!(info).to_string(), "application/json")
        }
        paths::ASYNCAPI => {
            let document = asyncapi(routes, "chanx endpoints", host);
            let wants_yaml = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .any(|(key, value)| key == "format" && value == "yaml");
            match wants_yaml {
                true => (to_yaml(&document), "application/yaml"),
                false => (document.to_string(), "application/json"),
            }
        }
        _ => return None,
    };
    let mut response = http::Response::new(body);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    Some(response)
}

/// A JSON document as YAML. Serializing a `serde_json::Value` cannot fail
/// (its keys are strings, its numbers finite), so the fallback is never
/// taken.
pub fn to_yaml(document: &Value) -> String {
    serde_norway::to_string(document).unwrap_or_else(|_| document.to_string())
}

/// Whether a proxy in front says the client connected over TLS.
fn is_secure(headers: &http::HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(http::header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split([';', ','])
                .any(|part| part.trim().eq_ignore_ascii_case("proto=https"))
        });
    forwarded_proto || forwarded
}
