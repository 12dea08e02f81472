import { ChannelName, ChannelNameError, parseChannelName } from './channel-names';
import { Defaults } from './environment';
import { memberTexts } from './json-text';

/** The codes of the error frames a client may receive. */
export type ErrorCode = 'BadRequest' | 'TooLarge' | 'UnknownAction' | 'Forbidden' | 'TokenExpired' | 'RateLimited';

/** The actions the bundled message handler serves. */
export const KNOWN_ACTIONS = ['broadcast', 'send', 'ping', 'reauth', 'subscribe', 'unsubscribe', 'publish', 'presence'] as const;

/** The actions about one channel: their error frames name the action and the channel. */
const CHANNEL_ACTIONS: readonly string[] = ['subscribe', 'unsubscribe', 'publish', 'presence'];

/** Longest `requestId` a client may attach. */
export const MAX_REQUEST_ID_LENGTH = 64;

/** What an answer echoes of its request: the client's `requestId`, and for channel requests the action and channel. */
export interface AnswerContext {
  readonly requestId?: string;
  readonly action?: string;
  readonly channel?: string;
}

/** A client frame the bundled message handler understands. */
export type ClientRequest =
  /** `messageJson`: the JSON text of `message`, exactly as the client wrote it (see `messageFrame`). */
  | { readonly action: 'broadcast'; readonly messageJson: string }
  | { readonly action: 'send'; readonly to: string; readonly messageJson: string }
  | { readonly action: 'ping' }
  /** A fresh token of the same user, extending the connection past its current token's expiry. */
  | { readonly action: 'reauth'; readonly token: string }
  /** `since`: the last message id the client saw on that (concrete) channel. */
  | { readonly action: 'subscribe'; readonly channel: ChannelName; readonly since?: number }
  | { readonly action: 'unsubscribe'; readonly channel: ChannelName }
  | { readonly action: 'publish'; readonly channel: ChannelName; readonly messageJson: string }
  | { readonly action: 'presence'; readonly channel: ChannelName; readonly cursor?: string };

/** A parsed request and what its answers echo. */
export type ClientFrame = ClientRequest & { readonly requestId?: string };

/** A frame that is refused; its code and message go back to the sender as an error frame. */
export class MessageRejectedError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly context: AnswerContext = {}) {
    super(message);
    this.name = 'MessageRejectedError';
  }
}

/** Parses a client frame into a request, or throws MessageRejectedError saying what is wrong with it. */
export function parseClientFrame(body: string | null | undefined): ClientFrame {
  const text = body ?? '';
  const fields = parseObject(text);
  const context = answerContext(fields);
  try {
    const request = parseRequest(text, fields);
    return context.requestId === undefined ? request : { ...request, requestId: context.requestId };
  } catch (err) {
    if (err instanceof MessageRejectedError) throw new MessageRejectedError(err.code, err.message, context);
    throw err;
  }
}

/** The `requestId` (when valid) and, for channel actions, the action and channel, as the client sent them. */
function answerContext(fields: Record<string, unknown>): AnswerContext {
  const requestId = fields.requestId;
  const context: { requestId?: string; action?: string; channel?: string } = {};
  if (typeof requestId === 'string' && requestId.length > 0 && requestId.length <= MAX_REQUEST_ID_LENGTH) context.requestId = requestId;
  if (typeof fields.action === 'string' && CHANNEL_ACTIONS.includes(fields.action)) {
    context.action = fields.action;
    if (typeof fields.channel === 'string' && fields.channel.length <= 256) context.channel = fields.channel;
  }
  return context;
}

function parseObject(text: string): Record<string, unknown> {
  const size = Buffer.byteLength(text, 'utf8');
  if (size > Defaults.MAX_MESSAGE_BYTES) {
    throw new MessageRejectedError('TooLarge', `The message is ${size} bytes; the limit is ${Defaults.MAX_MESSAGE_BYTES}.`);
  }
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    throw new MessageRejectedError('BadRequest', 'The message is not valid JSON.');
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
    throw new MessageRejectedError('BadRequest', 'The message must be a JSON object.');
  }
  return frame as Record<string, unknown>;
}

function parseRequest(text: string, fields: Record<string, unknown>): ClientRequest {
  if ('requestId' in fields && !(typeof fields.requestId === 'string' && fields.requestId.length > 0 && fields.requestId.length <= MAX_REQUEST_ID_LENGTH)) {
    throw new MessageRejectedError('BadRequest', `"requestId", when given, must be a string of 1 to ${MAX_REQUEST_ID_LENGTH} characters.`);
  }
  if (!('action' in fields)) throw new MessageRejectedError('BadRequest', 'The message has no "action" field.');
  const action = fields.action;
  if (typeof action !== 'string') throw new MessageRejectedError('BadRequest', 'The "action" field must be a string.');

  switch (action) {
    case 'broadcast':
      return { action, messageJson: requiredMessage(text, fields, action) };
    case 'send': {
      const to = fields.to;
      if (typeof to !== 'string' || to.length === 0) {
        throw new MessageRejectedError('BadRequest', 'The "send" action needs a "to" field: a non-empty user id.');
      }
      return { action, to, messageJson: requiredMessage(text, fields, action) };
    }
    case 'ping':
      return { action };
    case 'reauth': {
      const token = fields.token;
      if (typeof token !== 'string' || token.trim().length === 0) {
        throw new MessageRejectedError('BadRequest', 'The "reauth" action needs a "token" field: a non-empty JWT.');
      }
      return { action, token: token.trim() };
    }
    case 'subscribe': {
      const channel = channelOf(fields, true);
      if (!('since' in fields) || fields.since === undefined) return { action, channel };
      const since = fields.since;
      if (typeof since !== 'number' || !Number.isSafeInteger(since) || since < 0) {
        throw new MessageRejectedError('BadRequest', '"since", when given, must be an integer of 0 or more: the last message id seen on the channel.');
      }
      if (channel.wildcard) throw new MessageRejectedError('BadRequest', '"since" needs a concrete channel, not a wildcard subscription.');
      return { action, channel, since };
    }
    case 'unsubscribe':
      return { action, channel: channelOf(fields, true) };
    case 'publish':
      return { action, channel: channelOf(fields, false), messageJson: requiredMessage(text, fields, action) };
    case 'presence': {
      const cursor = fields.cursor;
      if (cursor !== undefined && cursor !== null && (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > 1024)) {
        throw new MessageRejectedError('BadRequest', '"cursor", when given, must be the cursor of the previous presence answer.');
      }
      const channel = channelOf(fields, false);
      return typeof cursor === 'string' ? { action, channel, cursor } : { action, channel };
    }
    default:
      throw new MessageRejectedError('UnknownAction',
        `Unknown action ${JSON.stringify(action.slice(0, 64))}. Known actions: ${KNOWN_ACTIONS.join(', ')}.`);
  }
}

function channelOf(fields: Record<string, unknown>, allowWildcard: boolean): ChannelName {
  try {
    return parseChannelName(fields.channel, allowWildcard);
  } catch (err) {
    if (err instanceof ChannelNameError) throw new MessageRejectedError('BadRequest', err.message);
    throw err;
  }
}

/**
 * `message` may be any JSON value, `null` included, but it must be there. Its JSON text is taken
 * from the frame as written, not serialised again from the parsed value.
 */
function requiredMessage(text: string, fields: Record<string, unknown>, action: string): string {
  if (!Object.prototype.hasOwnProperty.call(fields, 'message')) {
    throw new MessageRejectedError('BadRequest', `The "${action}" action needs a "message" field.`);
  }
  return memberTexts(text).get('message')!;
}

/**
 * The frame recipients of a broadcast or send receive: `{"message":<m>,"sender":"<user id>"}`.
 *
 * `messageJson` is written as the client wrote it, so every number keeps its digits (`1e400`,
 * `123456789012345678901234567890`; parsing and serialising again would give `null` and
 * `1.2345678901234568e+29`), and so do string escapes and key order. Whitespace inside the value is
 * kept too; only the envelope around it is ours.
 */
export function messageFrame(messageJson: string, sender: string): string {
  return checkedSize(`{"message":${messageJson},"sender":${JSON.stringify(sender)}}`);
}

/** The reply to a ping. */
export function pongFrame(): string {
  return outgoing({ action: 'pong' });
}

/** The reply to a successful reauth: the connection now lives until `expiresAt` (epoch seconds; null: no expiry). */
export function reauthenticatedFrame(expiresAt: number | undefined): string {
  return outgoing({ action: 'reauthenticated', expiresAt: expiresAt ?? null });
}

/** The frame telling the sender what was wrong, echoing what it knows of the request. */
export function errorFrame(code: ErrorCode, message: string, context: AnswerContext = {}): string {
  return JSON.stringify({ error: { code, message }, ...context });
}

/** An answer frame (pong, reauthenticated) with the request's `requestId`, when it had one. */
export function withRequestId(frame: string, requestId: string | undefined): string {
  if (requestId === undefined) return frame;
  return JSON.stringify({ ...(JSON.parse(frame) as object), requestId });
}

/** The answer to a subscribe; `gap`: history no longer reaches back to since + 1. */
export function subscribedFrame(channel: string, requestId?: string, gap?: boolean, reset?: boolean): string {
  return JSON.stringify({
    action: 'subscribed', channel, ...(gap ? { gap: true } : {}), ...(reset ? { reset: true } : {}), ...(requestId !== undefined ? { requestId } : {}),
  });
}

/** The answer to an unsubscribe. */
export function unsubscribedFrame(channel: string, requestId?: string): string {
  return JSON.stringify({ action: 'unsubscribed', channel, ...(requestId !== undefined ? { requestId } : {}) });
}

/** The answer to a publish: the id the message got. */
export function publishedFrame(channel: string, id: number, requestId?: string): string {
  return JSON.stringify({ action: 'published', channel, id, ...(requestId !== undefined ? { requestId } : {}) });
}

/** The answer to a presence request: one page of members. */
export function presenceFrame(channel: string, members: readonly string[], cursor: string | null, requestId?: string): string {
  return JSON.stringify({ action: 'presence', channel, members, cursor, ...(requestId !== undefined ? { requestId } : {}) });
}

/**
 * What a channel's subscribers receive; `sender` is left out when a backend names none. Like
 * `messageFrame`, `messageJson` is written as the publisher wrote it.
 */
export function channelMessageFrame(channel: string, messageJson: string, sender: string | undefined, id: number): string {
  const from = sender === undefined ? '' : `,"sender":${JSON.stringify(sender)}`;
  return checkedSize(`{"channel":${JSON.stringify(channel)},"message":${messageJson}${from},"id":${id}}`);
}

/** A kept channel message frame, marked as replayed. */
export function replayFrame(frame: string): string {
  return `${frame.slice(0, -1)},"replay":true}`;
}

/** A presence event: a user's first connection joined the channel, or its last one left. */
export function presenceEventFrame(channel: string, event: 'joined' | 'left', userId: string): string {
  return JSON.stringify({ channel, presence: { event, userId } });
}

/** API Gateway refuses to send more than 128 KB, so an oversized frame is refused before any post. */
function outgoing(frame: object): string {
  return checkedSize(JSON.stringify(frame));
}

function checkedSize(text: string): string {
  const size = Buffer.byteLength(text, 'utf8');
  if (size > Defaults.MAX_MESSAGE_BYTES) {
    throw new MessageRejectedError('TooLarge', `The outgoing message would be ${size} bytes; the limit is ${Defaults.MAX_MESSAGE_BYTES}.`);
  }
  return text;
}
