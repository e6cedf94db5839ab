// Drives a running quickstart with the TypeScript client chanx-codegen
// generated (./chanx.ts): echo, chat between two users, a validation error
// and a refused connection. Run by quickstart/tests/typescript_client.rs:
// type-checked with tsc (strict), then run with Node against the server
// whose ws:// base URL is the first argument.
import WebSocket from "ws";

import {
  AuthenticationError,
  ChatConsumer,
  CloseCode,
  type ConnectOptions,
  EchoConsumer,
  type WebSocketLike,
} from "./chanx.js";

const base = process.argv[2] ?? "";
const httpBase = base.replace(/^ws/, "http");

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`failed: ${what}`);
}

/** Logs in through the HTTP API; the `sessionid=...` cookie pair. */
async function login(username: string): Promise<string> {
  const response = await fetch(`${httpBase}/auth/login/`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password: "chanx-demo" }),
  });
  check(response.status === 200, `login of ${username} answers 200 (got ${response.status})`);
  const cookie = (response.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  check(cookie.startsWith("sessionid="), `login sets the session cookie (got ${cookie})`);
  return cookie;
}

/** Node 20 has no global WebSocket: the `ws` package's, with the cookie. */
function withCookie(cookie?: string): ConnectOptions {
  const headers: Record<string, string> = cookie ? { Cookie: cookie } : {};
  return { webSocket: (url: string): WebSocketLike => new WebSocket(url, { headers }) };
}

async function main(): Promise<void> {
  const alice = await login("alice");
  const bob = await login("bob");

  // Echo: typed send, typed reply.
  const echo = EchoConsumer.connect(base, withCookie(alice));
  const auth = await echo.authenticated;
  check(auth.status_code === 200, "echo: authenticated");
  echo.send({ action: "echo", payload: { content: "hi from TypeScript" } });
  const reply = await echo.next("echo");
  check(reply.payload.content === "Echo: hi from TypeScript", `echo reply (got ${reply.payload.content})`);

  // A validation error: the type checker refuses the message, the server too.
  // @ts-expect-error `payload.content` is required: the generated types know it.
  echo.send({ action: "echo", payload: {} });
  const error = await echo.next("error");
  check(Array.isArray(error.payload), "validation error is a list");
  const problems = error.payload as { type: string; loc: (string | number)[]; msg: string }[];
  check(problems[0]?.type === "missing" && problems[0]?.msg === "Field required", `validation error (got ${JSON.stringify(problems)})`);
  echo.send({ action: "ping" });
  check((await echo.next("pong")).payload === null, "pong");
  echo.close();
  check((await echo.closed).code === CloseCode.Normal, "echo closes with 1000");

  // Chat between two users in one room.
  const room = { room_id: "typescript_room" };
  const aliceChat = ChatConsumer.connect(base, room, withCookie(alice));
  const bobChat = ChatConsumer.connect(base, room, withCookie(bob));
  await Promise.all([aliceChat.authenticated, bobChat.authenticated]);
  const heard = bobChat.next("chat_message");
  aliceChat.send({ action: "echo", payload: { content: "hello bob" } });
  const line = await heard;
  check(line.payload.content === "alice: hello bob", `bob hears alice (got ${line.payload.content})`);
  check(!line.is_mine && !line.is_current, "is_mine and is_current are false for bob");
  aliceChat.close();
  bobChat.close();

  // No session: refused with 403 and close code 4403.
  const anonymous = EchoConsumer.connect(base, withCookie());
  const refused = await anonymous.authenticated.then(
    () => null,
    (e: unknown) => e,
  );
  check(refused instanceof AuthenticationError && refused.result.status_code === 403, "anonymous is refused with 403");
  check((await anonymous.closed).code === CloseCode.Forbidden, "anonymous is closed with 4403");
  console.log("typescript client: ok");
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
