import { IncomingMessage } from 'node:http';
import { AddressInfo } from 'node:net';
import { jwtVerify, SignJWT } from 'jose';
import WebSocket, { WebSocketServer } from 'ws';

/**
 * A WebSocket peer that speaks the channels wire protocol (subscribe, unsubscribe, publish,
 * presence, requestId echo, message ids, `since` replay with gaps, presence events, error frames)
 * besides broadcast, send, ping and reauth, for testing clients until the API itself serves
 * channels. Tokens are HS256 JWTs, offered as the subprotocol pair `authws, <token>`; the handshake
 * is refused with 401 for a missing or bad token, as API Gateway does.
 */
export interface ChannelsServerOptions {
  /** The HMAC secret tokens are signed with. */
  readonly secret: string;
  /** Messages each channel keeps for `since` replay. Default 100. */
  readonly historyLimit?: number;
  /** Channel prefixes (`rooms/`) whose presence is tracked. Default: every channel. */
  readonly presencePrefixes?: readonly string[];
  /** Members per presence page. Default 2. */
  readonly presencePageSize?: number;
  /** Publishes per user before `RateLimited`. Default: no limit. */
  readonly publishLimitPerUser?: number;
  /**
   * Milliseconds between a `subscribe` ack and its replayed messages, while the subscription already
   * receives live ones (the real server's replay may trail live messages too). Default 0.
   */
  readonly replayDelay?: number;
  /** Milliseconds before a `subscribe` is acknowledged, while the subscription already receives live messages. Default 0. */
  readonly ackDelay?: number;
}

interface Peer {
  readonly socket: WebSocket;
  readonly userId: string;
  expiresAt: number | undefined;
  readonly subscriptions: Set<string>;
}

interface Channel {
  nextId: number;
  readonly history: Array<{ id: number; frame: Record<string, unknown> }>;
}

const CHANNEL_SEGMENT = /^[A-Za-z0-9_\-.:@=]+$/;

export class ChannelsServer {
  static async start(options: ChannelsServerOptions): Promise<ChannelsServer> {
    const server = new ChannelsServer(options);
    await new Promise<void>((resolve) => server.wss.once('listening', () => resolve()));
    return server;
  }

  /** Every frame a client sent, parsed, in order. */
  readonly received: Array<{ userId: string; frame: any }> = [];
  /** How many handshakes were accepted / refused. */
  accepted = 0;
  refused = 0;
  private readonly peers = new Set<Peer>();
  private readonly channels = new Map<string, Channel>();
  private readonly publishes = new Map<string, number>();
  private readonly wss: WebSocketServer;
  private readonly key: Uint8Array;

  private constructor(private readonly options: ChannelsServerOptions) {
    this.key = new TextEncoder().encode(options.secret);
    this.wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (protocols) => (protocols.has('authws') ? 'authws' : false),
      verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean, code?: number) => void) => {
        this.verify(info.req).then(
          (claims) => {
            (info.req as any).claims = claims;
            this.accepted++;
            done(true);
          },
          () => {
            this.refused++;
            done(false, 401);
          },
        );
      },
    });
    this.wss.on('connection', (socket, request) => this.onConnection(socket, (request as any).claims));
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/dev`;
  }

  /** Open connections of a user (all users without one). */
  connectionCount(userId?: string): number {
    return [...this.peers].filter((peer) => userId === undefined || peer.userId === userId).length;
  }

  /** Signs a token for `userId` valid `ttlSeconds`. */
  token(userId: string, ttlSeconds = 3600): Promise<string> {
    return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds).sign(this.key);
  }

  /** Publishes from the server side (a backend), as a user would. */
  publish(channel: string, message: unknown, sender = 'backend'): number {
    return this.deliver(channel, message, sender);
  }

  /**
   * Publishes from the server side, but sends it to the subscribers only when the returned function
   * is called: a fan-out that runs late, as concurrent publishes may (ids then arrive out of order).
   */
  publishLate(channel: string, message: unknown, sender = 'backend'): () => void {
    return this.number(channel, message, sender).fanOut;
  }

  /** Ends every connection abruptly (a network failure: close code 1006 on the client). */
  dropAll(): void {
    for (const peer of this.peers) peer.socket.terminate();
  }

  /** Closes every connection of `userId` with `code` (API Gateway's caps close with 1001). */
  closeUser(userId: string, code = 1001, reason = 'Going away'): void {
    for (const peer of this.peers) if (peer.userId === userId) peer.socket.close(code, reason);
  }

  /** Sends `{"error":{"code":"TokenExpired"}}` to `userId`'s connections and closes them, as the API does. */
  expireUser(userId: string): void {
    for (const peer of this.peers) {
      if (peer.userId !== userId) continue;
      peer.socket.send(JSON.stringify({ error: { code: 'TokenExpired', message: 'The token of this connection has expired' } }));
      peer.socket.close(1000, 'Token expired');
    }
  }

  /** Forgets a channel's history before `keepFrom` (as a bounded history does). */
  trimHistory(channel: string, keepFrom: number): void {
    const state = this.channels.get(channel);
    if (!state) return;
    while (state.history.length > 0 && state.history[0].id < keepFrom) state.history.shift();
  }

  /** Forgets a channel's ids and history, as a recreated table does: the next id is 1 again. */
  resetChannel(channel: string): void {
    this.channels.delete(channel);
  }

  async close(): Promise<void> {
    for (const peer of this.peers) peer.socket.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private async verify(request: IncomingMessage): Promise<{ sub: string; exp?: number }> {
    const offered = String(request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (offered[0] !== 'authws' || !offered[1]) throw new Error('no token');
    const { payload } = await jwtVerify(offered[1], this.key, { algorithms: ['HS256'] });
    if (!payload.sub) throw new Error('no sub');
    return { sub: payload.sub, exp: payload.exp };
  }

  private onConnection(socket: WebSocket, claims: { sub: string; exp?: number }): void {
    const peer: Peer = { socket, userId: claims.sub, expiresAt: claims.exp, subscriptions: new Set() };
    this.peers.add(peer);
    socket.on('message', (data) => {
      let frame: any;
      try {
        frame = JSON.parse(data.toString());
      } catch {
        return this.send(peer, { error: { code: 'BadRequest', message: 'The frame is not JSON' } });
      }
      this.received.push({ userId: peer.userId, frame });
      void this.handle(peer, frame);
    });
    socket.on('close', () => {
      this.peers.delete(peer);
      for (const channel of peer.subscriptions) this.leave(peer, channel);
    });
  }

  private async handle(peer: Peer, frame: any): Promise<void> {
    const requestId = typeof frame?.requestId === 'string' && frame.requestId.length <= 64 ? frame.requestId : undefined;
    const echo = requestId === undefined ? {} : { requestId };
    const refuse = (code: string, message: string) => this.send(peer, {
      error: { code, message },
      ...(frame?.action ? { action: frame.action } : {}),
      ...(typeof frame?.channel === 'string' ? { channel: frame.channel } : {}),
      ...echo,
    });
    if (frame === null || typeof frame !== 'object' || typeof frame.action !== 'string') return refuse('BadRequest', 'A frame is a JSON object with an action');
    switch (frame.action) {
      case 'ping':
        return this.send(peer, { action: 'pong', ...echo });
      case 'reauth': {
        try {
          const { payload } = await jwtVerify(String(frame.token), this.key, { algorithms: ['HS256'] });
          if (payload.sub !== peer.userId || payload.exp === undefined) return refuse('Forbidden', 'This connection cannot be reauthenticated.');
          peer.expiresAt = payload.exp;
          return this.send(peer, { action: 'reauthenticated', expiresAt: payload.exp, ...echo });
        } catch {
          return refuse('Forbidden', 'This connection cannot be reauthenticated.');
        }
      }
      case 'broadcast':
        for (const other of this.peers) this.send(other, { message: frame.message, sender: peer.userId });
        return;
      case 'send':
        for (const other of this.peers) if (other.userId === frame.to) this.send(other, { message: frame.message, sender: peer.userId });
        return;
      case 'subscribe': {
        const problem = channelProblem(frame.channel, true);
        if (problem) return refuse('BadRequest', problem);
        if (!this.allowed(peer, frame.channel)) return refuse('Forbidden', `You may not subscribe to ${frame.channel}`);
        if (frame.since !== undefined && (!Number.isInteger(frame.since) || frame.since < 0 || frame.channel.includes('*'))) {
          return refuse('BadRequest', 'since is an integer >= 0, on a concrete channel only');
        }
        const fresh = !peer.subscriptions.has(frame.channel);
        peer.subscriptions.add(frame.channel);
        const state = this.channel(frame.channel);
        // A since above the last id: the channel's ids restarted (resetChannel), replay from the start.
        const reset = frame.since !== undefined && frame.since > state.nextId - 1;
        const since = reset ? 0 : frame.since;
        const replay = since === undefined ? [] : state.history.filter((entry) => entry.id > since);
        const oldest = state.history[0]?.id ?? state.nextId;
        const gap = since !== undefined && oldest > since + 1;
        const answer = () => {
          this.send(peer, { action: 'subscribed', channel: frame.channel, ...(gap ? { gap: true } : {}), ...(reset ? { reset: true } : {}), ...echo });
          const sendReplay = () => {
            for (const entry of replay) this.send(peer, { ...entry.frame, replay: true });
          };
          if (this.options.replayDelay) setTimeout(sendReplay, this.options.replayDelay);
          else sendReplay();
        };
        if (this.options.ackDelay) setTimeout(answer, this.options.ackDelay);
        else answer();
        if (fresh) this.join(peer, frame.channel);
        return;
      }
      case 'unsubscribe': {
        const problem = channelProblem(frame.channel, true);
        if (problem) return refuse('BadRequest', problem);
        if (peer.subscriptions.delete(frame.channel)) this.leave(peer, frame.channel);
        return this.send(peer, { action: 'unsubscribed', channel: frame.channel, ...echo });
      }
      case 'publish': {
        const problem = channelProblem(frame.channel, false);
        if (problem) return refuse('BadRequest', problem);
        if (!('message' in frame)) return refuse('BadRequest', 'publish needs a message');
        if (!this.allowed(peer, frame.channel)) return refuse('Forbidden', `You may not publish to ${frame.channel}`);
        const count = (this.publishes.get(peer.userId) ?? 0) + 1;
        this.publishes.set(peer.userId, count);
        if (this.options.publishLimitPerUser !== undefined && count > this.options.publishLimitPerUser) {
          return refuse('RateLimited', 'Too many messages; slow down');
        }
        // The ack first: the publisher knows the id before its own copy arrives.
        const id = this.channel(frame.channel).nextId;
        this.send(peer, { action: 'published', channel: frame.channel, id, ...echo });
        this.deliver(frame.channel, frame.message, peer.userId);
        return;
      }
      case 'presence': {
        const problem = channelProblem(frame.channel, false);
        if (problem) return refuse('BadRequest', problem);
        const members = [...new Set([...this.peers].filter((p) => p.subscriptions.has(frame.channel)).map((p) => p.userId))].sort();
        const size = this.options.presencePageSize ?? 2;
        const start = typeof frame.cursor === 'string' ? Number(frame.cursor) : 0;
        const page = members.slice(start, start + size);
        const cursor = start + size < members.length ? String(start + size) : null;
        return this.send(peer, { action: 'presence', channel: frame.channel, members: page, cursor, ...echo });
      }
      default:
        return refuse('UnknownAction', `No route for action ${frame.action}`);
    }
  }

  /** `users/<id>` belongs to that user; everything else is open. */
  private allowed(peer: Peer, channel: string): boolean {
    const [first, second] = channel.split('/');
    return first !== 'users' || second === peer.userId;
  }

  private channel(name: string): Channel {
    let state = this.channels.get(name);
    if (!state) this.channels.set(name, (state = { nextId: 1, history: [] }));
    return state;
  }

  private deliver(channel: string, message: unknown, sender: string): number {
    const { id, fanOut } = this.number(channel, message, sender);
    fanOut();
    return id;
  }

  /** Gives the message its id and keeps it in history; `fanOut` sends it to the subscribers. */
  private number(channel: string, message: unknown, sender: string): { id: number; fanOut: () => void } {
    const state = this.channel(channel);
    const id = state.nextId++;
    const frame = { channel, message, sender, id };
    state.history.push({ id, frame });
    if (state.history.length > (this.options.historyLimit ?? 100)) state.history.shift();
    const fanOut = () => {
      for (const peer of this.peers) {
        if ([...peer.subscriptions].some((pattern) => matches(pattern, channel))) this.send(peer, frame);
      }
    };
    return { id, fanOut };
  }

  private tracksPresence(channel: string): boolean {
    return this.options.presencePrefixes?.some((prefix) => channel.startsWith(prefix)) ?? true;
  }

  /** Presence is per user: joined with the first connection, left with the last. */
  private join(peer: Peer, channel: string): void {
    if (!this.tracksPresence(channel) || channel.includes('*')) return;
    const others = [...this.peers].filter((p) => p !== peer && p.userId === peer.userId && p.subscriptions.has(channel));
    if (others.length === 0) this.presenceEvent(channel, 'joined', peer.userId);
  }

  private leave(peer: Peer, channel: string): void {
    if (!this.tracksPresence(channel) || channel.includes('*')) return;
    const others = [...this.peers].filter((p) => p !== peer && p.userId === peer.userId && p.subscriptions.has(channel));
    if (others.length === 0) this.presenceEvent(channel, 'left', peer.userId);
  }

  private presenceEvent(channel: string, event: 'joined' | 'left', userId: string): void {
    for (const peer of this.peers) {
      if (peer.subscriptions.has(channel)) this.send(peer, { channel, presence: { event, userId } });
    }
  }

  private send(peer: Peer, frame: object): void {
    if (peer.socket.readyState === WebSocket.OPEN) peer.socket.send(JSON.stringify(frame));
  }
}

/** Why a channel name is invalid (per the protocol), or undefined. */
function channelProblem(channel: unknown, wildcardAllowed: boolean): string | undefined {
  if (typeof channel !== 'string' || channel.length < 1 || channel.length > 128) return 'A channel is 1 to 128 characters';
  const segments = channel.split('/');
  if (segments.length > 8) return 'A channel has at most 8 segments';
  for (const segment of segments) {
    if (segment === '*' && wildcardAllowed && channel.startsWith('rooms/')) continue;
    if (segment === '' || segment === '.' || segment === '..' || !CHANNEL_SEGMENT.test(segment)) return `Invalid channel name ${channel}`;
  }
  return undefined;
}

function matches(pattern: string, channel: string): boolean {
  if (pattern === channel) return true;
  const want = pattern.split('/');
  const have = channel.split('/');
  return want.length === have.length && want.every((segment, i) => segment === '*' || segment === have[i]);
}
