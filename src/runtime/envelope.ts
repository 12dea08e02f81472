import { Defaults } from './environment';
import { memberTexts } from './json-text';

/** The codes of the error frames a client may receive. */
export type ErrorCode = 'BadRequest' | 'TooLarge' | 'UnknownAction' | 'Forbidden' | 'TokenExpired';

/** The actions the bundled message handler serves. */
export const KNOWN_ACTIONS = ['broadcast', 'send', 'ping', 'reauth'] as const;

/** A client frame the bundled message handler understands. */
export type ClientRequest =
  /** `messageJson`: the JSON text of `message`, exactly as the client wrote it (see `messageFrame`). */
  | { readonly action: 'broadcast'; readonly messageJson: string }
  | { readonly action: 'send'; readonly to: string; readonly messageJson: string }
  | { readonly action: 'ping' }
  /** A fresh token of the same user, extending the connection past its current token's expiry. */
  | { readonly action: 'reauth'; readonly token: string };

/** A frame that is refused; its code and message go back to the sender as an error frame. */
export class MessageRejectedError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
    this.name = 'MessageRejectedError';
  }
}

/** Parses a client frame into a request, or throws MessageRejectedError saying what is wrong with it. */
export function parseClientFrame(body: string | null | undefined): ClientRequest {
  const text = body ?? '';
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
  const fields = frame as Record<string, unknown>;
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
    default:
      throw new MessageRejectedError('UnknownAction',
        `Unknown action ${JSON.stringify(action.slice(0, 64))}. Known actions: ${KNOWN_ACTIONS.join(', ')}.`);
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

/** The frame telling the sender what was wrong. */
export function errorFrame(code: ErrorCode, message: string): string {
  return JSON.stringify({ error: { code, message } });
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
