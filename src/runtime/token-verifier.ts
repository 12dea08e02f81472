import type { KeyObject } from 'node:crypto';
import { errors, jwtVerify, type JWTPayload } from 'jose';
import { ConfigurationError, Environment, listSetting, nonNegativeNumberSetting, optionalSetting, requiredSetting } from './configuration';
import { Defaults, Env, RESERVED_CONTEXT_KEYS } from './environment';
import { hmacKeySource } from './hmac-key-source';

/** Where a client puts its token on the `$connect` request. */
export interface TokenLocation {
  readonly source: 'header' | 'query';
  readonly name: string;
}

/** The parts of a REQUEST authorizer event a token can come from. */
export interface TokenCarrier {
  readonly headers?: Readonly<Record<string, string | undefined>> | null;
  readonly queryStringParameters?: Readonly<Record<string, string | undefined>> | null;
}

export interface TokenVerifierOptions {
  readonly location: TokenLocation;
  /** The key, fetched when a token needs it: a token-less request never costs a secret fetch. */
  readonly key: () => Promise<KeyObject | Uint8Array>;
  /** JWS algorithms accepted; anything else (including `none`) is refused. */
  readonly algorithms: readonly string[];
  readonly issuer?: string;
  readonly audience?: readonly string[];
  readonly clockToleranceSeconds: number;
  readonly userIdClaim: string;
  /** Claims copied into the authorizer context. */
  readonly contextClaims: readonly string[];
}

/** What a valid token says about its holder. */
export interface VerifiedToken {
  readonly userId: string;
  /** The token's `exp`, in epoch seconds, when it has one. */
  readonly expiresAt?: number;
  /** The configured claims the token carries, as strings (API Gateway context values are flat). */
  readonly claims: Readonly<Record<string, string>>;
}

/**
 * Why a token was refused, as a code that is safe to log: jose's error code (`ERR_JWT_EXPIRED`, ...)
 * or one of ours. It never carries the token.
 */
export class TokenRefusedError extends Error {
  constructor(readonly reason: string, readonly detail?: string) {
    super(`Token refused: ${reason}`);
    this.name = 'TokenRefusedError';
  }
}

/** Parses `header:<Name>` or `query:<name>` (AUTH_TOKEN_LOCATION). */
export function parseTokenLocation(value: string): TokenLocation {
  const match = /^(header|query):(.+)$/.exec(value.trim());
  if (!match) throw new ConfigurationError(`${Env.AUTH_TOKEN_LOCATION} must be "header:<Name>" or "query:<name>", got "${value}"`);
  return { source: match[1] as TokenLocation['source'], name: match[2].trim() };
}

/** Finds, verifies and reads the JWT a client presents on `$connect`. */
export class TokenVerifier {
  /** A verifier configured by the construct's environment variables, keyed by the HMAC secret in Secrets Manager. */
  static fromEnvironment(env: Environment): TokenVerifier {
    const keySource = hmacKeySource(requiredSetting(env, Env.AUTH_SECRET_ARN));
    const algorithms = listSetting(env, Env.AUTH_ALGORITHMS);
    const audience = listSetting(env, Env.AUTH_AUDIENCE);
    return new TokenVerifier({
      location: parseTokenLocation(optionalSetting(env, Env.AUTH_TOKEN_LOCATION) ?? `header:${Defaults.TOKEN_HEADER}`),
      key: () => keySource.key(),
      algorithms: algorithms.length > 0 ? algorithms : ['HS256'],
      issuer: optionalSetting(env, Env.AUTH_ISSUER),
      audience: audience.length > 0 ? audience : undefined,
      clockToleranceSeconds: nonNegativeNumberSetting(env, Env.AUTH_CLOCK_TOLERANCE_SECONDS, Defaults.CLOCK_TOLERANCE_SECONDS),
      userIdClaim: optionalSetting(env, Env.AUTH_USER_ID_CLAIM) ?? Defaults.USER_ID_CLAIM,
      contextClaims: listSetting(env, Env.AUTH_CONTEXT_CLAIMS),
    });
  }

  constructor(private readonly options: TokenVerifierOptions) {}

  /** Verifies the token `request` carries. Throws TokenRefusedError for every reason to refuse it. */
  async verify(request: TokenCarrier): Promise<VerifiedToken> {
    const token = this.tokenOf(request);
    const key = await this.options.key().catch((err: unknown) => {
      throw new TokenRefusedError('KEY_UNAVAILABLE', err instanceof Error ? err.name : undefined);
    });
    const payload = await this.verifySignatureAndClaims(token, key);

    const userId = payload[this.options.userIdClaim];
    if (typeof userId !== 'string' || userId.length === 0) throw new TokenRefusedError('USER_ID_MISSING', this.options.userIdClaim);
    return {
      userId,
      expiresAt: typeof payload.exp === 'number' ? payload.exp : undefined,
      claims: this.contextClaimsOf(payload),
    };
  }

  /** The raw token, or a refusal when it is absent or empty. */
  tokenOf(request: TokenCarrier): string {
    const { source, name } = this.options.location;
    const raw = source === 'header'
      ? headerValue(request.headers, name)
      : request.queryStringParameters?.[name]; // query parameter names are case-sensitive
    // `Bearer` is optional; `Bearer` followed by nothing is no token at all.
    const token = (raw ?? '').trim().replace(/^bearer(?:\s+|$)/i, '').trim();
    if (token.length === 0) throw new TokenRefusedError('TOKEN_MISSING');
    return token;
  }

  private async verifySignatureAndClaims(token: string, key: KeyObject | Uint8Array): Promise<JWTPayload> {
    try {
      const { payload } = await jwtVerify(token, key, {
        algorithms: [...this.options.algorithms],
        issuer: this.options.issuer,
        audience: this.options.audience ? [...this.options.audience] : undefined,
        clockTolerance: this.options.clockToleranceSeconds,
      });
      return payload;
    } catch (err) {
      if (err instanceof errors.JOSEError) {
        const claim = err instanceof errors.JWTClaimValidationFailed ? err.claim : undefined;
        throw new TokenRefusedError(err.code, claim);
      }
      throw new TokenRefusedError('TOKEN_INVALID');
    }
  }

  private contextClaimsOf(payload: JWTPayload): Record<string, string> {
    const claims: Record<string, string> = {};
    for (const name of this.options.contextClaims) {
      // The authorizer's own keys always win: a token must not choose its own user id.
      if (RESERVED_CONTEXT_KEYS.includes(name)) continue;
      const value = payload[name];
      if (value === undefined) continue;
      claims[name] = typeof value === 'string' ? value : JSON.stringify(value);
    }
    return claims;
  }
}

/** HTTP header names are case-insensitive, and API Gateway passes them as the client spelled them. */
function headerValue(headers: TokenCarrier['headers'], name: string): string | undefined {
  if (!headers) return undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === wanted && value !== undefined) return value;
  }
  return undefined;
}
