// Browser test of the WebSocket playground (`/playground/websocket/`) in
// headless Chromium, driven by playwright-core. Run by `tests/browser.rs`;
// by hand:
//
//   node quickstart/tests/browser/playground.mjs http://127.0.0.1:PORT /tmp/shot.png
//
// against `quickstart serve` (any `CHANX_SECRET_KEY`, no `CHANX_REDIS_URL`).
//
// Packages (playwright-core, ws) come from `tests/node/package-lock.json`,
// installed anywhere with `npm ci`. ES modules ignore NODE_PATH, so the
// script loads them with `require` from the `node_modules` directory named
// by the environment variable NODE_MODULES_DIR (absolute, or relative to the
// working directory); without it, from a node_modules next to or above
// this file.
//
// Environment: CHROMIUM, the browser binary (default /usr/bin/chromium).
//
// It logs in as alice on the page, joins ChatConsumer `browser_room`,
// checks the authentication frame, the "sends" list and a ping/pong, then
// chats with bob, who is a plain WebSocket client from Node (`ws`) with his
// own session cookie, in both directions; then EchoConsumer with an edited
// Echo example. It always saves a full-page screenshot to the given path.
// Exit code 0 on success; 1 with what was expected, the page's history and
// console on failure. Every wait has a timeout (WAIT_MS), and the whole run
// has one (TOTAL_MS), so it never hangs.

import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
function load(name) {
  const dir = process.env.NODE_MODULES_DIR;
  return dir ? require(path.resolve(dir, name)) : require(name);
}
const { chromium } = load("playwright-core");
const WebSocket = load("ws");

const WAIT_MS = 10_000;
const TOTAL_MS = 120_000;
const ROOM = "browser_room";

const [base, screenshot] = process.argv.slice(2);
if (!base || !screenshot) {
  console.error("usage: node playground.mjs <server base URL, e.g. http://127.0.0.1:8000> <screenshot.png>");
  process.exit(2);
}
const origin = new URL(base).origin;
const wsBase = origin.replace(/^http/, "ws");

const started = Date.now();
let step = "start";
let page = null;
let browser = null;
let bob = null;
const bobFrames = [];
const consoleLines = [];

/** Names what the next lines expect, for the failure report. */
function expecting(what) {
  step = what;
}
function ok(what) {
  console.log(`ok  ${((Date.now() - started) / 1000).toFixed(2)}s  ${what}`);
}
function assert(condition, what) {
  if (!condition) throw new Error(`assertion failed: ${what}`);
}

/** Polls `check` (sync or async) until it returns a truthy value. */
async function until(what, check, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * The history entries, oldest first: `{ kind, text, json }` where kind is
 * sent, received or info, and json the parsed message (or undefined).
 */
async function history() {
  if (!page) return [];
  const entries = await page.$$eval("#history .entry", (els) =>
    els.map((e) => ({ className: e.className, text: e.textContent })),
  );
  return entries.reverse().map(({ className, text }) => {
    const kind = className.replace("entry", "").trim();
    let json;
    const arrow = text.search(/[→←] /);
    if (arrow >= 0) {
      try {
        json = JSON.parse(text.slice(arrow + 2));
      } catch (_) {}
    }
    return { kind, text, json };
  });
}

/** The number of history entries so far: a mark for `waitEntry`. */
async function mark() {
  return (await history()).length;
}

/** Waits for a history entry of `kind`, after `since`, that `matches`. */
async function waitEntry(what, kind, matches, since = 0) {
  return until(`a ${kind} history entry: ${what}`, async () =>
    (await history()).slice(since).find((e) => e.kind === kind && matches(e)),
  );
}

async function text(selector) {
  return (await page.textContent(selector)) ?? "";
}

/** Selects the option of `select` whose label starts with `prefix`. */
async function choose(select, prefix) {
  const labels = await page.$$eval(`${select} option`, (os) => os.map((o) => o.textContent));
  const index = labels.findIndex((l) => l.startsWith(prefix));
  assert(index >= 0, `${select} offers an option starting with "${prefix}" (has ${JSON.stringify(labels)})`);
  await page.selectOption(select, { index });
}

async function waitStatus(status) {
  await until(`#status to read "${status}"`, async () => (await text("#status")) === status);
}

/** Logs in from Node; the `sessionid=...` cookie pair. */
async function loginFromNode(username) {
  const response = await fetch(`${origin}/auth/login/`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password: "chanx-demo" }),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  assert(response.status === 200, `POST /auth/login/ as ${username} answers 200 (got ${response.status})`);
  const cookie = (response.headers.getSetCookie?.() ?? [response.headers.get("set-cookie") ?? ""])
    .map((c) => c.split(";")[0])
    .find((c) => c.startsWith("sessionid="));
  assert(cookie, `the login answer sets a sessionid cookie`);
  return cookie;
}

/** Waits for a frame to bob that `matches`, at index `since` or later. */
function waitBob(what, matches, since = 0) {
  return until(`bob to receive ${what}`, () => bobFrames.slice(since).find(matches));
}

async function run() {
  expecting("Chromium to start");
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox"],
    timeout: 30_000,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  // "Failed to load resource" names its URL only in the location.
  page.on("console", (m) => consoleLines.push(`console.${m.type()}: ${m.text()} at ${m.location().url}`));
  page.on("pageerror", (e) => consoleLines.push(`page error: ${e.message}`));
  page.on("response", (r) => {
    if (r.status() >= 400) consoleLines.push(`http ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  ok(`Chromium ${browser.version()} started`);

  expecting("the playground page to load and list 3 endpoints");
  const response = await page.goto(`${origin}/playground/websocket/`);
  assert(response && response.status() === 200, `GET /playground/websocket/ answers 200 (got ${response?.status()})`);
  await waitEntry("Loaded 3 WebSocket endpoints", "info", (e) => e.text.includes("Loaded 3 WebSocket endpoints"));
  ok("playground loaded, 3 endpoints");

  expecting("logging in as alice from the page's login box to answer 200");
  await page.click("#login-box summary");
  assert(await page.isVisible("#login-username"), "the login box opens");
  assert((await page.inputValue("#login-url")) === "/auth/login/", "the login URL defaults to /auth/login/");
  await page.fill("#login-username", "alice");
  await page.fill("#login-password", "chanx-demo");
  await page.click("#login");
  await until("#login-status to start with 200", async () => (await text("#login-status")).startsWith("200"));
  const cookies = await context.cookies(origin);
  const session = cookies.find((c) => c.name === "sessionid");
  assert(session && session.httpOnly, `the browser holds an HttpOnly sessionid cookie (has ${JSON.stringify(cookies)})`);
  ok(`logged in: ${await text("#login-status")}`);

  expecting(`ChatConsumer with room_id=${ROOM} to connect and authenticate alice`);
  await choose("#endpoint", "ChatConsumer ");
  await page.fill("#param-room_id", ROOM);
  const chatUrl = await page.inputValue("#url");
  assert(chatUrl === `${wsBase}/ws/myapp/chat/${ROOM}/`, `the real URL is ${wsBase}/ws/myapp/chat/${ROOM}/ (got ${chatUrl})`);
  let since = await mark();
  await page.click("#connect");
  await waitStatus("connected");
  await waitEntry(
    "authentication with status_code 200",
    "received",
    (e) => e.json?.action === "authentication" && e.json?.payload?.status_code === 200,
    since,
  );
  ok(`connected to ${chatUrl}, authenticated`);

  expecting("#sends to list chat_message and pong for ChatConsumer");
  await page.click("#sends-box summary");
  const chatSends = await text("#sends");
  assert(await page.isVisible("#sends"), "the sends box opens");
  for (const action of ["chat_message", "pong", "echo"]) {
    assert(chatSends.includes(`"action":"${action}"`), `ChatConsumer's sends list has ${action}: ${chatSends}`);
  }
  ok("ChatConsumer sends chat_message, pong, echo");

  expecting("the Ping example to be answered with pong");
  await choose("#example", "Ping");
  const ping = JSON.parse(await page.inputValue("#body"));
  assert(ping.action === "ping", `the Ping example is a ping (got ${JSON.stringify(ping)})`);
  since = await mark();
  await page.click("#send");
  await waitEntry("ping", "sent", (e) => e.json?.action === "ping", since);
  await waitEntry("pong with payload null", "received", (e) => e.json?.action === "pong" && e.json.payload === null, since);
  ok("ping → pong");

  expecting(`bob (Node, ws) to join ${ROOM}`);
  const bobCookie = await loginFromNode("bob");
  bob = new WebSocket(`${wsBase}/ws/myapp/chat/${ROOM}/`, { headers: { Cookie: bobCookie, Origin: origin } });
  bob.on("message", (data) => {
    try {
      bobFrames.push(JSON.parse(data.toString()));
    } catch (_) {
      bobFrames.push({ unparsed: data.toString() });
    }
  });
  bob.on("error", (e) => bobFrames.push({ error: e.message }));
  await waitBob("authentication with status_code 200", (f) => f.action === "authentication" && f.payload?.status_code === 200);
  // Once bob has his pong, his join of the room is done.
  let bobSince = bobFrames.length;
  bob.send(JSON.stringify({ action: "ping" }));
  await waitBob("pong", (f) => f.action === "pong", bobSince);
  ok("bob joined the room from Node");

  expecting('bob to receive "alice: hello from chromium"');
  bobSince = bobFrames.length;
  await page.fill("#body", '{"action":"echo","payload":{"content":"hello from chromium"}}');
  since = await mark();
  await page.click("#send");
  await waitEntry("echo hello from chromium", "sent", (e) => e.json?.payload?.content === "hello from chromium", since);
  const toBob = await waitBob(
    '"alice: hello from chromium"',
    (f) => f.payload?.content === "alice: hello from chromium",
    bobSince,
  );
  ok(`bob received ${JSON.stringify(toBob)}`);

  expecting("alice (the sender) not to get her own chat message back");
  // A ping after the chat message: its pong arrives after anything the
  // chat message could have produced for alice.
  await page.fill("#body", '{"action":"ping"}');
  since = await mark();
  await page.click("#send");
  await waitEntry("pong", "received", (e) => e.json?.action === "pong", since);
  const echoedToAlice = (await history()).filter(
    (e) => e.kind === "received" && JSON.stringify(e.json ?? "").includes("hello from chromium"),
  );
  assert(echoedToAlice.length === 0, `alice receives nothing for her own message (got ${echoedToAlice.map((e) => e.text)})`);
  ok("the sender got nothing back");

  expecting('alice to receive "bob: hello from node"');
  since = await mark();
  bob.send(JSON.stringify({ action: "echo", payload: { content: "hello from node" } }));
  const fromBob = await waitEntry(
    '"bob: hello from node"',
    "received",
    (e) => e.json?.payload?.content === "bob: hello from node",
    since,
  );
  ok(`alice received ${JSON.stringify(fromBob.json)}`);

  expecting("disconnecting from ChatConsumer to close with 1000");
  since = await mark();
  await page.click("#disconnect");
  await waitStatus("disconnected");
  await waitEntry("Closed (code 1000", "info", (e) => e.text.includes("Closed (code 1000"), since);
  ok("disconnected (1000)");

  expecting("EchoConsumer to connect and authenticate alice");
  await choose("#endpoint", "EchoConsumer ");
  assert((await page.$$("#params input")).length === 0, "EchoConsumer has no path parameters");
  const echoUrl = await page.inputValue("#url");
  assert(echoUrl === `${wsBase}/ws/myapp/echo/`, `the real URL is ${wsBase}/ws/myapp/echo/ (got ${echoUrl})`);
  const echoSends = await text("#sends");
  assert(
    echoSends.includes('"action":"pong"') && echoSends.includes('"action":"echo"') && !echoSends.includes("chat_message"),
    `EchoConsumer's sends list has pong and echo, not chat_message: ${echoSends}`,
  );
  since = await mark();
  await page.click("#connect");
  await waitStatus("connected");
  await waitEntry(
    "authentication with status_code 200",
    "received",
    (e) => e.json?.action === "authentication" && e.json?.payload?.status_code === 200,
    since,
  );
  ok(`connected to ${echoUrl}, authenticated`);

  expecting('the edited Echo example to come back as "Echo: edited in chromium"');
  await choose("#example", "Echo");
  const echo = JSON.parse(await page.inputValue("#body"));
  assert(echo.action === "echo" && typeof echo.payload?.content === "string", `the Echo example is an echo (got ${JSON.stringify(echo)})`);
  echo.payload.content = "edited in chromium";
  await page.fill("#body", JSON.stringify(echo, null, 2));
  since = await mark();
  await page.click("#send");
  await waitEntry(
    '"Echo: edited in chromium"',
    "received",
    (e) => e.json?.action === "echo" && e.json?.payload?.content === "Echo: edited in chromium",
    since,
  );
  ok("echo → Echo: edited in chromium");

  expecting("RoomsConsumer: subscribing to room:browser_topic from the page, then a typed message on it");
  await page.click("#disconnect");
  await waitStatus("disconnected");
  await choose("#endpoint", "RoomsConsumer ");
  const roomsSends = await text("#sends");
  assert(roomsSends.includes("room:{room_id}: ChatMessage"), `RoomsConsumer's sends list the topic's messages: ${roomsSends}`);
  since = await mark();
  await page.click("#connect");
  await waitStatus("connected");
  await waitEntry("authentication", "received", (e) => e.json?.action === "authentication", since);
  await page.fill("#topic", "room:browser_topic");
  since = await mark();
  await page.click("#subscribe");
  await waitEntry(
    "subscribed to room:browser_topic",
    "received",
    (e) => e.json?.action === "subscribed" && e.json?.topic === "room:browser_topic" && typeof e.json?.ref === "string",
    since,
  );
  ok("subscribed to room:browser_topic");
  await choose("#example", "room:{room_id}: Echo");
  await page.fill("#topic", "room:browser_topic");
  const onTopic = JSON.parse(await page.inputValue("#body"));
  onTopic.payload.content = "topic from chromium";
  await page.fill("#body", JSON.stringify(onTopic, null, 2));
  since = await mark();
  await page.click("#send");
  await waitEntry(
    "the broadcast alice: topic from chromium",
    "received",
    (e) => e.json?.action === "chat_message" && e.json?.topic === "room:browser_topic" && e.json?.payload?.content === "alice: topic from chromium",
    since,
  );
  await waitEntry("sent, with its ref", "received", (e) => e.json?.action === "sent" && e.json?.topic === "room:browser_topic", since);
  ok("topic message broadcast and confirmed");

  expecting("no JavaScript errors and no failed requests on the page (but /favicon.ico)");
  const errors = consoleLines.filter(
    (l) => l.startsWith("page error") || l.startsWith("http ") || (l.startsWith("console.error") && !l.endsWith("/favicon.ico")),
  );
  assert(errors.length === 0, `no errors: ${errors.join("\n")}`);
  ok("no errors in the browser console");
}

async function saveScreenshot() {
  if (!page) return;
  try {
    await page.screenshot({ path: screenshot, fullPage: true, timeout: WAIT_MS });
    console.log(`screenshot: ${screenshot}`);
  } catch (e) {
    console.log(`screenshot failed: ${e.message}`);
  }
}

async function report(error) {
  console.log(`FAILED after ${((Date.now() - started) / 1000).toFixed(2)}s`);
  console.log(`expected: ${step}`);
  console.log(`error: ${error?.stack ?? error}`);
  try {
    const entries = await history();
    console.log(`--- page history (oldest first, ${entries.length} entries) ---`);
    for (const e of entries) console.log(`[${e.kind}] ${e.text}`);
    if (page) {
      console.log(`--- #status: ${await text("#status")}; #login-status: ${await text("#login-status")}; #url: ${await page.inputValue("#url")}`);
    }
  } catch (e) {
    console.log(`(could not read the page: ${e.message})`);
  }
  console.log(`--- frames to bob (${bobFrames.length}) ---`);
  for (const f of bobFrames) console.log(JSON.stringify(f));
  console.log(`--- browser console (${consoleLines.length}) ---`);
  for (const l of consoleLines) console.log(l);
}

async function shutdown(code) {
  try {
    bob?.terminate();
  } catch (_) {}
  await Promise.race([browser?.close(), new Promise((r) => setTimeout(r, 5_000))]).catch(() => {});
  process.exit(code);
}

setTimeout(async () => {
  await report(new Error(`the whole run took over ${TOTAL_MS} ms`));
  await saveScreenshot();
  await shutdown(1);
}, TOTAL_MS).unref();

try {
  await run();
  await saveScreenshot();
  console.log(`PASSED in ${((Date.now() - started) / 1000).toFixed(2)}s`);
  await shutdown(0);
} catch (error) {
  await report(error);
  await saveScreenshot();
  await shutdown(1);
}
