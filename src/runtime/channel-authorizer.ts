import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { ChannelDecider, ChannelDecisionRequest } from './channels';

/**
 * Asks a rule's authorizer function (AppSync's onSubscribe/onPublish): it is invoked with
 * `{"action","channel","userId","claims"}` and answers `{"allow":true|false}` (or a bare boolean).
 * Anything else, or a function error, refuses. Decisions are kept by the container for
 * `cacheSeconds` (0: asked every time), per function, action, channel, user and claims.
 */
export function lambdaDecider(client: LambdaClient, cacheSeconds: (functionName: string) => number, now: () => number = Date.now): ChannelDecider {
  const cache = new Map<string, { allow: boolean; until: number }>();
  return async (functionName: string, request: ChannelDecisionRequest): Promise<boolean> => {
    const key = JSON.stringify([functionName, request.action, request.channel, request.userId, request.claims]);
    const kept = cache.get(key);
    if (kept && kept.until > now()) return kept.allow;
    const answer = await client.send(new InvokeCommand({ FunctionName: functionName, Payload: Buffer.from(JSON.stringify(request), 'utf8') }));
    if (answer.FunctionError) throw new Error(`The channel authorizer failed: ${answer.FunctionError}`);
    const body: unknown = answer.Payload ? JSON.parse(Buffer.from(answer.Payload).toString('utf8') || 'null') : null;
    const allow = body === true || (typeof body === 'object' && body !== null && (body as { allow?: unknown }).allow === true);
    const seconds = cacheSeconds(functionName);
    if (seconds > 0) {
      if (cache.size > 10_000) cache.clear(); // bounded: a container never grows without limit
      cache.set(key, { allow, until: now() + seconds * 1000 });
    }
    return allow;
  };
}
