import { errors, type JWTPayload } from 'jose';
import { booleanSetting, ConfigurationError, Environment, listSetting, nonNegativeNumberSetting, optionalSetting, positiveIntegerSetting } from './configuration';
import { Defaults, Env, RESERVED_CONTEXT_KEYS } from './environment';
import { hmacKeySource } from './hmac-key-source';
import { jwksKeySource } from './jwks-key-source';
import { KeyResolver, verifyJwt } from './jwt-verify';
import { KeyUnavailableError } from './key-source';

/** Where a client puts its token on the `$connect` request. */
export interface TokenLocation {
  /** `subprotocol`: the client offers two subprotocols, `name` and the token. */
  readonly source: 'header' | 'query' | 'subprotocol';
  /** The header or query parameter name, or the protocol name offered beside the token. */
  readonly name: string;
}

/** The parts of a REQUEST authorizer event a token can come from. */
export interface TokenCarrier {
  readonly headers?: Readonly<Record<string, string | undefined>> | null;
  readonly queryStringParameters?: Readonly<Record<string, string | undefined>> | null;
}

export type { KeyResolver, VerificationKey } from './jwt-verify';

/** The only values Cognito puts in `token_use`. */
export type TokenUse = 'access' | 'id';

export interface TokenVerifierOptions {
  readonly location: TokenLocation;
  /** Called once the token parsed and its algorithm is allowed: a bad token never costs a key fetch. */
  readonly key: KeyResolver;
  /**
   * Called when a signature does not verify; resolving to true (the key changed, e.g. a rotated
   * secret) verifies the token once more. @default none
   */
  readonly refreshKey?: () => Promise<boolean>;
  /** JWS algorithms accepted; anything else (including `none`) is refused. */
  readonly algorithms: readonly string[];
  readonly issuer?: string;
  readonly audience?: readonly string[];
  /** Skew tolerated on `nbf` (and `iat`). Never on `exp`: see `TokenVerifier.verifyToken`. */
  readonly clockToleranceSeconds: number;
  /** Refuse tokens without `exp` (they would open connections that never expire). @default true */
  readonly requireExpiration?: boolean;
  readonly userIdClaim: string;
  /** Claims copied into the authorizer context. */
  readonly contextClaims: readonly string[];
  /** Claims a token must carry, with the value each must hold (`*`: any value). */
  readonly requiredClaims?: Readonly<Record<string, string>>;
  /** Cognito: the `token_use` a token must carry. */
  readonly tokenUse?: TokenUse;
  /** Cognito: app client ids; an access token's `client_id` must be one of them. */
  readonly clientIds?: readonly string[];
  /** @default Date.now */
  readonly now?: () => number;
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
 * How API Gateway should answer a refusal: `unauthenticated` 401 (the token proves nothing),
 * `forbidden` 403 (a valid token without a required claim), `unavailable` 500 (our side failed: the
 * key could not be fetched; the client may retry with the same token).
 */
export type RefusalKind = 'unauthenticated' | 'forbidden' | 'unavailable';

/**
 * Why a token was refused, as a code that is safe to log: jose's error code (`ERR_JWT_EXPIRED`, ...)
 * or one of ours. It never carries the token.
 */
export class TokenRefusedError extends Error {
  constructor(readonly reason: string, readonly detail?: string, readonly kind: RefusalKind = 'unauthenticated') {
    super(`Token refused: ${reason}`);
    this.name = 'TokenRefusedError';
  }
}

/** Parses `header:<Name>`, `query:<name>` or `subprotocol:<protocol>` (AUTH_TOKEN_LOCATION). */
export function parseTokenLocation(value: string): TokenLocation {
  const match = /^(header|query|subprotocol):(.+)$/.exec(value.trim());
  if (!match) {
    throw new ConfigurationError(`${Env.AUTH_TOKEN_LOCATION} must be "header:<Name>", "query:<name>" or "subprotocol:<protocol>", got "${value}"`);
  }
  return { source: match[1] as TokenLocation['source'], name: match[2].trim() };
}

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];

/** Finds, verifies and reads the JWT a client presents on `$connect` (or in a `reauth` message). */
export class TokenVerifier {
  /**
   * A verifier configured by the construct's environment variables: keyed by the HMAC secret in
   * Secrets Manager (AUTH_SECRET_ARN) or by an issuer's key set (AUTH_JWKS_URL).
   */
  static fromEnvironment(env: Environment): TokenVerifier {
    const secretArn = optionalSetting(env, Env.AUTH_SECRET_ARN);
    const jwksUrl = optionalSetting(env, Env.AUTH_JWKS_URL);
    if ((secretArn === undefined) === (jwksUrl === undefined)) {
      throw new ConfigurationError(`Exactly one of ${Env.AUTH_SECRET_ARN} and ${Env.AUTH_JWKS_URL} must be set`);
    }
    const listed = listSetting(env, Env.AUTH_ALGORITHMS);
    const algorithms = listed.length > 0 ? listed : [secretArn ? 'HS256' : 'RS256'];
    for (const alg of algorithms) {
      // An HMAC algorithm next to a public key set is the HMAC/RSA confusion attack waiting to happen.
      if (HMAC_ALGORITHMS.includes(alg) !== (secretArn !== undefined) || alg.toLowerCase() === 'none') {
        throw new ConfigurationError(`${Env.AUTH_ALGORITHMS} lists ${alg}, which does not fit ${secretArn ? 'an HMAC secret' : 'a JWKS'}`);
      }
    }

    let key: KeyResolver;
    let refreshKey: (() => Promise<boolean>) | undefined;
    if (secretArn) {
      const source = hmacKeySource(secretArn);
      key = (header) => source.verificationKey(header.alg ?? '');
      refreshKey = () => source.refreshAfterFailure();
    } else {
      key = jwksKeySource(jwksUrl!, {
        timeoutMs: positiveIntegerSetting(env, Env.AUTH_JWKS_TIMEOUT_MS, Defaults.JWKS_TIMEOUT_MS),
        cooldownMs: nonNegativeNumberSetting(env, Env.AUTH_JWKS_COOLDOWN_MS, Defaults.JWKS_COOLDOWN_MS),
      }).getKey as KeyResolver;
    }

    const tokenUse = optionalSetting(env, Env.AUTH_TOKEN_USE);
    if (tokenUse !== undefined && tokenUse !== 'access' && tokenUse !== 'id') {
      throw new ConfigurationError(`${Env.AUTH_TOKEN_USE} must be "access" or "id", got "${tokenUse}"`);
    }
    const clientIds = listSetting(env, Env.AUTH_CLIENT_IDS);
    const audience = listSetting(env, Env.AUTH_AUDIENCE);
    return new TokenVerifier({
      location: parseTokenLocation(optionalSetting(env, Env.AUTH_TOKEN_LOCATION) ?? `header:${Defaults.TOKEN_HEADER}`),
      key,
      refreshKey,
      algorithms,
      issuer: optionalSetting(env, Env.AUTH_ISSUER),
      // A Cognito id token names its app client in `aud`; an access token in `client_id`.
      audience: audience.length > 0 ? audience : tokenUse === 'id' && clientIds.length > 0 ? clientIds : undefined,
      clockToleranceSeconds: nonNegativeNumberSetting(env, Env.AUTH_CLOCK_TOLERANCE_SECONDS, Defaults.CLOCK_TOLERANCE_SECONDS),
      userIdClaim: optionalSetting(env, Env.AUTH_USER_ID_CLAIM) ?? Defaults.USER_ID_CLAIM,
      contextClaims: listSetting(env, Env.AUTH_CONTEXT_CLAIMS),
      requiredClaims: requiredClaimsSetting(env),
      tokenUse,
      clientIds: clientIds.length > 0 ? clientIds : undefined,
      requireExpiration: booleanSetting(env, Env.AUTH_REQUIRE_EXPIRATION, true),
    });
  }

  constructor(private readonly options: TokenVerifierOptions) {}

  /** Where this verifier looks for the token. */
  get location(): TokenLocation {
    return this.options.location;
  }

  /** Verifies the token `request` carries. Throws TokenRefusedError for every reason to refuse it. */
  async verify(request: TokenCarrier): Promise<VerifiedToken> {
    return this.verifyToken(this.tokenOf(request));
  }

  /**
   * Verifies a bare token (e.g. from a `reauth` message). Throws TokenRefusedError for every reason to refuse it.
   *
   * Besides the signature and the configured claims, a token must name a user that fits in an
   * authorizer context and a registry key, and its `exp` (required unless `requireExpiration` is
   * false) must be a sane time still ahead: the clock tolerance is not applied to `exp`, since a
   * token already expired by this clock would open a connection that is closed at its first message.
   */
  async verifyToken(token: string): Promise<VerifiedToken> {
    if (token.length === 0) throw new TokenRefusedError('TOKEN_MISSING');
    if (token.length > Defaults.MAX_TOKEN_BYTES) throw new TokenRefusedError('TOKEN_TOO_LARGE');
    const payload = await this.verifySignatureAndClaims(token);

    const userId = payload[this.options.userIdClaim];
    if (typeof userId !== 'string' || userId.length === 0) throw new TokenRefusedError('USER_ID_MISSING', this.options.userIdClaim);
    if (userId.length > Defaults.MAX_USER_ID_LENGTH) throw new TokenRefusedError('USER_ID_TOO_LONG', this.options.userIdClaim);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(userId)) throw new TokenRefusedError('USER_ID_INVALID', this.options.userIdClaim);
    const expiresAt = this.expiryOf(payload);
    this.checkCognitoClaims(payload);
    this.checkRequiredClaims(payload);
    const claims = this.contextClaimsOf(payload);
    if (Buffer.byteLength(JSON.stringify(claims), 'utf8') > Defaults.MAX_CONTEXT_CLAIMS_BYTES) throw new TokenRefusedError('CLAIMS_TOO_LARGE');
    return { userId, expiresAt, claims };
  }

  /** The raw token, or a refusal when it is absent or empty. */
  tokenOf(request: TokenCarrier): string {
    const { source, name } = this.options.location;
    let token: string;
    switch (source) {
      case 'header':
        // `Bearer` is optional; `Bearer` followed by nothing is no token at all.
        token = (headerValue(request.headers, name) ?? '').trim().replace(/^bearer(?:\s+|$)/i, '').trim();
        break;
      case 'query':
        token = (request.queryStringParameters?.[name] ?? '').trim(); // query parameter names are case-sensitive
        break;
      case 'subprotocol':
        token = subprotocolToken(headerValue(request.headers, 'Sec-WebSocket-Protocol'), name);
        break;
    }
    if (token.length === 0) throw new TokenRefusedError('TOKEN_MISSING');
    return token;
  }

  private async verifySignatureAndClaims(token: string): Promise<JWTPayload> {
    // jose's checks, with the signature verified by node:crypto (see verifyJwt).
    const verify = () => verifyJwt(token, this.options.key, {
      algorithms: this.options.algorithms,
      issuer: this.options.issuer,
      audience: this.options.audience,
      clockTolerance: this.options.clockToleranceSeconds,
    });
    try {
      try {
        return await verify();
      } catch (err) {
        // A rotated secret: tokens signed with the new one fail against the old until it is read again.
        if (err instanceof errors.JWSSignatureVerificationFailed && this.options.refreshKey && await this.options.refreshKey()) return await verify();
        throw err;
      }
    } catch (err) {
      if (err instanceof KeyUnavailableError) throw new TokenRefusedError('KEY_UNAVAILABLE', err.reason, 'unavailable');
      if (err instanceof errors.JOSEError) {
        const claim = err instanceof errors.JWTClaimValidationFailed ? err.claim : undefined;
        throw new TokenRefusedError(err.code, claim);
      }
      // jose throws TypeErrors for keys that do not fit the algorithm.
      throw new TokenRefusedError('TOKEN_INVALID');
    }
  }

  /**
   * The token's `exp` in whole epoch seconds, or undefined when it has none and none is required.
   * An `exp` that is not a finite number within a sane range (`1e300` would not even fit a
   * DynamoDB number) is refused, as is one already past by this clock.
   */
  private expiryOf(payload: JWTPayload): number | undefined {
    const exp = payload.exp;
    if (exp === undefined) {
      if (this.options.requireExpiration ?? true) throw new TokenRefusedError('NO_EXPIRY', 'exp');
      return undefined;
    }
    if (typeof exp !== 'number' || !Number.isFinite(exp) || exp < 0 || exp > Defaults.MAX_EXPIRATION_SECONDS) {
      throw new TokenRefusedError('EXP_OUT_OF_RANGE', 'exp');
    }
    const expiresAt = Math.floor(exp);
    if (expiresAt <= (this.options.now ?? Date.now)() / 1000) throw new TokenRefusedError('ERR_JWT_EXPIRED', 'exp');
    return expiresAt;
  }

  private checkCognitoClaims(payload: JWTPayload): void {
    const { tokenUse, clientIds } = this.options;
    if (tokenUse !== undefined && payload.token_use !== tokenUse) throw new TokenRefusedError('TOKEN_USE_MISMATCH', 'token_use');
    if (tokenUse === 'access' && clientIds && !clientIds.includes(payload.client_id as string)) {
      throw new TokenRefusedError('CLIENT_ID_MISMATCH', 'client_id');
    }
  }

  private checkRequiredClaims(payload: JWTPayload): void {
    for (const [name, expected] of Object.entries(this.options.requiredClaims ?? {})) {
      if (!holds(payload[name], expected)) throw new TokenRefusedError('REQUIRED_CLAIM_MISSING', name, 'forbidden');
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

/**
 * A claim holds `expected` when it equals it, lists it (an array, or space-separated words as in
 * OAuth's `scope`), or, for `*`, has any value at all.
 */
function holds(value: unknown, expected: string): boolean {
  if (value === undefined || value === null) return false;
  if (expected === '*') return true;
  if (Array.isArray(value)) return value.some((item) => String(item) === expected);
  if (typeof value === 'string') return value === expected || value.split(' ').includes(expected);
  return typeof value !== 'object' && String(value) === expected;
}

/**
 * A browser cannot set headers on a WebSocket, so it offers two subprotocols: the protocol name and
 * the token (`new WebSocket(url, ['authws', token])`). Anything else is no token.
 */
function subprotocolToken(header: string | undefined, protocol: string): string {
  const offered = (header ?? '').split(',').map((item) => item.trim()).filter((item) => item.length > 0);
  if (!offered.includes(protocol)) return '';
  const others = offered.filter((item) => item !== protocol);
  return others.length === 1 ? others[0] : '';
}

function requiredClaimsSetting(env: Environment): Record<string, string> | undefined {
  const raw = optionalSetting(env, Env.AUTH_REQUIRED_CLAIMS);
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'string')) {
    throw new ConfigurationError(`${Env.AUTH_REQUIRED_CLAIMS} must be a JSON object of strings, e.g. {"scope":"chat:write"}`);
  }
  return parsed as Record<string, string>;
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
