/**
 * `cdk-authenticated-websocket-api/lib/publish`: push to WebSocket clients from a Node.js Lambda
 * (a route target, a stream consumer, anything) without writing SDK code.
 *
 * ```ts
 * import { publish } from 'cdk-authenticated-websocket-api/lib/publish';
 * const counts = await publish({ to: { userId: 'alice' }, message: { order: 42 } });
 * ```
 *
 * It invokes the API's publisher function, whose name `chat.grantSend(fn)` puts in the function's
 * environment (`CONNECTIONS_PUBLISHER_FUNCTION_NAME`). This file is compiled on its own (jsii
 * compiles only the construct layer) into a self-contained CommonJS bundle with its AWS SDK client,
 * so a consumer's NodejsFunction bundles it like any other module.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';

/** Who receives: everyone, every connection of one user, one connection, or a channel's subscribers. */
export type PublishTarget = { readonly all: true } | { readonly userId: string } | { readonly connectionId: string } | { readonly channel: string };

/** What to publish. */
export interface PublishRequest {
  readonly to: PublishTarget;
  /** Any JSON value; recipients receive `{"message":<it>}` (with `"sender"` when given). */
  readonly message: unknown;
  /** Shown to recipients as `sender`, e.g. your service's name. */
  readonly sender?: string;
}

/** What the publisher answers. delivered + gone + failed is the number of recipients reached. */
export interface PublishResult {
  readonly delivered: number;
  readonly gone: number;
  readonly failed: number;
  readonly retried: number;
  readonly throttled: number;
  /** Queue mode, everyone: tasks handed to the fan-out workers (their counts are in their logs). */
  readonly queued?: number;
  readonly payloadTooLarge?: boolean;
  /** False when the publisher ran out of time before every recipient was reached. */
  readonly complete?: boolean;
  /** Recipients the deadline cut off (counted in `failed` too); absent when none. */
  readonly cutOff?: number;
  /** A channel message: the id its subscribers received it with. */
  readonly id?: number;
}

/** A page of a channel's members. */
export interface ChannelMembers {
  /** User ids. */
  readonly members: string[];
  /** Pass it back for the next page; null after the last. */
  readonly cursor: string | null;
}

/** Options of `publish`. */
export interface PublishOptions {
  /** @default process.env.CONNECTIONS_PUBLISHER_FUNCTION_NAME, set by `grantSend` */
  readonly functionName?: string;
}

/** The publisher refused the request (`BadRequest`, `TooLarge`) or failed (`PublisherFailed`). */
export class PublishError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'PublishError';
  }
}

const FUNCTION_NAME_VARIABLE = 'CONNECTIONS_PUBLISHER_FUNCTION_NAME';
let defaultClient: LambdaClient | undefined;

/** Publishes `request` and resolves with the counts; rejects with a PublishError. */
export async function publish(request: PublishRequest, options: PublishOptions = {}): Promise<PublishResult> {
  return invokePublisher(request, options) as Promise<PublishResult>;
}

async function invokePublisher(request: object, options: PublishOptions): Promise<unknown> {
  const functionName = options.functionName ?? process.env[FUNCTION_NAME_VARIABLE];
  if (!functionName) {
    throw new PublishError('NotConfigured', `No publisher function: pass functionName, or grant this function with chat.grantSend(fn), which sets ${FUNCTION_NAME_VARIABLE}.`);
  }
  const client = (defaultClient ??= new LambdaClient({}));
  const answer = await client.send(new InvokeCommand({ FunctionName: functionName, Payload: Buffer.from(JSON.stringify(request), 'utf8') }));
  const body = answer.Payload ? JSON.parse(Buffer.from(answer.Payload).toString('utf8')) : undefined;
  if (answer.FunctionError) throw new PublishError('PublisherFailed', `The publisher failed: ${body?.errorType ?? answer.FunctionError}`);
  if (body?.error) throw new PublishError(body.error.code, body.error.message);
  return body;
}

/**
 * Every subscriber of `channel` (e.g. `rooms/lobby`), including wildcard subscribers of its rule.
 * They receive `{"channel","message","id"}` (with `"sender"` when given); the result carries the `id`.
 * The channel must match one of the API's channel rules (its history and wildcard settings apply).
 */
export function publishToChannel(channel: string, message: unknown, options?: PublishOptions & { readonly sender?: string }): Promise<PublishResult> {
  return publish({ to: { channel }, message, sender: options?.sender }, options);
}

/** A page of the members of a presence channel; pass `cursor` from the previous page for the next. */
export async function channelMembers(channel: string, options?: PublishOptions & { readonly cursor?: string }): Promise<ChannelMembers> {
  return await invokePublisher({ presence: { channel, ...(options?.cursor ? { cursor: options.cursor } : {}) } }, options ?? {}) as ChannelMembers;
}

/** Every connection. */
export function publishToAll(message: unknown, options?: PublishOptions & { readonly sender?: string }): Promise<PublishResult> {
  return publish({ to: { all: true }, message, sender: options?.sender }, options);
}

/** Every connection of `userId`. */
export function publishToUser(userId: string, message: unknown, options?: PublishOptions & { readonly sender?: string }): Promise<PublishResult> {
  return publish({ to: { userId }, message, sender: options?.sender }, options);
}

/** One connection. */
export function publishToConnection(
  connectionId: string,
  message: unknown,
  options?: PublishOptions & { readonly sender?: string },
): Promise<PublishResult> {
  return publish({ to: { connectionId }, message, sender: options?.sender }, options);
}
