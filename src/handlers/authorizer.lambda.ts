import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { ConfigurationError } from '../runtime/configuration';
import { AuthorizerContext, HandlerMetrics } from '../runtime/environment';
import { eventFields, InvocationContext, withInvocation } from '../runtime/invocation';
import { errorName, logEvent } from '../runtime/log';
import { addMetric } from '../runtime/metrics';
import { TokenRefusedError, TokenVerifier, VerifiedToken } from '../runtime/token-verifier';

/** Built on the first connect, so the environment is read then; reused by the container after that. */
let verifier: TokenVerifier | undefined;

/**
 * REQUEST authorizer for `$connect`: a valid token gets an Allow policy whose context names the
 * user. A refusal never escapes as an unhandled error; API Gateway answers:
 * - 401 (`Unauthorized` thrown): no token, or one that proves nothing (bad signature, expired, ...);
 * - 403 (Deny policy): a valid token that lacks a required claim;
 * - 500 (`AuthorizerUnavailable` thrown): the key or key set could not be fetched, or the function is
 *   misconfigured; the client's token may be fine, so it may retry.
 *
 * Every invocation writes the AuthDenied metric: 1 for a 401 or 403, 0 otherwise.
 */
export const handler = async (event: APIGatewayRequestAuthorizerEvent, context?: InvocationContext): Promise<APIGatewayAuthorizerResult> =>
  withInvocation(context, eventFields(event.requestContext), () => authorize(event));

async function authorize(event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
  let user: VerifiedToken;
  try {
    verifier ??= TokenVerifier.fromEnvironment(process.env);
    user = await verifier.verify(event);
  } catch (err) {
    logRefusal(err);
    const denied = err instanceof TokenRefusedError && err.kind !== 'unavailable';
    addMetric(HandlerMetrics.AUTH_DENIED, denied ? 1 : 0);
    if (err instanceof TokenRefusedError && err.kind === 'forbidden') return policy('Deny', event.methodArn, 'forbidden');
    if (err instanceof TokenRefusedError && err.kind === 'unauthenticated') throw new Error('Unauthorized');
    throw new Error('AuthorizerUnavailable');
  }
  addMetric(HandlerMetrics.AUTH_DENIED, 0);
  return {
    ...policy('Allow', event.methodArn, user.userId),
    // Claims first: the verified user id and expiry must never be overwritten by a claim.
    context: {
      ...user.claims,
      [AuthorizerContext.USER_ID]: user.userId,
      ...(user.expiresAt !== undefined ? { [AuthorizerContext.EXPIRES_AT]: user.expiresAt } : {}),
    },
  };
}

function policy(effect: 'Allow' | 'Deny', methodArn: string, principalId: string): APIGatewayAuthorizerResult {
  return {
    principalId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: methodArn }],
    },
  };
}

/**
 * One line with a reason code; never the token, the secret or an error message that could quote them.
 * The connection id, route and request id come from the invocation (withInvocation).
 */
function logRefusal(err: unknown): void {
  if (err instanceof TokenRefusedError) {
    logEvent(err.kind === 'unavailable' ? 'error' : 'warn', 'connect_refused', { reason: err.reason, detail: err.detail });
  } else if (err instanceof ConfigurationError) {
    logEvent('error', 'connect_refused', { reason: 'MISCONFIGURED', detail: err.message });
  } else {
    logEvent('error', 'connect_refused', { reason: 'UNEXPECTED', detail: errorName(err) });
  }
}
