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
    /// The path parameters.
    pub path_params: Vec<PathParamDoc>,
}

/// The playground's endpoint list; `base_url` is e.g. `ws://localhost:8000`.
pub fn websocket_info(routes: &RouteTable<Endpoint>, base_url: &str) -> Vec<EndpointDoc> {
    let base = base_url.trim_end_matches('/');
    routes
        .routes()
        .map(|route| {
            let info = route.target.info();
            let mut examples = message_examples(&info.incoming);
            if info.options.camelize {
                for e in &mut examples {
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
/// route (address, parameters), its incoming messages (what clients send)
/// and the server frames every endpoint can send.
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
        // Definitions are namespaced by endpoint: two consumers may both
        // have a `MessagePayload` of different shapes.
        let prefix = format!("{}_", info.name);
        let mut messages = Map::new();
        for (name, def) in info.incoming.defs() {
            schemas.insert(
                format!("{prefix}{name}"),
                rewrite_refs(def.clone(), &prefix),
            );
        }
        for (tag, variant) in info.incoming.variants() {
            messages.insert(
                tag.to_owned(),
                json!({ "name": tag, "title": pascal_case(tag), "payload": rewrite_refs(variant.clone(), &prefix) }),
            );
        }
        messages.insert(
            "server_frame".into(),
            json!({ "name": "server_frame", "summary": "authentication, error, pong, complete, group_complete or an application frame",
                    "payload": { "type": "object", "properties": { info.options.action_key.clone(): { "type": "string" }, "payload": {} } } }),
        );
        let parameters: Map<String, Value> = route
            .params
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    json!({ "description": format!("pattern: {}", p.pattern) }),
                )
            })
            .collect();
        let address = asyncapi_address(&route.friendly_path, &route.params);
        channels.insert(
            id.clone(),
            json!({ "address": address, "description": info.description, "parameters": parameters, "messages": messages }),
        );
        let receive: Vec<Value> = info
            .incoming
            .tags()
            .map(|t| json!({ "$ref": format!("#/channels/{id}/messages/{t}") }))
            .collect();
        operations.insert(
            format!("{id}_receive"),
            json!({ "action": "receive", "channel": { "$ref": format!("#/channels/{id}") }, "messages": receive }),
        );
        operations.insert(
            format!("{id}_send"),
            json!({ "action": "send", "channel": { "$ref": format!("#/channels/{id}") },
                    "messages": [{ "$ref": format!("#/channels/{id}/messages/server_frame") }] }),
        );
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
/// `Forwarded: proto=https`) or the AsyncAPI document. `None` for any
/// other path.
///
/// ```
/// # use chanx::routing::RouteTable;
/// let routes: RouteTable<chanx::Endpoint> = RouteTable::new([]).unwrap();
/// let mut headers = http::HeaderMap::new();
/// headers.insert("host", "example.com".parse().unwrap());
/// headers.insert("x-forwarded-proto", "https".parse().unwrap());
/// let page = chanx::docs::respond(&routes, "/playground/websocket/", &headers).unwrap();
/// assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
/// let doc = chanx::docs::respond(&routes, "/asyncapi.json", &headers).unwrap();
/// assert!(doc.body().contains("example.com"));
/// assert!(chanx::docs::respond(&routes, "/elsewhere/", &headers).is_none());
/// ```
pub fn respond(
    routes: &RouteTable<Endpoint>,
    path: &str,
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
        paths::ASYNCAPI => (
            asyncapi(routes, "chanx endpoints", host).to_string(),
            "application/json",
        ),
        _ => return None,
    };
    let mut response = http::Response::new(body);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    Some(response)
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
