/* eslint-disable @typescript-eslint/no-explicit-any -- the handlers take `any` so both the browser's and the `ws` package's sockets fit */
/** The part of a WebSocket this client uses: the browser's `WebSocket`, or the `ws` package's on Node. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** Opens the socket for a URL; the default uses the global `WebSocket` (browsers, Node 22+). */
export type WebSocketFactory = (url: string) => WebSocketLike;

/** How to connect. */
export interface ConnectOptions {
  /** Makes the socket; pass one to set headers (e.g. `Cookie`) with the `ws` package. */
  webSocket?: WebSocketFactory;
  /** Raw query string appended to the URL, without `?` (e.g. `token=abc`). */
  query?: string;
}

/** Close codes the server uses (see the protocol documentation). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  InvalidData: 1007,
  MessageTooBig: 1009,
  InternalError: 1011,
  SlowConsumer: 4008,
  Unauthorized: 4401,
  Forbidden: 4403,
  NotFound: 4404,
  HeartbeatTimeout: 4408,
  ServerError: 4500,
} as const;

/** How a connection ended. */
export interface Closed {
  code: number;
  reason: string;
}

/** The payload of the `authentication` frame. */
export interface AuthenticationResult {
  status_code: number;
  status_text: string;
  data: { [key: string]: unknown };
}

/** The server refused the connection (its `authentication` frame had a status other than 200). */
export class AuthenticationError extends Error {
  constructor(readonly result: AuthenticationResult) {
    super(`authentication refused: ${result.status_code} ${result.status_text}`);
    this.name = "AuthenticationError";
  }
}

/** Every message has an action. */
export interface Tagged {
  action: string;
}

type Listener = (message: Tagged) => void;

/**
 * A typed connection to one endpoint: `send` takes only what the endpoint
 * receives, `on` and `next` give what it sends, narrowed by action.
 */
export class ChanxClient<Send extends Tagged, Receive extends Tagged> {
  /** Resolves with the `authentication` frame's payload (status 200), rejects with `AuthenticationError` or when the socket closes first. */
  readonly authenticated: Promise<AuthenticationResult>;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<Closed>;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly anyListeners = new Set<Listener>();

  constructor(private readonly socket: WebSocketLike) {
    let authOk: (result: AuthenticationResult) => void = () => {};
    let authFailed: (error: Error) => void = () => {};
    this.authenticated = new Promise((resolve, reject) => {
      authOk = resolve;
      authFailed = reject;
    });
    // A refused connection is also reported by `closed`; avoid an unhandled rejection.
    this.authenticated.catch(() => {});
    this.closed = new Promise((resolve) => {
      socket.onclose = (event: { code: number; reason: string }) => {
        authFailed(new Error(`closed before authentication (code ${event.code})`));
        resolve({ code: event.code, reason: String(event.reason ?? "") });
      };
    });
    socket.onmessage = (event: { data: unknown }) => {
      if (typeof event.data !== "string") return;
      let message: Tagged;
      try {
        message = JSON.parse(event.data) as Tagged;
      } catch {
        return;
      }
      if (message.action === "authentication") {
        const result = (message as unknown as { payload: AuthenticationResult }).payload;
        if (result.status_code === 200) authOk(result);
        else authFailed(new AuthenticationError(result));
      }
      for (const listener of this.listeners.get(message.action) ?? []) listener(message);
      for (const listener of this.anyListeners) listener(message);
    };
  }

  /** Sends one of the messages the endpoint receives. */
  send(message: Send): void {
    this.socket.send(JSON.stringify(message));
  }

  /** Calls `handler` with every message of `action`; returns a function that stops it. */
  on<A extends Receive["action"]>(action: A, handler: (message: Extract<Receive, { action: A }>) => void): () => void {
    const listener = handler as unknown as Listener;
    const set = this.listeners.get(action) ?? new Set<Listener>();
    set.add(listener);
    this.listeners.set(action, set);
    return () => set.delete(listener);
  }

  /** Calls `handler` with every message; returns a function that stops it. */
  onAny(handler: (message: Receive) => void): () => void {
    const listener = handler as unknown as Listener;
    this.anyListeners.add(listener);
    return () => this.anyListeners.delete(listener);
  }

  /** The next message of `action`; rejects after `timeoutMs` or when the socket closes. */
  next<A extends Receive["action"]>(action: A, timeoutMs = 10_000): Promise<Extract<Receive, { action: A }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`no "${action}" message within ${timeoutMs} ms`));
      }, timeoutMs);
      const stop = this.on(action, (message) => {
        clearTimeout(timer);
        stop();
        resolve(message);
      });
      this.closed.then((closed) => {
        clearTimeout(timer);
        stop();
        reject(new Error(`closed (code ${closed.code}) before a "${action}" message`));
      });
    });
  }

  /** Closes the connection (code 1000 unless given). */
  close(code: number = CloseCode.Normal, reason = ""): void {
    this.socket.close(code, reason);
  }
}

function defaultWebSocket(url: string): WebSocketLike {
  const ctor = (globalThis as unknown as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
  if (!ctor) throw new Error("no global WebSocket: pass options.webSocket (e.g. the `ws` package)");
  return new ctor(url);
}

/** Fills an address's `{name}` parameters (percent-encoded) and joins it to `base` (`ws://host:port`). */
export function endpointUrl(base: string, address: string, params: { [name: string]: string }, query?: string): string {
  const path = address.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`missing path parameter ${name}`);
    return encodeURIComponent(value);
  });
  const url = base.replace(/\/+$/, "") + path;
  return query ? `${url}?${query}` : url;
}

function open<Send extends Tagged, Receive extends Tagged>(url: string, options: ConnectOptions = {}): ChanxClient<Send, Receive> {
  const socket = (options.webSocket ?? defaultWebSocket)(url);
  return new ChanxClient<Send, Receive>(socket);
}
