import { Duration, Token } from 'aws-cdk-lib';
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

/** How a bundled authorizer checks a JWT, whatever signs it. */
export interface JwtVerificationOptions {
  /**
   * Where clients put the token.
   * @default TokenLocation.header('Authorization')
   */
  readonly tokenLocation?: TokenLocation;

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

  /**
   * The JWS algorithms accepted. Any other algorithm, `none` included, is refused.
   * @default ['HS256'] for an HMAC secret
   */
  readonly algorithms?: string[];

  /**
   * Clock skew tolerated when checking `exp` and `nbf`.
   * @default Duration.seconds(5)
   */
  readonly clockTolerance?: Duration;

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
}

/** Options for `WebSocketAuth.hmacSecret`. */
export interface HmacSecretAuthOptions extends JwtVerificationOptions {}

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];

/**
 * How clients authenticate on `$connect`: the issuer of their JWTs and where the token travels.
 */
export abstract class WebSocketAuth {
  /**
   * Tokens signed with a shared secret (HS256 by default), held in Secrets Manager.
   *
   * The secret's `SecretString` is the key. Only the authorizer function may read it; it reads it
   * once per container, and the value never appears in the template or in an environment variable.
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

  /** Where clients put their token. */
  public abstract readonly tokenLocation: TokenLocation;

  /** Claims copied into the authorizer context and the registry row. */
  public abstract readonly contextClaims: string[];

  /**
   * Configures the authorizer function: its environment and its grants.
   * @internal
   */
  public abstract _bind(authorizer: lambda.Function): void;
}

class HmacSecretAuth extends WebSocketAuth {
  public readonly tokenLocation: TokenLocation;
  public readonly contextClaims: string[];

  constructor(private readonly secret: secretsmanager.ISecret, private readonly options: HmacSecretAuthOptions) {
    super();
    this.tokenLocation = options.tokenLocation ?? TokenLocation.header();
    this.contextClaims = validateClaims(options);
  }

  public _bind(authorizer: lambda.Function): void {
    this.secret.grantRead(authorizer);
    authorizer.addEnvironment(Env.AUTH_SECRET_ARN, this.secret.secretArn);
    for (const [name, value] of Object.entries(verificationEnvironment(this.options, this.tokenLocation, this.contextClaims))) {
      authorizer.addEnvironment(name, value);
    }
  }
}

function validateClaims(options: JwtVerificationOptions): string[] {
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
  if (options.issuer !== undefined) env[Env.AUTH_ISSUER] = options.issuer;
  if (options.audience !== undefined && options.audience.length > 0) env[Env.AUTH_AUDIENCE] = options.audience.join(',');
  if (claims.length > 0) env[Env.AUTH_CONTEXT_CLAIMS] = claims.join(',');
  return env;
}
