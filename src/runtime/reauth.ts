import { ConnectionExpiry, ReauthRefusedError } from './connection-expiry';
import { MessageRejectedError, reauthenticatedFrame } from './envelope';
import { logEvent } from './log';
import { TokenRefusedError, TokenVerifier } from './token-verifier';

/**
 * `{"action":"reauth","token":"..."}`: a connection presents a fresh token before its current one
 * expires, and lives until the new token's `exp`. The token is verified exactly as on `$connect`
 * (same issuer, keys, algorithms, claims) and must name the same user; anything else is refused
 * with a `Forbidden` error frame and leaves the connection's expiry as it was.
 * @returns the frame to send back: `{"action":"reauthenticated","expiresAt":<epoch seconds>}`
 */
export async function reauthenticate(
  verifier: TokenVerifier,
  expiry: ConnectionExpiry,
  connection: { readonly connectionId: string; readonly userId: string },
  token: string,
): Promise<string> {
  const { connectionId } = connection;
  const refuse = (reason: string, message: string): never => {
    logEvent('warn', 'reauth_refused', { connectionId, reason });
    throw new MessageRejectedError('Forbidden', message);
  };

  let user;
  try {
    user = await verifier.verifyToken(token);
  } catch (err) {
    if (!(err instanceof TokenRefusedError)) throw err;
    if (err.kind === 'unavailable') return refuse(err.reason, 'The token could not be checked right now; try again.');
    return refuse(err.reason, `The token was refused (${err.reason}).`);
  }
  if (user.userId !== connection.userId) return refuse('OTHER_USER', 'The token is for another user; open a new connection for that user.');
  if (user.expiresAt === undefined) return refuse('NO_EXPIRY', 'A reauth token must carry "exp".');

  try {
    await expiry.extend(connectionId, { userId: user.userId, expiresAt: user.expiresAt, claims: user.claims });
  } catch (err) {
    if (err instanceof ReauthRefusedError) return refuse(err.reason, 'This connection cannot be reauthenticated.');
    throw err;
  }
  logEvent('info', 'reauthenticated', { connectionId, expiresAt: user.expiresAt });
  return reauthenticatedFrame(user.expiresAt);
}
