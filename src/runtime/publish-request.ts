import { ChannelNameError, parseChannelName } from './channel-names';
import { Defaults } from './environment';
import { memberTexts } from './json-text';

/** Who a backend publishes to. */
export type PublishTarget = { readonly all: true } | { readonly userId: string } | { readonly connectionId: string } | { readonly channel: string };

/** The publisher function's payload. */
export interface PublishRequest {
  readonly to: PublishTarget;
  /**
   * The JSON text of `message`. From a payload that arrives as a JSON string, it is the text as the
   * backend wrote it (numbers keep every digit); from an object (Lambda parsed the payload before
   * the handler ran), the object serialised again, its numbers as JavaScript read them.
   */
  readonly messageJson: string;
  /** Shown to recipients as `sender`, e.g. the backend's name. */
  readonly sender?: string;
}

/** A refused request, answered as is. */
export interface PublishError {
  readonly error: { readonly code: 'BadRequest' | 'TooLarge'; readonly message: string };
}

/** Checks a publisher payload (already parsed JSON, or a JSON string). */
export function parsePublishRequest(event: unknown): PublishRequest | PublishError {
  let value = event;
  const text = typeof event === 'string' ? event : undefined;
  if (text !== undefined) {
    try {
      value = JSON.parse(text);
    } catch {
      return bad('The request is not valid JSON.');
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('The request must be a JSON object with "to" and "message".');
  const fields = value as Record<string, unknown>;
  if (!('message' in fields)) return bad('The request needs a "message" field (any JSON).');
  if (fields.sender !== undefined && typeof fields.sender !== 'string') return bad('"sender", when given, must be a string.');
  const to = fields.to as Record<string, unknown> | undefined;
  let target: PublishTarget;
  if (to && to.all === true) {target = { all: true };} else if (to && typeof to.userId === 'string' && to.userId.length > 0) {target = { userId: to.userId };} else if (to && typeof to.connectionId === 'string' && to.connectionId.length > 0) {target = { connectionId: to.connectionId };} else if (to && 'channel' in to) {
    const problem = channelProblem(to.channel);
    if (problem) return bad(problem);
    target = { channel: to.channel as string };
  } else {return bad('"to" must be {"all":true}, {"userId":"<id>"}, {"connectionId":"<id>"} or {"channel":"<name>"}.');}
  const messageJson = text !== undefined ? memberTexts(text).get('message')! : JSON.stringify(fields.message);
  // `undefined` (a caller's object with `message: undefined`) serialises to nothing: send null.
  const request: PublishRequest = {
    to: target,
    messageJson: messageJson ?? 'null',
    ...(typeof fields.sender === 'string' ? { sender: fields.sender } : {}),
  };
  const size = Buffer.byteLength(publishedFrame(request), 'utf8');
  if (size > Defaults.MAX_MESSAGE_BYTES) {
    return { error: { code: 'TooLarge', message: `The message would be ${size} bytes; the limit is ${Defaults.MAX_MESSAGE_BYTES}.` } };
  }
  return request;
}

/** What recipients receive (a channel's subscribers also get the channel and a 16-digit id at most, counted here). */
export function publishedFrame(request: PublishRequest): string {
  const from = request.sender === undefined ? '' : `,"sender":${JSON.stringify(request.sender)}`;
  if ('channel' in request.to) return `{"channel":${JSON.stringify(request.to.channel)},"message":${request.messageJson}${from},"id":1000000000000000}`;
  return `{"message":${request.messageJson}${from}}`;
}

/** A backend asks for a page of a channel's members: `{"presence":{"channel":"rooms/a","cursor":"..."}}`. */
export interface PresenceQuery {
  readonly presence: { readonly channel: string; readonly cursor?: string };
}

/** Whether the publisher payload asks for members rather than publishing. */
export function isPresenceQuery(event: unknown): boolean {
  const value = typeof event === 'string' ? safeParse(event) : event;
  return typeof value === 'object' && value !== null && 'presence' in value && !('message' in value);
}

/** Checks a members query. */
export function parsePresenceQuery(event: unknown): PresenceQuery | PublishError {
  const value = (typeof event === 'string' ? safeParse(event) : event) as { presence?: Record<string, unknown> } | undefined;
  const presence = value?.presence;
  if (typeof presence !== 'object' || presence === null) return bad('"presence" must be {"channel":"<name>"} (with "cursor" for the next page).');
  const problem = channelProblem(presence.channel);
  if (problem) return bad(problem);
  if (presence.cursor !== undefined && presence.cursor !== null && typeof presence.cursor !== 'string') return bad('"cursor", when given, must be a string.');
  return { presence: { channel: presence.channel as string, ...(typeof presence.cursor === 'string' ? { cursor: presence.cursor } : {}) } };
}

function channelProblem(channel: unknown): string | undefined {
  try {
    parseChannelName(channel);
    return undefined;
  } catch (err) {
    if (err instanceof ChannelNameError) return err.message;
    throw err;
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function bad(message: string): PublishError {
  return { error: { code: 'BadRequest', message } };
}
