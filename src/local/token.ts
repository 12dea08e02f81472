// jose is bundled into the CLI by esbuild.
// eslint-disable-next-line import/no-extraneous-dependencies
import { SignJWT } from 'jose';

/**
 * Development tokens for `authws token`: HS256 JWTs signed with the gateway's secret, the kind the
 * bundled authorizer verifies.
 */
export interface TokenRequest {
  readonly secret: string;
  readonly subject: string;
  readonly ttlSeconds: number;
  /** Extra claims; `sub`, `iat` and `exp` are set from the other fields. */
  readonly claims?: Readonly<Record<string, unknown>>;
}

export async function signToken(request: TokenRequest): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ ...request.claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(request.subject)
    .setIssuedAt(now)
    .setExpirationTime(now + request.ttlSeconds)
    .sign(new TextEncoder().encode(request.secret));
}

/**
 * `key=value` to a claim: JSON values (numbers, booleans, arrays, objects, quoted strings) are
 * parsed, anything else is a string, so `--claim admin=true` gives a boolean and `--claim role=ops` a string.
 */
export function parseClaim(argument: string): [string, unknown] {
  const at = argument.indexOf('=');
  if (at <= 0) throw new Error(`--claim ${argument}: use key=value, for example --claim role=admin`);
  const key = argument.slice(0, at);
  const raw = argument.slice(at + 1);
  try {
    return [key, JSON.parse(raw)];
  } catch {
    return [key, raw];
  }
}
