/**
 * `cdk-authenticated-websocket-api/client`: the browser and Node.js client for an
 * `AuthenticatedWebSocketApi`, with no dependencies.
 *
 * ```ts
 * import { connect } from 'cdk-authenticated-websocket-api/client';
 * const client = connect({ url: 'wss://example.com/dev', token: () => fetchToken() });
 * client.subscribe('rooms/lobby', (m) => console.log(m.sender, m.message));
 * await client.publish('rooms/lobby', 'hello');
 * ```
 *
 * What it does for the app: it keeps one connection open across API Gateway's 10-minute idle timeout
 * (keep-alive pings), its 2-hour cap (roll-over to a new connection before it), the token's expiry
 * (reauth with a fresh token) and network failures (reconnect with capped exponential backoff and full
 * jitter); it resubscribes channels after every new connection, asking for what was missed (`since`
 * the last message id seen), and delivers each channel message once and in id order (duplicates
 * dropped, out-of-order ones held briefly, a channel whose ids restarted on the server rebased).
 *
 * This file is compiled on its own (jsii compiles only the construct layer) into `client/index.js`
 * (CommonJS), `client/index.mjs` (ES module) and `client/browser.js` (a script defining the global
 * `AuthWs`), with its types in `client/index.d.ts`.
 */

/** Where the token travels on the handshake; it must match the API's `TokenLocation`. */
export type TokenLocation = 'subprotocol' | 'query' | 'header';

/** The client's state: `closed` is final (after `close()`, or when no token can be had). */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What the client needs of a WebSocket: the browser's, Node.js 22's global one, or `ws`. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol?: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: any) => void): void;
}

/** A WebSocket constructor. A third argument (`{ headers }`) is passed only for `tokenLocation: 'header'`, which `ws` accepts. */
export interface WebSocketConstructor {
  new (url: string, protocols?: string | string[], options?: { headers: Record<string, string> }): WebSocketLike;
}

/** Options of `connect()`. Durations are in milliseconds. */
export interface ConnectOptions {
  /** The API's URL, e.g. `wss://abc.execute-api.eu-west-1.amazonaws.com/dev` (`chat.url`). */
  readonly url: string;
  /**
   * Gives a valid token. Called before every connection, roll-over and reauth, so it should cache
   * a token and refresh it near its expiry. When it throws (the user was signed out or revoked), the
   * client stops for good with a `TokenUnavailable` error.
   */
  readonly token: () => string | Promise<string>;
  /** Where the token travels: `'subprotocol'` (default), `'query'` or `'header'` (needs `WebSocket: require('ws')`). */
  readonly tokenLocation?: TokenLocation;
  /**
   * The subprotocol name (default `authws`), query parameter (default `token`) or header (default
   * `Authorization`, sent as `Bearer <token>`), as the API's `TokenLocation` names it.
   */
  readonly tokenName?: string;
  /** The WebSocket constructor. Default: `globalThis.WebSocket` (browsers, Node.js 22+). */
  readonly WebSocket?: WebSocketConstructor;
  /** Sends `{"action":"ping"}` after this long without sending anything. Default 5 minutes (API Gateway closes idle connections after 10). */
  readonly keepAliveInterval?: number;
  /** Opens a new connection and closes the old one this long after it opened. Default 115 minutes (API Gateway's cap is 2 hours); 0 turns it off. */
  readonly rollOverAfter?: number;
  /** Sends `reauth` with a fresh token this long before the token's `exp`. Default 60 seconds; 0 turns it off. */
  readonly reauthBefore?: number;
  /** First reconnect delay cap. Default 500. The n-th attempt waits a random time in [0, min(maxReconnectDelay, reconnectDelay * 2^n)). */
  readonly reconnectDelay?: number;
  /** Largest reconnect delay. Default 30 seconds. */
  readonly maxReconnectDelay?: number;
  /** How long a request (publish, subscribe, presence, ping, reauth) waits for its answer. Default 10 seconds. */
  readonly requestTimeout?: number;
  /** How many outgoing messages wait while disconnected; one more throws `BufferFull`. Default 100. */
  readonly maxBufferedMessages?: number;
  /** How long after a roll-over frames without an id are still compared with the old connection's. Default 2 seconds. */
  readonly overlapGrace?: number;
  /**
   * How long a channel message that skips ids waits for the ones before it (concurrent publishes
   * may arrive out of order), so the handler sees ids in order. After it, the message is delivered,
   * and a skipped one that still arrives is delivered late rather than dropped. Default 1 second.
   */
  readonly reorderWindow?: number;
  /** Random numbers in [0, 1) for the backoff jitter. Default `Math.random`. */
  readonly random?: () => number;
}

/** What an `AuthWsError` may name besides its code and message. */
export interface ErrorDetails {
  readonly action?: string;
  readonly channel?: string;
  readonly requestId?: string;
  readonly status?: number;
  readonly cause?: unknown;
}

/**
 * An error the client reports: an error frame from the server (`BadRequest`, `TooLarge`,
 * `UnknownAction`, `Forbidden`, `TokenExpired`, `RateLimited`, ...) or one of the client's own:
 * `Timeout` (no answer in `requestTimeout`), `BufferFull`, `Closed` (the client was closed),
 * `TokenUnavailable` (the token provider failed: the client stops), `Unauthorized` (the handshake was
 * refused with 401/403 and the provider had no other token: the client stops).
 */
export class AuthWsError extends Error {
  /** The error code. */
  readonly code: string;
  /** The refused request's action, when known. */
  readonly action?: string;
  /** The refused request's channel, when known. */
  readonly channel?: string;
  /** The refused request's id, when it had one. */
  readonly requestId?: string;
  /** The HTTP status of a refused handshake, when the WebSocket implementation reports it (Node.js `ws`). */
  readonly status?: number;

  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(message);
    this.name = 'AuthWsError';
    this.code = code;
    if (details.action !== undefined) this.action = details.action;
    if (details.channel !== undefined) this.channel = details.channel;
    if (details.requestId !== undefined) this.requestId = details.requestId;
    if (details.status !== undefined) this.status = details.status;
    if (details.cause !== undefined) (this as { cause?: unknown }).cause = details.cause;
  }
}

/** A message published on a channel. */
export interface ChannelMessage {
  /** The concrete channel (also for a wildcard subscription). */
  readonly channel: string;
  readonly message: unknown;
  readonly sender: string;
  /** Strictly increasing per channel. */
  readonly id: number;
  /** True when it was replayed from history after a (re)subscribe with `since`. */
  readonly replay: boolean;
}

/** A user joined or left a channel whose rule enables presence. */
export interface PresenceEvent {
  readonly channel: string;
  readonly event: 'joined' | 'left';
  readonly userId: string;
}

/** Options of `subscribe()`. */
export interface SubscribeOptions {
  /** The last message id already seen on this (concrete) channel: history after it is replayed. */
  readonly since?: number;
  /** Presence events of the channel. */
  readonly onPresence?: (event: PresenceEvent) => void;
  /** Called when the server could not replay everything missed (its history no longer reaches back). */
  readonly onGap?: (channel: string) => void;
  /**
   * Called when the channel's ids restarted on the server (its table was recreated, or `authws local`
   * restarted): what the client saw before is forgotten, the new ids are delivered from 1 (history
   * replayed from its start), and messages published in between may be lost.
   */
  readonly onReset?: (channel: string) => void;
}

/** A live subscription. */
export interface Subscription {
  readonly channel: string;
  /** Resolves at the server's first `subscribed`; rejects with an `AuthWsError` when refused (the subscription then ends). */
  readonly ready: Promise<void>;
  /** Stops the handler; unsubscribes on the server when it was the channel's last subscription. */
  unsubscribe(): Promise<void>;
}

/** A page of a channel's members. */
export interface PresencePage {
  readonly members: string[];
  /** Pass it to `presence()` for the next page; null on the last page. */
  readonly cursor: string | null;
}

/** A frame that is neither a channel message nor an answer: `{"message":...,"sender":...}` from broadcast and send, or a custom route's reply. */
export interface IncomingMessage {
  readonly message?: unknown;
  readonly sender?: string;
  readonly [field: string]: unknown;
}

/** The `close` event: a connection ended. */
export interface CloseEvent {
  readonly code: number;
  readonly reason: string;
  /** False when the client stops (`close()`, or no token could be had). */
  readonly willReconnect: boolean;
}

/** The `reconnecting` event. */
export interface ReconnectingEvent {
  /** 0 for the first attempt after a connection ended. */
  readonly attempt: number;
  /** Milliseconds until the attempt. */
  readonly delay: number;
  /** Why the last connection or attempt ended. */
  readonly reason: string;
}

/** The `open` event. */
export interface OpenEvent {
  /** True when this connection replaced one that reached `rollOverAfter` (or whose token expired). */
  readonly rollOver: boolean;
}

/** The client's events and their payloads. */
export interface ClientEvents {
  open: OpenEvent;
  close: CloseEvent;
  reconnecting: ReconnectingEvent;
  message: IncomingMessage;
  error: AuthWsError;
  state: ClientState;
}

const DEFAULTS = {
  tokenLocation: 'subprotocol' as TokenLocation,
  tokenNames: { subprotocol: 'authws', query: 'token', header: 'Authorization' } as Record<TokenLocation, string>,
  keepAliveInterval: 5 * 60_000,
  rollOverAfter: 115 * 60_000,
  reauthBefore: 60_000,
  reconnectDelay: 500,
  maxReconnectDelay: 30_000,
  requestTimeout: 10_000,
  maxBufferedMessages: 100,
  overlapGrace: 2_000,
  reorderWindow: 1_000,
};

const OPEN = 1;
/** How long a replaced connection stays open after its successor took over, for frames on their way. */
const DRAIN_MS = 500;
/**
 * After a `subscribe` with `since` is acknowledged, how long live messages that would skip ids wait
 * for the replay to fill the hole (restarted by every replayed message). A live message may arrive
 * before the replayed ones: it is held, not delivered out of order, and not dropped.
 */
const REPLAY_SETTLE_MS = 1_000;
/** Ids skipped for good that the client still delivers if they turn up late (per channel). */
const MAX_SKIPPED = 1_000;
const REQUEST_ID_PREFIX = 'c';

/**
 * The delay before reconnect attempt `attempt` (0-based): exponential backoff with full jitter,
 * a random time in [0, min(max, initial * 2^attempt)).
 */
export function backoffDelay(attempt: number, initial: number, max: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(max, initial * 2 ** Math.min(attempt, 30)));
}

/** The `exp` claim of a JWT (epoch seconds), read without verifying it; undefined without one. */
export function tokenExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(payload.length / 4) * 4, '=');
    const claims = JSON.parse(atob(base64));
    return typeof claims?.exp === 'number' ? claims.exp : undefined;
  } catch {
    return undefined;
  }
}

/** True when `pattern` (a subscription, maybe with `*` segments) matches the concrete `channel`. */
export function channelMatches(pattern: string, channel: string): boolean {
  if (pattern === channel) return true;
  if (!pattern.includes('*')) return false;
  const want = pattern.split('/');
  const have = channel.split('/');
  return want.length === have.length && want.every((segment, i) => segment === '*' || segment === have[i]);
}

/** Opens a client: it connects at once and stays connected until `close()`. */
export function connect(options: ConnectOptions): AuthWsClient {
  return new AuthWsClient(options);
}

type Listener<T> = (payload: T) => void;
type Timer = ReturnType<typeof setTimeout>;

interface RequestFrame {
  readonly action: string;
  readonly [field: string]: unknown;
}

interface PendingRequest {
  readonly action: string;
  readonly channel?: string;
  /** The connection it was written to (undefined while buffered). */
  link?: Link;
  timer: ReturnType<typeof setTimeout>;
  resolve(frame: any): void;
  reject(error: AuthWsError): void;
}

/** A channel message frame as received. */
interface ChannelFrame {
  readonly channel: string;
  readonly message: unknown;
  readonly sender: string;
  readonly id: number;
  readonly replay?: boolean;
}

/** Messages that skip ids, waiting for the ones before them. */
interface Held {
  readonly frames: ChannelFrame[];
  timer?: Timer;
}

/** A concrete channel resubscribed with `since`, from the request until its replay settled. */
interface Resync {
  readonly link: Link;
  acked: boolean;
  /** Messages with ids the client already saw, on the new connection before the ack: new if the ack says `reset`. */
  readonly suspect: ChannelFrame[];
  timer?: Timer;
}

interface SubscriptionRecord {
  readonly channel: string;
  readonly handler: (message: ChannelMessage) => void;
  readonly options: SubscribeOptions;
  settle?: { resolve(): void; reject(error: AuthWsError): void };
}

/** Frames with no id seen on each side of a roll-over, to deliver each once. */
interface Overlap {
  readonly old: Link;
  /** Set once the new connection is open. */
  next?: Link;
  readonly seen: Map<Link, Map<string, number>>;
}

/** One WebSocket connection and its timers. */
class Link {
  opened = false;
  ended = false;
  tokenExpired = false;
  expiresAt: number | undefined;
  readonly timers: { keepAlive?: Timer; rollOver?: Timer; reauth?: Timer } = {};

  constructor(readonly socket: WebSocketLike, readonly token: string) {
    this.expiresAt = tokenExpiry(token);
  }

  clearTimers(): void {
    clearTimeout(this.timers.keepAlive);
    clearTimeout(this.timers.rollOver);
    clearTimeout(this.timers.reauth);
  }
}

/** Why a connection attempt failed before it opened. */
class HandshakeFailed extends Error {
  constructor(readonly status: number | undefined, readonly code: number, readonly reason: string) {
    super(status ? `the handshake was refused with HTTP ${status}` : `the connection closed before it opened (${code}${reason ? ` ${reason}` : ''})`);
  }
}

/** The client. Create it with `connect()`. */
export class AuthWsClient {
  private readonly options: Required<Omit<ConnectOptions, 'WebSocket' | 'tokenName'>> & { tokenName: string; WebSocket: WebSocketConstructor };
  private readonly listeners = new Map<keyof ClientEvents, Set<Listener<any>>>();
  private readonly pending = new Map<string, PendingRequest>();
  private readonly subscriptions = new Map<string, Set<SubscriptionRecord>>();
  private readonly lastIds = new Map<string, number>();
  private readonly resyncs = new Map<string, Resync>();
  private readonly held = new Map<string, Held>();
  private readonly skipped = new Map<string, Set<number>>();
  private readonly outbox: string[] = [];
  private currentState: ClientState = 'connecting';
  private primary: Link | undefined;
  /** A connection that is open but still being resubscribed before it becomes the primary. */
  private joining: Link | undefined;
  private attempt = 0;
  private everOpened = false;
  private stopped = false;
  private rolling = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private overlap: Overlap | undefined;
  private overlapTimer: ReturnType<typeof setTimeout> | undefined;
  private refused: { token: string; status: number } | undefined;
  private requestSeq = 0;
  /** Why the client stopped. */
  private lastFatal: AuthWsError | undefined;

  constructor(options: ConnectOptions) {
    if (!options || typeof options.url !== 'string' || !/^wss?:\/\//.test(options.url)) {
      throw new TypeError(`connect(): url must be a ws:// or wss:// URL, got ${JSON.stringify(options?.url)}`);
    }
    if (typeof options.token !== 'function') throw new TypeError('connect(): token must be a function returning a token (or a promise of one)');
    const tokenLocation = options.tokenLocation ?? DEFAULTS.tokenLocation;
    if (!(tokenLocation in DEFAULTS.tokenNames)) {
      throw new TypeError(`connect(): tokenLocation must be 'subprotocol', 'query' or 'header', got ${JSON.stringify(tokenLocation)}`);
    }
    if (tokenLocation === 'header' && !options.WebSocket) {
      throw new TypeError('connect(): tokenLocation \'header\' needs a WebSocket that can send headers, e.g. WebSocket: require(\'ws\'); browsers and the global WebSocket cannot (use \'subprotocol\')');
    }
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocketImpl) {
      throw new TypeError('connect(): no WebSocket here (Node.js before 22): pass one, e.g. connect({ ..., WebSocket: require(\'ws\') })');
    }
    this.options = {
      url: options.url,
      token: options.token,
      tokenLocation,
      tokenName: options.tokenName ?? DEFAULTS.tokenNames[tokenLocation],
      WebSocket: WebSocketImpl,
      keepAliveInterval: positive(options.keepAliveInterval, DEFAULTS.keepAliveInterval, 'keepAliveInterval'),
      rollOverAfter: nonNegative(options.rollOverAfter, DEFAULTS.rollOverAfter, 'rollOverAfter'),
      reauthBefore: nonNegative(options.reauthBefore, DEFAULTS.reauthBefore, 'reauthBefore'),
      reconnectDelay: positive(options.reconnectDelay, DEFAULTS.reconnectDelay, 'reconnectDelay'),
      maxReconnectDelay: positive(options.maxReconnectDelay, DEFAULTS.maxReconnectDelay, 'maxReconnectDelay'),
      requestTimeout: positive(options.requestTimeout, DEFAULTS.requestTimeout, 'requestTimeout'),
      maxBufferedMessages: nonNegative(options.maxBufferedMessages, DEFAULTS.maxBufferedMessages, 'maxBufferedMessages'),
      overlapGrace: nonNegative(options.overlapGrace, DEFAULTS.overlapGrace, 'overlapGrace'),
      reorderWindow: nonNegative(options.reorderWindow, DEFAULTS.reorderWindow, 'reorderWindow'),
      random: options.random ?? Math.random,
    };
    // Listeners attached right after connect() see the first events.
    void Promise.resolve().then(() => this.establish());
  }

  /** The current state. */
  get state(): ClientState {
    return this.currentState;
  }

  /** Listens to an event; returns a function that stops listening. */
  on<E extends keyof ClientEvents>(event: E, listener: Listener<ClientEvents[E]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Stops listening. */
  off<E extends keyof ClientEvents>(event: E, listener: Listener<ClientEvents[E]>): void {
    this.listeners.get(event)?.delete(listener);
  }

  /** Resolves when the client is open (at once if it is); rejects if it closes for good first. */
  whenOpen(): Promise<void> {
    if (this.currentState === 'open') return Promise.resolve();
    if (this.currentState === 'closed') return Promise.reject(new AuthWsError('Closed', 'the client is closed'));
    return new Promise((resolve, reject) => {
      const off = this.on('state', (state) => {
        if (state === 'open') resolve();
        else if (state === 'closed') reject(this.lastFatal ?? new AuthWsError('Closed', 'the client is closed'));
        else return;
        off();
      });
    });
  }


  /**
   * Sends a frame as it is (for custom routes). While disconnected it waits in a bounded buffer and
   * goes out, in order, once connected; throws `BufferFull` when the buffer is full.
   */
  send(frame: object): void {
    this.sendText(JSON.stringify(frame));
  }

  /** `{"action":"broadcast","message":...}`: every connection receives `{"message","sender"}`. */
  broadcast(message: unknown): void {
    this.send({ action: 'broadcast', message });
  }

  /** `{"action":"send","to":...,"message":...}`: every connection of `userId` receives `{"message","sender"}`. */
  sendTo(userId: string, message: unknown): void {
    this.send({ action: 'send', to: userId, message });
  }

  /**
   * Sends `frame` with a new `requestId` and resolves with the answer that echoes it; rejects with
   * the error frame (as an `AuthWsError`), or `Timeout` after `requestTimeout`.
   */
  request<T = any>(frame: { action: string; [field: string]: unknown }, options: { timeout?: number } = {}): Promise<T> {
    return this.requestOn(undefined, frame, options.timeout);
  }

  /** Publishes on a channel; resolves with the message's id. */
  async publish(channel: string, message: unknown): Promise<{ id: number }> {
    const answer = await this.request({ action: 'publish', channel, message });
    return { id: answer.id };
  }

  /** A page of the channel's members (user ids). */
  async presence(channel: string, cursor?: string): Promise<PresencePage> {
    const answer = await this.request({ action: 'presence', channel, ...(cursor === undefined ? {} : { cursor }) });
    return { members: answer.members ?? [], cursor: answer.cursor ?? null };
  }

  /** An application-level ping; resolves at the pong. */
  async ping(): Promise<void> {
    await this.request({ action: 'ping' });
  }

  /**
   * Subscribes to a channel (`rooms/lobby`, or a wildcard `rooms/*` where the API allows it). The
   * subscription survives reconnects and roll-overs: the client resubscribes on every new connection
   * with `since` the last id it saw on the channel, and drops messages it has already delivered.
   */
  subscribe(channel: string, handler: (message: ChannelMessage) => void, options: SubscribeOptions = {}): Subscription {
    if (typeof channel !== 'string' || channel.length === 0) throw new TypeError('subscribe(): channel must be a non-empty string');
    if (typeof handler !== 'function') throw new TypeError('subscribe(): handler must be a function');
    if (this.stopped) throw new AuthWsError('Closed', 'the client is closed');
    if (options.since !== undefined) {
      if (!Number.isInteger(options.since) || options.since < 0) throw new TypeError(`subscribe(): since must be an integer >= 0, got ${options.since}`);
      if (channel.includes('*')) throw new TypeError('subscribe(): since needs a concrete channel, not a wildcard');
      if ((this.lastIds.get(channel) ?? -1) < options.since) this.lastIds.set(channel, options.since);
    }
    const record: SubscriptionRecord = { channel, handler, options };
    const ready = new Promise<void>((resolve, reject) => (record.settle = { resolve, reject }));
    ready.catch(() => undefined); // the error is also reported as an `error` event
    let records = this.subscriptions.get(channel);
    if (!records) this.subscriptions.set(channel, (records = new Set()));
    records.add(record);
    // Subscribing is idempotent on the server, and the ack settles `ready`. A connection still
    // being resubscribed (reconnect, roll-over) is asked too, so it does not miss this one.
    for (const link of new Set([this.primary, this.joining])) {
      if (link?.opened && !link.ended) void this.subscribeOn(link, channel);
    }
    return {
      channel,
      ready,
      unsubscribe: () => this.unsubscribe(record),
    };
  }

  /** Closes the connection for good; pending requests reject with `Closed`. */
  close(code = 1000, reason = 'closed by the client'): void {
    if (this.stopped) return;
    this.stop(new AuthWsError('Closed', 'the client is closed'), { code, reason });
  }

  // ---- connections -------------------------------------------------------------------------

  private async establish(): Promise<void> {
    if (this.stopped) return;
    this.setState(this.everOpened || this.attempt > 0 ? 'reconnecting' : 'connecting');
    const token = await this.fetchToken();
    if (token === undefined || this.stopped) return;
    if (this.refused && this.refused.token === token) {
      this.stop(new AuthWsError('Unauthorized', `the server refused the connection with HTTP ${this.refused.status}, and the token provider gave the same token again: not reconnecting until a fresh token is had (call connect() again)`, { status: this.refused.status }));
      return;
    }
    let link: Link;
    try {
      link = await this.openLink(token);
    } catch (err) {
      const failed = err as HandshakeFailed;
      this.refused = failed.status === 401 || failed.status === 403 ? { token, status: failed.status } : undefined;
      this.scheduleReconnect(failed.message);
      return;
    }
    this.refused = undefined;
    if (this.stopped) {
      link.socket.close(1000, 'closed by the client');
      return;
    }
    if (link.ended) {
      this.scheduleReconnect('the connection closed as it opened');
      return;
    }
    // Channels heard only through a wildcard subscription get no replay, and their ids may have
    // restarted meanwhile: with no other connection left to repeat a message, their next id is new.
    for (const channel of [...this.lastIds.keys()]) {
      if (!this.subscriptions.has(channel)) this.lastIds.delete(channel);
    }
    // Nothing else is open: the connection takes over at once, and resubscribes (with `since`) as it
    // does. A server slow to acknowledge delays no message.
    this.promote(link, false);
    void this.resubscribeAll(link);
  }

  /** Asks the provider for a token; on failure the client stops with `TokenUnavailable`. */
  private async fetchToken(): Promise<string | undefined> {
    try {
      const token = await this.options.token();
      if (typeof token !== 'string' || token.length === 0) throw new TypeError(`it returned ${token === '' ? 'an empty string' : typeof token}, not a token`);
      return token;
    } catch (err) {
      if (!this.stopped) {
        this.stop(new AuthWsError('TokenUnavailable', `the token provider failed (${(err as Error)?.message ?? err}): not reconnecting`, { cause: err }));
      }
      return undefined;
    }
  }

  /** Opens a WebSocket with `token`; resolves once open, rejects with HandshakeFailed if it closes first. */
  private openLink(token: string): Promise<Link> {
    const { url, tokenLocation, tokenName, WebSocket: WebSocketImpl } = this.options;
    let socket: WebSocketLike;
    try {
      if (tokenLocation === 'subprotocol') socket = new WebSocketImpl(url, [tokenName, token]);
      else if (tokenLocation === 'query') socket = new WebSocketImpl(`${url}${url.includes('?') ? '&' : '?'}${encodeURIComponent(tokenName)}=${encodeURIComponent(token)}`);
      else socket = new WebSocketImpl(url, [], { headers: { [tokenName]: tokenName.toLowerCase() === 'authorization' ? `Bearer ${token}` : token } });
    } catch (err) {
      return Promise.reject(new HandshakeFailed(undefined, 0, (err as Error)?.message ?? String(err)));
    }
    const link = new Link(socket, token);
    return new Promise((resolve, reject) => {
      let status: number | undefined;
      socket.addEventListener('open', () => {
        link.opened = true;
        resolve(link);
      });
      socket.addEventListener('error', (event: { message?: string; error?: Error }) => {
        // Node's `ws` names the status of a refused handshake; browsers tell nothing (see the README).
        const match = /Unexpected server response: (\d+)/.exec(event?.message ?? event?.error?.message ?? '');
        if (match) status = Number(match[1]);
      });
      socket.addEventListener('close', (event: { code?: number; reason?: string }) => {
        link.ended = true;
        if (!link.opened) reject(new HandshakeFailed(status, event?.code ?? 1006, event?.reason ?? ''));
        else this.onLinkClosed(link, event?.code ?? 1006, event?.reason ?? '');
      });
      socket.addEventListener('message', (event: { data: unknown }) => {
        if (typeof event.data === 'string') this.onFrame(link, event.data);
      });
    });
  }

  /** Makes `link` the connection requests go through, and starts its timers. */
  private promote(link: Link, rollOver: boolean): void {
    const old = this.primary;
    this.primary = link;
    this.attempt = 0;
    this.everOpened = true;
    this.armKeepAlive(link);
    if (this.options.rollOverAfter > 0) link.timers.rollOver = setTimeout(() => void this.rollOver(), this.options.rollOverAfter);
    this.armReauth(link);
    if (old && old !== link) this.retire(old);
    else if (this.overlap?.old.ended) this.endOverlapLater(this.overlap);
    this.setState('open');
    this.emit('open', { rollOver });
    this.flushOutbox();
    // TokenExpired arrived while the connection was being resubscribed.
    if (link.tokenExpired) void this.rollOver();
  }

  /**
   * Closes a replaced connection once frames already on their way to it had time to arrive
   * (`DRAIN_MS`) and its requests were answered (at most `requestTimeout`).
   */
  private retire(old: Link): void {
    old.clearTimers();
    const deadline = Date.now() + this.options.requestTimeout;
    const closeWhenQuiet = () => {
      if (old.ended) return;
      const busy = [...this.pending.values()].some((request) => request.link === old);
      if (busy && Date.now() < deadline) {
        old.timers.rollOver = setTimeout(closeWhenQuiet, 50);
        return;
      }
      old.socket.close(1000, 'roll-over');
    };
    old.timers.rollOver = setTimeout(closeWhenQuiet, DRAIN_MS);
  }

  /** Frames without an id are still compared with the old connection's for `overlapGrace` after it closed. */
  private endOverlapLater(overlap: Overlap): void {
    clearTimeout(this.overlapTimer);
    this.overlapTimer = setTimeout(() => {
      if (this.overlap === overlap) this.overlap = undefined;
    }, this.options.overlapGrace);
  }

  private onLinkClosed(link: Link, code: number, reason: string): void {
    link.clearTimers();
    if (this.overlap?.old === link && this.primary === this.overlap.next) this.endOverlapLater(this.overlap);
    if (link !== this.primary || this.stopped) return; // a retired or a never-promoted connection
    this.primary = undefined;
    const expired = link.tokenExpired;
    if (this.rolling) {
      // The roll-over in progress becomes the reconnect.
      this.emit('close', { code, reason, willReconnect: true });
      this.setState('reconnecting');
      return;
    }
    this.emit('close', { code, reason, willReconnect: true });
    this.scheduleReconnect(`closed with ${code}${reason ? ` ${reason}` : ''}`, expired ? 0 : undefined);
  }

  private scheduleReconnect(reason: string, delay?: number): void {
    if (this.stopped) return;
    const wait = delay ?? backoffDelay(this.attempt, this.options.reconnectDelay, this.options.maxReconnectDelay, this.options.random);
    this.setState('reconnecting');
    this.emit('reconnecting', { attempt: this.attempt, delay: wait, reason });
    this.attempt++;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.establish(), wait);
  }

  /**
   * Replaces the connection before API Gateway's cap (or after its token expired): opens a new one
   * with a fresh token, resubscribes there with `since`, then closes the old one. Until the old one
   * is closed both deliver; channel messages are deduplicated by id, other frames by their text.
   */
  private async rollOver(): Promise<void> {
    const old = this.primary;
    if (this.rolling || this.stopped || !old) return;
    this.rolling = true;
    old.clearTimers();
    this.armKeepAlive(old);
    const token = await this.fetchToken();
    if (token === undefined || this.stopped) {
      this.rolling = false;
      return;
    }
    const overlap: Overlap = { old, seen: new Map([[old, new Map()]]) };
    this.overlap = overlap;
    let link: Link;
    try {
      link = await this.openLink(token);
    } catch (err) {
      this.rolling = false;
      if (this.overlap === overlap) this.overlap = undefined;
      if (this.primary === old && !old.ended) {
        // Keep the old connection; try again after a backoff delay.
        const { reconnectDelay, maxReconnectDelay, random } = this.options;
        old.timers.rollOver = setTimeout(() => void this.rollOver(), backoffDelay(this.attempt++, reconnectDelay, maxReconnectDelay, random));
      } else {
        this.scheduleReconnect((err as Error).message);
      }
      return;
    }
    if (this.stopped) {
      link.socket.close(1000, 'closed by the client');
      return;
    }
    overlap.next = link;
    overlap.seen.set(link, new Map());
    this.joining = link;
    await this.resubscribeAll(link);
    this.joining = undefined;
    this.rolling = false;
    if (this.stopped) return;
    if (link.ended) {
      this.scheduleReconnect('the new connection closed during the roll-over');
      return;
    }
    this.promote(link, true);
  }

  private armKeepAlive(link: Link): void {
    clearTimeout(link.timers.keepAlive);
    link.timers.keepAlive = setTimeout(() => {
      if (link.ended) return;
      this.write(link, JSON.stringify({ action: 'ping' }));
    }, this.options.keepAliveInterval);
  }

  private armReauth(link: Link, retryIn?: number): void {
    clearTimeout(link.timers.reauth);
    if (this.options.reauthBefore <= 0 || link.expiresAt === undefined) return;
    const wait = retryIn ?? Math.max(0, link.expiresAt * 1000 - this.options.reauthBefore - Date.now());
    link.timers.reauth = setTimeout(() => void this.reauth(link), wait);
  }

  /** Sends `reauth` with a fresh token; if the server refuses it, rolls over to a new connection. */
  private async reauth(link: Link): Promise<void> {
    const token = await this.fetchToken();
    if (token === undefined || link.ended || this.stopped) return;
    const expiresAt = tokenExpiry(token);
    if (expiresAt === undefined || (link.expiresAt !== undefined && expiresAt <= link.expiresAt)) {
      // The provider has no newer token yet: ask again later, before the old one runs out.
      const left = (link.expiresAt ?? 0) * 1000 - Date.now();
      this.armReauth(link, Math.max(1_000, Math.min(30_000, left / 2)));
      return;
    }
    try {
      const answer = await this.requestOn(link, { action: 'reauth', token });
      link.expiresAt = typeof answer?.expiresAt === 'number' ? answer.expiresAt : expiresAt;
      this.armReauth(link);
    } catch (err) {
      if (link.ended || this.stopped) return;
      this.emit('error', err as AuthWsError);
      if (link === this.primary) void this.rollOver();
    }
  }

  private stop(error: AuthWsError, close?: { code: number; reason: string }): void {
    this.stopped = true;
    this.lastFatal = error;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.overlapTimer);
    const links = new Set<Link | undefined>([this.primary, this.joining, this.overlap?.old, this.overlap?.next]);
    for (const link of links) {
      if (!link) continue;
      link.clearTimers();
      if (!link.ended) link.socket.close(close?.code ?? 1000, close?.reason ?? error.code);
    }
    this.primary = undefined;
    this.joining = undefined;
    this.overlap = undefined;
    for (const [, request] of this.pending) {
      clearTimeout(request.timer);
      request.reject(new AuthWsError('Closed', `the client closed before the answer to ${request.action} (${error.message})`, { action: request.action, channel: request.channel }));
    }
    this.pending.clear();
    this.outbox.length = 0;
    for (const resync of this.resyncs.values()) clearTimeout(resync.timer);
    this.resyncs.clear();
    for (const held of this.held.values()) clearTimeout(held.timer);
    this.held.clear();
    for (const records of this.subscriptions.values()) {
      for (const record of records) record.settle?.reject(error);
    }
    if (error.code !== 'Closed') this.emit('error', error);
    this.emit('close', { code: close?.code ?? 1000, reason: close?.reason ?? error.message, willReconnect: false });
    this.setState('closed');
  }

  // ---- sending -------------------------------------------------------------------------------

  /** Writes `text` to the primary connection (returned) or buffers it (undefined). */
  private sendText(text: string): Link | undefined {
    if (this.stopped) throw new AuthWsError('Closed', 'the client is closed');
    const link = this.primary;
    if (link?.opened && !link.ended && link.socket.readyState === OPEN) {
      this.write(link, text);
      return link;
    }
    if (this.outbox.length >= this.options.maxBufferedMessages) {
      throw new AuthWsError('BufferFull', `not connected, and ${this.outbox.length} messages already wait to be sent (maxBufferedMessages): wait for the 'open' event before sending more`);
    }
    this.outbox.push(text);
    return undefined;
  }

  private flushOutbox(): void {
    const link = this.primary;
    while (link && this.outbox.length > 0 && !link.ended) this.write(link, this.outbox.shift()!);
  }

  private write(link: Link, text: string): void {
    if (link.ended) return; // a request on it then times out
    link.socket.send(text);
    this.armKeepAlive(link);
  }

  /** A request on `link` (written now), or through the primary connection / buffer. */
  private requestOn(link: Link | undefined, frame: RequestFrame, timeout = this.options.requestTimeout): Promise<any> {
    const requestId = `${REQUEST_ID_PREFIX}${++this.requestSeq}`;
    const channel = typeof frame.channel === 'string' ? frame.channel : undefined;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new AuthWsError('Timeout', `no answer to ${frame.action}${channel ? ` on ${channel}` : ''} within ${timeout} ms`, { action: frame.action, channel, requestId }));
      }, timeout);
      const pending: PendingRequest = { action: frame.action, channel, resolve, reject, timer };
      this.pending.set(requestId, pending);
      try {
        const text = JSON.stringify({ ...frame, requestId });
        if (link) this.write(link, text);
        pending.link = link ?? this.sendText(text);
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(requestId);
        reject(err);
      }
    });
  }

  // ---- channels ------------------------------------------------------------------------------

  private async subscribeOn(link: Link, channel: string): Promise<void> {
    const since = channel.includes('*') ? undefined : this.lastIds.get(channel);
    let resync: Resync | undefined;
    if (since !== undefined) {
      this.endResync(channel);
      resync = { link, acked: false, suspect: [] };
      this.resyncs.set(channel, resync);
    }
    try {
      const answer = await this.requestOn(link, { action: 'subscribe', channel, ...(since === undefined ? {} : { since }) });
      const records = [...(this.subscriptions.get(channel) ?? [])];
      if (answer?.reset === true) {
        this.lastIds.set(channel, 0);
        this.skipped.delete(channel);
      }
      for (const record of records) {
        record.settle?.resolve();
        if (answer?.reset === true) record.options.onReset?.(channel);
        if (answer?.gap === true) record.options.onGap?.(channel);
      }
      if (resync && this.resyncs.get(channel) === resync) {
        resync.acked = true;
        const suspect = resync.suspect.splice(0);
        if (answer?.reset === true) for (const frame of suspect.sort((a, b) => a.id - b.id)) this.onChannelFrame(link, frame);
        this.settleLater(channel, resync);
      }
    } catch (err) {
      if (resync && this.resyncs.get(channel) === resync) this.endResync(channel);
      const error = err as AuthWsError;
      if (link.ended || this.stopped) return; // asked again on the next connection
      if (error.code === 'Timeout') {
        this.emit('error', error);
        return;
      }
      // Refused: the subscription ends.
      const records = this.subscriptions.get(channel);
      this.subscriptions.delete(channel);
      for (const record of records ?? []) record.settle?.reject(error);
      this.emit('error', error);
    }
  }

  private resubscribeAll(link: Link): Promise<void> {
    return Promise.all([...this.subscriptions.keys()].map((channel) => this.subscribeOn(link, channel))).then(() => undefined);
  }

  private async unsubscribe(record: SubscriptionRecord): Promise<void> {
    const records = this.subscriptions.get(record.channel);
    if (!records?.delete(record)) return;
    record.settle?.reject(new AuthWsError('Closed', 'unsubscribed', { channel: record.channel }));
    if (records.size > 0) return;
    this.subscriptions.delete(record.channel);
    if (this.primary?.opened && !this.primary.ended) await this.request({ action: 'unsubscribe', channel: record.channel });
  }

  // ---- receiving -----------------------------------------------------------------------------

  private onFrame(link: Link, text: string): void {
    let frame: any;
    try {
      frame = JSON.parse(text);
    } catch {
      frame = undefined;
    }
    if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) {
      if (this.firstDelivery(link, text)) this.emit('message', { message: text });
      return;
    }
    if (typeof frame.requestId === 'string' && this.answer(frame.requestId, frame)) return;
    if (frame.error && typeof frame.error === 'object') {
      const error = new AuthWsError(String(frame.error.code ?? 'Error'), String(frame.error.message ?? ''), { action: frame.action, channel: frame.channel, requestId: frame.requestId });
      if (error.code === 'TokenExpired') {
        link.tokenExpired = true;
        if (link === this.primary) void this.rollOver();
      }
      this.emit('error', error);
      return;
    }
    if (typeof frame.action === 'string' && this.answerWithoutId(frame)) return;
    if (typeof frame.channel === 'string' && frame.presence && typeof frame.presence === 'object') {
      if (!this.firstDelivery(link, text)) return; // both sides of a roll-over see it
      const event: PresenceEvent = { channel: frame.channel, event: frame.presence.event, userId: frame.presence.userId };
      for (const record of this.recordsFor(frame.channel)) record.options.onPresence?.(event);
      return;
    }
    if (typeof frame.channel === 'string' && typeof frame.id === 'number') {
      this.onChannelFrame(link, frame);
      return;
    }
    if (this.firstDelivery(link, text)) this.emit('message', frame);
  }

  /**
   * A channel message: delivered once, in id order. Ids at or below the last delivered are dropped
   * (a replay, both sides of a roll-over, or both a channel and a wildcard subscription). A message
   * that skips ids waits (`reorderWindow`, or while a resubscribe's replay settles) for the ones
   * before it: concurrent publishes may arrive out of order, and a live message may arrive before
   * the replay. During a resubscribe, one with an old id on the new connection waits for the ack to
   * say whether the channel's ids restarted.
   */
  private onChannelFrame(link: Link, frame: ChannelFrame): void {
    const channel = frame.channel;
    const last = this.lastIds.get(channel);
    const resync = this.resyncs.get(channel);
    if (last !== undefined && frame.id <= last) {
      if (this.skipped.get(channel)?.delete(frame.id)) this.deliver(frame); // late, but not lost
      else if (resync && !resync.acked && link === resync.link) resync.suspect.push(frame);
      return;
    }
    if (frame.replay === true) {
      if (resync?.acked) this.settleLater(channel, resync);
      this.releaseHeld(channel, frame.id);
      // Replayed messages come in order; one that skips ids follows a gap in history.
      if (frame.id > (this.lastIds.get(channel) ?? 0)) this.deliver(frame);
    } else if (last !== undefined && frame.id > last + 1) {
      this.hold(channel, frame);
      return;
    } else {
      this.deliver(frame);
    }
    this.releaseHeld(channel);
  }

  private hold(channel: string, frame: ChannelFrame): void {
    let held = this.held.get(channel);
    if (!held) this.held.set(channel, (held = { frames: [] }));
    if (held.frames.some((kept) => kept.id === frame.id)) return;
    held.frames.push(frame);
    held.frames.sort((a, b) => a.id - b.id);
    held.timer ??= setTimeout(() => {
      held!.timer = undefined;
      // A resubscribe in progress releases them when its replay settled.
      if (!this.resyncs.has(channel)) this.releaseHeld(channel, Infinity);
    }, this.options.reorderWindow);
  }

  /**
   * Delivers held messages that now follow on, and those with ids below `below` (accepting the ids
   * they skip: those are delivered late if they still arrive).
   */
  private releaseHeld(channel: string, below = 0): void {
    const held = this.held.get(channel);
    if (!held) return;
    while (held.frames.length > 0) {
      const next = held.frames[0];
      const last = this.lastIds.get(channel) ?? 0;
      if (next.id > last + 1 && next.id >= below) break;
      held.frames.shift();
      if (next.id <= last) continue;
      if (next.id > last + 1) this.skip(channel, last + 1, next.id);
      this.deliver(next);
    }
    if (held.frames.length === 0) {
      clearTimeout(held.timer);
      this.held.delete(channel);
    }
  }

  /** Remembers ids [from, to) as skipped, so they are still delivered if they arrive. */
  private skip(channel: string, from: number, to: number): void {
    let skipped = this.skipped.get(channel);
    if (!skipped) this.skipped.set(channel, (skipped = new Set()));
    for (let id = Math.max(from, to - MAX_SKIPPED); id < to; id++) skipped.add(id);
    for (const id of skipped) {
      if (skipped.size <= MAX_SKIPPED) break;
      skipped.delete(id);
    }
  }

  private deliver(frame: ChannelFrame): void {
    if (frame.id > (this.lastIds.get(frame.channel) ?? 0)) this.lastIds.set(frame.channel, frame.id);
    const message: ChannelMessage = {
      channel: frame.channel, message: frame.message, sender: frame.sender, id: frame.id, replay: frame.replay === true,
    };
    for (const record of this.recordsFor(frame.channel)) record.handler(message);
  }

  /** Ends the resync of `channel` `REPLAY_SETTLE_MS` after its ack or last replayed message. */
  private settleLater(channel: string, resync: Resync): void {
    clearTimeout(resync.timer);
    resync.timer = setTimeout(() => {
      if (this.resyncs.get(channel) === resync) this.endResync(channel);
    }, REPLAY_SETTLE_MS);
  }

  /** The replay is over: held messages are delivered in id order (the ids they skip stay missed). */
  private endResync(channel: string): void {
    const resync = this.resyncs.get(channel);
    if (!resync) return;
    clearTimeout(resync.timer);
    this.resyncs.delete(channel);
    this.releaseHeld(channel, Infinity);
  }

  /**
   * Frames without an id during a roll-over: both connections may receive the same broadcast. A
   * frame equal to one the other connection delivered (and not yet matched) is dropped.
   */
  private firstDelivery(link: Link, text: string): boolean {
    const overlap = this.overlap;
    if (!overlap) return link === this.primary || this.primary === undefined;
    const mine = overlap.seen.get(link);
    if (!mine) return false;
    const otherLink = link === overlap.old ? overlap.next : overlap.old;
    const other = otherLink ? overlap.seen.get(otherLink)! : new Map<string, number>();
    const count = other.get(text) ?? 0;
    if (count > 0) {
      if (count === 1) other.delete(text);
      else other.set(text, count - 1);
      return false;
    }
    mine.set(text, (mine.get(text) ?? 0) + 1);
    return true;
  }

  private recordsFor(channel: string): SubscriptionRecord[] {
    const matched: SubscriptionRecord[] = [];
    for (const [pattern, records] of this.subscriptions) {
      if (channelMatches(pattern, channel)) matched.push(...records);
    }
    return matched;
  }

  private answer(requestId: string, frame: any): boolean {
    const request = this.pending.get(requestId);
    if (!request) return false;
    this.pending.delete(requestId);
    clearTimeout(request.timer);
    if (frame.error && typeof frame.error === 'object') {
      request.reject(new AuthWsError(String(frame.error.code ?? 'Error'), String(frame.error.message ?? ''), {
        action: frame.action ?? request.action, channel: frame.channel ?? request.channel, requestId,
      }));
    } else {
      request.resolve(frame);
    }
    return true;
  }

  /** Servers that do not echo `requestId` (before channels): the oldest request the answer fits. */
  private answerWithoutId(frame: any): boolean {
    const answers: Record<string, string> = { pong: 'ping', reauthenticated: 'reauth', subscribed: 'subscribe', unsubscribed: 'unsubscribe', published: 'publish', presence: 'presence' };
    const action = answers[frame.action];
    if (!action) return false;
    if (action === 'presence' && !Array.isArray(frame.members)) return false;
    for (const [requestId, request] of this.pending) {
      if (request.action === action && (request.channel === undefined || request.channel === frame.channel)) return this.answer(requestId, frame);
    }
    return action === 'ping'; // an unasked pong (keep-alive) is no message for the app
  }

  // ---- events --------------------------------------------------------------------------------

  private setState(state: ClientState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.emit('state', state);
  }

  private emit<E extends keyof ClientEvents>(event: E, payload: ClientEvents[E]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        listener(payload);
      } catch (err) {
        // A listener's bug must not break the connection: report it outside this call stack.
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) throw new TypeError(`connect(): ${name} must be a number of milliseconds > 0, got ${value}`);
  return value;
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) throw new TypeError(`connect(): ${name} must be a number >= 0, got ${value}`);
  return value;
}
