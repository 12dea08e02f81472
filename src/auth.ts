import { Duration, Token } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Defaults, Env, RESERVED_CONTEXT_KEYS } from './runtime/environment';

/**
 * Where a client puts its token when it opens the WebSocket.
 *
 * The authorizer's identity source follows the location, so API Gateway refuses a connection that
 * carries no token with 401 before any Lambda function runs.
 */
export class TokenLocation {
  /**
   * The token travels in a request header, with or without a `Bearer ` prefix.
   *
   * Browsers cannot set headers on a WebSocket; use this for server-side and mobile clients.
   * @param name the header's name (case-insensitive)
   * @default 'Authorization'
   */
  public static header(name: string = Defaults.TOKEN_HEADER): TokenLocation {
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) {
      throw new Error(`TokenLocation.header('${name}'): a header name is one or more of letters, digits and !#$%&'*+.^_\`|~- (for example 'Authorization').`);
    }
    return new TokenLocation(`route.request.header.${name}`, `header:${name}`);
  }

  /**
   * The token travels in the query string, as `wss://host/stage?token=...`.
   *
   * Works from browsers, but query strings are written to access logs and proxies' logs.
   * @param name the query parameter's name
   * @default 'token'
   */
  public static queryString(name: string = Defaults.TOKEN_QUERY): TokenLocation {
    if (!/^[A-Za-z0-9._~-]+$/.test(name)) {
      throw new Error(`TokenLocation.queryString('${name}'): a query parameter name is one or more of letters, digits and ._~- (for example 'token').`);
    }
    return new TokenLocation(`route.request.querystring.${name}`, `query:${name}`);
  }

  /**
   * The token travels as a WebSocket subprotocol: the client offers two, the protocol name and the
   * token, as in `new WebSocket(url, ['authws', token])`.
   *
   * The browser-safe choice: browsers cannot set headers on a WebSocket, and unlike a query string
   * the token stays out of access logs. The `$connect` handler echoes the protocol name (never the
   * token) in `Sec-WebSocket-Protocol`, which browsers require and API Gateway does not do itself.
   * @param protocolName the subprotocol offered beside the token
   * @default 'authws'
   */
  public static subprotocol(protocolName: string = Defaults.TOKEN_SUBPROTOCOL): TokenLocation {
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(protocolName) || protocolName.includes('.')) {
      throw new Error(`TokenLocation.subprotocol('${protocolName}'): a subprotocol name is one or more of letters, digits and !#$%&'*+^_\`|~- without dots, so it cannot be mistaken for a token (for example 'authws').`);
    }
    return new TokenLocation('route.request.header.Sec-WebSocket-Protocol', `subprotocol:${protocolName}`);
  }

  /**
   * @param identitySource the authorizer identity source, e.g. `route.request.header.Authorization`
   * @param handlerValue how the bundled authorizer reads the token, e.g. `header:Authorization`
   */
  private constructor(
    /** The API Gateway identity source expression for this location. */
    public readonly identitySource: string,
    /** @internal */
    public readonly _handlerValue: string,
  ) {}
}

/**
 * What the bundled authorizer checks of every token, whoever issues it. Cognito derives the issuer
 * and audience itself; the other issuers add them with `JwtVerificationOptions`.
 */
export interface TokenVerificationOptions {
  /**
   * Where clients put the token.
   * @default TokenLocation.header('Authorization')
   */
  readonly tokenLocation?: TokenLocation;

  /**
   * The JWS algorithms accepted. Any other algorithm, `none` included, is refused. HMAC algorithms
   * (HS256, HS384, HS512) go with `hmacSecret` only; public-key algorithms (RS*, PS*, ES*, EdDSA)
   * with `jwks` and `cognito` only.
   * @default ['HS256'] for an HMAC secret, ['RS256'] for a JWKS or Cognito
   */
  readonly algorithms?: string[];

  /**
   * Clock skew tolerated when checking `nbf` (a token not valid yet). It is not applied to `exp`: a
   * token already expired by the authorizer's clock would open a connection that is closed at its
   * first message, so it is refused.
   * @default Duration.seconds(5)
   */
  readonly clockTolerance?: Duration;

  /**
   * Refuse tokens without an `exp` claim (401, reason `NO_EXPIRY`).
   *
   * A connection lives until its token's `exp`; a token without one opens a connection that only
   * API Gateway's 2-hour limit ends, and that no revocation shortens. Set `false` only for an issuer
   * that cannot put `exp` in its tokens. A `reauth` token needs `exp` either way.
   * @default true
   */
  readonly requireExpiration?: boolean;

  /**
   * The claim whose value identifies the user. Connections are grouped by it.
   * @default 'sub'
   */
  readonly userIdClaim?: string;

  /**
   * Claims copied into the authorizer context (seen by every route integration) and the
   * connection's registry row. Values arrive as strings; arrays and objects as JSON text.
   * @default - none
   */
  readonly contextClaims?: string[];

  /**
   * Claims a token must carry, each with a value it must hold: equal to it, or listing it (an
   * array, or space-separated words as in `scope`); `*` accepts any value. A valid token that
   * lacks one is refused with 403. For example `{ scope: 'chat:write' }`.
   * @default - no claim is required besides the user id claim
   */
  readonly requiredClaims?: { [claim: string]: string };
}

/** How a bundled authorizer checks a JWT of an issuer it is told about: signature, claims, issuer and audience. */
export interface JwtVerificationOptions extends TokenVerificationOptions {
  /**
   * The `iss` a token must carry.
   * @default - `iss` is not checked
   */
  readonly issuer?: string;

  /**
   * The accepted `aud` values: a token must carry at least one of them.
   * @default - `aud` is not checked
   */
  readonly audience?: string[];
}

/** Options for `WebSocketAuth.hmacSecret`. */
export interface HmacSecretAuthOptions extends JwtVerificationOptions {}

/** Options for `WebSocketAuth.jwks`: any OIDC issuer (Auth0, Okta, Keycloak, Entra ID, ...). */
export interface JwksAuthOptions extends JwtVerificationOptions {
  /**
   * The issuer's JSON Web Key Set, e.g. `https://example.auth0.com/.well-known/jwks.json` (the
   * `jwks_uri` of its `/.well-known/openid-configuration`). Must be `https://`, except on
   * localhost or 127.0.0.1.
   */
  readonly jwksUrl: string;

  /**
   * How long one fetch of the key set may take before the connect is refused (500).
   * @default Duration.seconds(3)
   */
  readonly jwksTimeout?: Duration;

  /**
   * After a fetch, how long a token with an unknown `kid` is refused without fetching again.
   * @default Duration.seconds(30)
   */
  readonly jwksCooldown?: Duration;
}

/** Which Cognito token a client presents. */
export enum CognitoTokenUse {
  /** Access tokens (`token_use: access`): the app client is checked against `client_id`. */
  ACCESS = 'access',
  /** ID tokens (`token_use: id`): the app client is checked against `aud`. */
  ID = 'id',
}

/**
 * Options for `WebSocketAuth.cognito`. The issuer and the key set come from the user pool and the
 * audience from the app clients, so there is no `issuer` or `audience` to set.
 */
export interface CognitoAuthOptions extends TokenVerificationOptions {
  /** The app clients whose tokens are accepted (at least one). */
  readonly userPoolClients: cognito.IUserPoolClient[];

  /**
   * Which token clients present.
   * @default CognitoTokenUse.ACCESS
   */
  readonly tokenUse?: CognitoTokenUse;
}

/** Options for `WebSocketAuth.lambdaAuthorizer`. */
export interface LambdaAuthorizerOptions {
  /**
   * Where clients put their token: API Gateway refuses a connect without it (401) before your
   * function runs, and passes it in the event (`headers`, `queryStringParameters`).
   * @default TokenLocation.header('Authorization')
   */
  readonly tokenLocation?: TokenLocation;

  /**
   * Keys of your function's `context` copied into the connection's registry row, as `contextClaims`
   * of the bundled authorizer are.
   * @default - none
   */
  readonly contextClaims?: string[];
}

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];
const PUBLIC_KEY_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/**
 * How clients authenticate on `$connect`: the issuer of their JWTs and where the token travels.
 */
export abstract class WebSocketAuth {
  /**
   * Tokens signed with a shared secret (HS256 by default), held in Secrets Manager.
   *
   * The secret's `SecretString` is the key. Only the authorizer and the message handler (for
   * `reauth`) may read it; each reads it once per container and again when its copy is 5 minutes
   * old or a signature does not verify (at most every 30 seconds), so a rotated secret stops
   * verifying tokens within 5 minutes. The value never appears in the template or in an
   * environment variable.
   * @param secret the secret whose value signs the tokens
   * @param options what the authorizer checks
   */
  public static hmacSecret(secret: secretsmanager.ISecret, options: HmacSecretAuthOptions = {}): WebSocketAuth {
    const algorithms = options.algorithms ?? ['HS256'];
    if (algorithms.length === 0) {
      throw new Error('WebSocketAuth.hmacSecret: `algorithms` is empty; list at least one of HS256, HS384, HS512 (or leave it out for HS256).');
    }
    for (const alg of algorithms) {
      if (!HMAC_ALGORITHMS.includes(alg)) {
        throw new Error(`WebSocketAuth.hmacSecret: '${alg}' is not an HMAC algorithm; use HS256, HS384 or HS512.`);
      }
    }
    return new HmacSecretAuth(secret, { ...options, algorithms });
  }

  /**
   * Tokens of any OIDC issuer (Auth0, Okta, Keycloak, Entra ID, ...), verified with the public keys
   * of its JSON Web Key Set.
   *
   * The key set is fetched once per authorizer container (with a timeout) and kept in memory; a
   * token whose `kid` is unknown triggers one refetch at most per cooldown, so key rotation works
   * and a flood of made-up `kid`s costs the issuer one request per cooldown. Set `issuer` and
   * `audience` too: without them, any token the issuer signed for any application is accepted.
   * @param options the key set and what the authorizer checks
   */
  public static jwks(options: JwksAuthOptions): WebSocketAuth {
    const url = options.jwksUrl;
    if (!Token.isUnresolved(url) && !/^(https:\/\/[^/]+|http:\/\/(localhost|127\.0\.0\.1)(:\d+)?)(\/|$)/.test(url)) {
      throw new Error(`WebSocketAuth.jwks: jwksUrl '${url}' is not an https:// URL; the key set decides who may connect, so it must come over TLS (http:// is accepted for localhost only).`);
    }
    const algorithms = publicKeyAlgorithms('WebSocketAuth.jwks', options.algorithms);
    const timeoutMs = durationMs('jwksTimeout', options.jwksTimeout, Defaults.JWKS_TIMEOUT_MS, 100, 10_000);
    const cooldownMs = durationMs('jwksCooldown', options.jwksCooldown, Defaults.JWKS_COOLDOWN_MS, 0, 3_600_000);
    return new PublicKeyAuth({ ...options, algorithms }, {
      [Env.AUTH_JWKS_URL]: url,
      [Env.AUTH_JWKS_TIMEOUT_MS]: String(timeoutMs),
      [Env.AUTH_JWKS_COOLDOWN_MS]: String(cooldownMs),
    });
  }

  /**
   * Tokens of an Amazon Cognito user pool: the issuer and key set are derived from the pool, and
   * the app client is checked (`client_id` of access tokens, `aud` of ID tokens) as is `token_use`.
   * @param userPool the user pool that issues the tokens
   * @param options the accepted app clients, the token use, and what else the authorizer checks
   */
  public static cognito(userPool: cognito.IUserPool, options: CognitoAuthOptions): WebSocketAuth {
    // JavaScript callers are not stopped by the type: say so rather than ignore them.
    const untyped = options as JwtVerificationOptions;
    if (untyped.issuer !== undefined || untyped.audience !== undefined) {
      throw new Error('WebSocketAuth.cognito: leave out `issuer` and `audience`; the issuer comes from the user pool and the audience from `userPoolClients`.');
    }
    if (!options.userPoolClients || options.userPoolClients.length === 0) {
      throw new Error('WebSocketAuth.cognito: `userPoolClients` is empty; list the app clients whose tokens may connect.');
    }
    const algorithms = publicKeyAlgorithms('WebSocketAuth.cognito', options.algorithms);
    const issuer = `https://cognito-idp.${userPool.env.region}.amazonaws.com/${userPool.userPoolId}`;
    return new PublicKeyAuth({ ...options, algorithms, issuer }, {
      [Env.AUTH_JWKS_URL]: `${issuer}/.well-known/jwks.json`,
      [Env.AUTH_TOKEN_USE]: options.tokenUse ?? CognitoTokenUse.ACCESS,
      [Env.AUTH_CLIENT_IDS]: options.userPoolClients.map((client) => client.userPoolClientId).join(','),
    });
  }

  /**
   * Your own `$connect` REQUEST authorizer: your function decides who connects, and the registry,
   * broadcast, send and expiry work as with the bundled one.
   *
   * It receives API Gateway's REQUEST authorizer event and answers an IAM policy allowing
   * `execute-api:Invoke` (or denying it) with `principalId` set to the user id. In `context`
   * it may add `expiresAt` (epoch seconds: past it the connection is closed, as with a token's
   * `exp`) and the keys listed in `contextClaims`. The construct neither bundles nor changes the
   * function (no environment, no grants); API Gateway gets the permission to invoke it.
   * `{"action":"reauth"}` is answered with an error frame: only the bundled verifier checks a
   * fresh token.
   * @param handler your authorizer function
   * @param options where the token travels, and what of your context the registry keeps
   */
  public static lambdaAuthorizer(handler: lambda.IFunction, options: LambdaAuthorizerOptions = {}): WebSocketAuth {
    return new CustomAuthorizerAuth(handler, options);
  }

  /** Where clients put their token. */
  public abstract readonly tokenLocation: TokenLocation;

  /** Claims copied into the authorizer context and the registry row. */
  public abstract readonly contextClaims: string[];

  /**
   * Configures a function that verifies tokens (the authorizer, and the message handler for
   * `reauth`): its environment and its grants.
   * @internal
   */
  public abstract _bind(verifier: lambda.Function): void;

  /**
   * The authorizer function of `lambdaAuthorizer`, used instead of the bundled one.
   * @internal
   */
  public _customAuthorizer(): lambda.IFunction | undefined {
    return undefined;
  }
}

/** `WebSocketAuth.lambdaAuthorizer`: the user's function authorizes; nothing to configure on ours. */
class CustomAuthorizerAuth extends WebSocketAuth {
  public readonly tokenLocation: TokenLocation;
  public readonly contextClaims: string[];

  constructor(private readonly handler: lambda.IFunction, options: LambdaAuthorizerOptions) {
    super();
    this.tokenLocation = options.tokenLocation ?? TokenLocation.header();
    this.contextClaims = validateClaims(options);
  }

  public _bind(_verifier: lambda.Function): void {
    // Nothing to verify with: the message handler refuses reauth without AUTH_* settings.
  }

  public _customAuthorizer(): lambda.IFunction {
    return this.handler;
  }
}

class HmacSecretAuth extends WebSocketAuth {
  public readonly tokenLocation: TokenLocation;
  public readonly contextClaims: string[];

  private readonly environment: Record<string, string>;

  constructor(private readonly secret: secretsmanager.ISecret, options: HmacSecretAuthOptions) {
    super();
    this.tokenLocation = options.tokenLocation ?? TokenLocation.header();
    this.contextClaims = validateClaims(options);
    this.environment = verificationEnvironment(options, this.tokenLocation, this.contextClaims);
  }

  public _bind(verifier: lambda.Function): void {
    this.secret.grantRead(verifier);
    verifier.addEnvironment(Env.AUTH_SECRET_ARN, this.secret.secretArn);
    for (const [name, value] of Object.entries(this.environment)) verifier.addEnvironment(name, value);
  }
}

/** Tokens verified with an issuer's public keys: `jwks` and `cognito`. Nothing to grant. */
class PublicKeyAuth extends WebSocketAuth {
  public readonly tokenLocation: TokenLocation;
  public readonly contextClaims: string[];

  private readonly environment: Record<string, string>;

  constructor(options: JwtVerificationOptions, keyEnvironment: Record<string, string>) {
    super();
    this.tokenLocation = options.tokenLocation ?? TokenLocation.header();
    this.contextClaims = validateClaims(options);
    this.environment = { ...keyEnvironment, ...verificationEnvironment(options, this.tokenLocation, this.contextClaims) };
  }

  public _bind(verifier: lambda.Function): void {
    for (const [name, value] of Object.entries(this.environment)) verifier.addEnvironment(name, value);
  }
}

function publicKeyAlgorithms(factory: string, listed: string[] | undefined): string[] {
  const algorithms = listed ?? ['RS256'];
  if (algorithms.length === 0) {
    throw new Error(`${factory}: \`algorithms\` is empty; list at least one, e.g. RS256 or ES256 (or leave it out for RS256).`);
  }
  for (const alg of algorithms) {
    if (!PUBLIC_KEY_ALGORITHMS.includes(alg)) {
      throw new Error(`${factory}: '${alg}' is not a public-key algorithm; use one of ${PUBLIC_KEY_ALGORITHMS.join(', ')}. An HMAC algorithm next to a key set would let anyone who holds the public key sign tokens.`);
    }
  }
  return algorithms;
}

function durationMs(name: string, value: Duration | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const ms = value.toMilliseconds();
  if (!Token.isUnresolved(ms) && (ms < min || ms > max)) {
    throw new Error(`WebSocketAuth.jwks: \`${name}\` is ${ms} ms; use between ${min} and ${max} ms.`);
  }
  return ms;
}

function validateClaims(options: TokenVerificationOptions): string[] {
  const userIdClaim = options.userIdClaim ?? Defaults.USER_ID_CLAIM;
  if (userIdClaim.trim() === '') {
    throw new Error('WebSocketAuth: `userIdClaim` is empty; name the claim that identifies the user (default \'sub\').');
  }
  const claims = options.contextClaims ?? [];
  for (const claim of claims) {
    if (claim.trim() === '' || claim.includes(',')) {
      throw new Error(`WebSocketAuth: context claim '${claim}' is not a claim name; use a non-empty name without commas.`);
    }
    if (RESERVED_CONTEXT_KEYS.includes(claim)) {
      throw new Error(`WebSocketAuth: context claim '${claim}' collides with a key the authorizer context already uses (${RESERVED_CONTEXT_KEYS.join(', ')}); leave it out of \`contextClaims\`.`);
    }
  }
  return claims;
}

function verificationEnvironment(options: JwtVerificationOptions, location: TokenLocation, claims: string[]): Record<string, string> {
  const tolerance = options.clockTolerance?.toSeconds() ?? Defaults.CLOCK_TOLERANCE_SECONDS;
  if (!Token.isUnresolved(tolerance) && (tolerance < 0 || tolerance > 300)) {
    throw new Error(`WebSocketAuth: \`clockTolerance\` is ${tolerance} seconds; use between 0 and 300 seconds.`);
  }
  const env: Record<string, string> = {
    [Env.AUTH_ALGORITHMS]: (options.algorithms ?? []).join(','),
    [Env.AUTH_CLOCK_TOLERANCE_SECONDS]: String(tolerance),
    [Env.AUTH_USER_ID_CLAIM]: options.userIdClaim ?? Defaults.USER_ID_CLAIM,
    [Env.AUTH_TOKEN_LOCATION]: location._handlerValue,
  };
  // Only the opt-out is written: the handlers require `exp` when the variable is absent.
  if (options.requireExpiration === false) env[Env.AUTH_REQUIRE_EXPIRATION] = 'false';
  if (options.issuer !== undefined) env[Env.AUTH_ISSUER] = options.issuer;
  if (options.audience !== undefined && options.audience.length > 0) env[Env.AUTH_AUDIENCE] = options.audience.join(',');
  if (claims.length > 0) env[Env.AUTH_CONTEXT_CLAIMS] = claims.join(',');
  const required = options.requiredClaims ?? {};
  for (const [claim, value] of Object.entries(required)) {
    if (claim.trim() === '' || typeof value !== 'string' || value === '') {
      throw new Error(`WebSocketAuth: required claim '${claim}' needs a non-empty name and value; use '*' to accept any value.`);
    }
  }
  if (Object.keys(required).length > 0) env[Env.AUTH_REQUIRED_CLAIMS] = JSON.stringify(required);
  return env;
}
