/**
 * The contract between the construct and the bundled handlers: the environment variables the
 * construct sets, the registry's schema and the keys of the authorizer context.
 *
 * This file is imported by both sides, so it holds constants only and imports nothing.
 */

/** Names of the environment variables the construct sets on the bundled handlers. */
export const Env = {
  /** Name of the connection registry table. Set on the connection and message handlers and on Lambda route targets. */
  TABLE_NAME: 'CONNECTIONS_TABLE_NAME',
  /** Name of the registry's GSI keyed by user id. */
  USER_INDEX_NAME: 'CONNECTIONS_USER_INDEX_NAME',
  /** `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`: the @connections endpoint. */
  CALLBACK_URL: 'CALLBACK_URL',
  /** Seconds a registry row lives after connect before DynamoDB TTL may remove it. */
  CONNECTION_TTL_SECONDS: 'CONNECTION_TTL_SECONDS',
  /** Most @connections posts in flight at once for one send. */
  FANOUT_CONCURRENCY: 'FANOUT_CONCURRENCY',
  /** Milliseconds one @connections post may take before it is abandoned. */
  POST_TIMEOUT_MS: 'POST_TIMEOUT_MS',
  /** Parallel scan segments a broadcast reads (inline) or enqueues (queue mode). */
  FANOUT_SEGMENTS: 'FANOUT_SEGMENTS',
  /** Queue mode: URL of the SQS queue of fan-out tasks (one per scan segment). */
  FANOUT_QUEUE_URL: 'FANOUT_QUEUE_URL',
  /** Queue mode: URL of the dead-letter queue that keeps recipients a worker could not reach. */
  FANOUT_DLQ_URL: 'FANOUT_DLQ_URL',
  /** Most @connections posts per second of one sender (one worker's share of `maxSendRate`). */
  FANOUT_MAX_SEND_RATE: 'FANOUT_MAX_SEND_RATE',
  /** Name of the publisher function, for the `publish` helper of route Lambdas. */
  PUBLISHER_FUNCTION_NAME: 'CONNECTIONS_PUBLISHER_FUNCTION_NAME',

  /** Name of the channels table (subscriptions, presence, history, message ids, rate windows). */
  CHANNELS_TABLE_NAME: 'CHANNELS_TABLE_NAME',
  /** JSON: the channel rules and the policies of the built-in actions (see runtime/channel-policy.ts). */
  CHANNELS_CONFIG: 'CHANNELS_CONFIG',
  /** Partitions a channel's subscriptions are spread over. */
  CHANNEL_SHARDS: 'CHANNEL_SHARDS',
  /** Most client broadcast and publish requests per user per window; 0: no limit. */
  CLIENT_FANOUT_RATE_LIMIT: 'CLIENT_FANOUT_RATE_LIMIT',
  /** Seconds of one rate-limit window. */
  CLIENT_FANOUT_RATE_WINDOW_SECONDS: 'CLIENT_FANOUT_RATE_WINDOW_SECONDS',
  /** Name of the EventBridge bus that receives connect, disconnect, joined and left events. */
  LIFECYCLE_EVENT_BUS_NAME: 'LIFECYCLE_EVENT_BUS_NAME',

  /** ARN of the Secrets Manager secret whose SecretString is the HMAC key. Authorizer only. */
  AUTH_SECRET_ARN: 'AUTH_SECRET_ARN',
  /** Comma-separated JWS algorithms accepted, e.g. `HS256`. */
  AUTH_ALGORITHMS: 'AUTH_ALGORITHMS',
  /** Expected `iss`, when set. */
  AUTH_ISSUER: 'AUTH_ISSUER',
  /** Comma-separated accepted `aud` values, when set. */
  AUTH_AUDIENCE: 'AUTH_AUDIENCE',
  /** Clock skew tolerated on `exp` and `nbf`, in seconds. */
  AUTH_CLOCK_TOLERANCE_SECONDS: 'AUTH_CLOCK_TOLERANCE_SECONDS',
  /** Claim whose value is the user id (default `sub`). */
  AUTH_USER_ID_CLAIM: 'AUTH_USER_ID_CLAIM',
  /** Comma-separated claims copied into the authorizer context and the registry row. */
  AUTH_CONTEXT_CLAIMS: 'AUTH_CONTEXT_CLAIMS',
  /** Where the token travels: `header:<Name>`, `query:<name>` or `subprotocol:<protocol name>`. */
  AUTH_TOKEN_LOCATION: 'AUTH_TOKEN_LOCATION',
  /** URL of the JSON Web Key Set that verifies the tokens (instead of AUTH_SECRET_ARN). */
  AUTH_JWKS_URL: 'AUTH_JWKS_URL',
  /** Milliseconds one JWKS fetch may take. */
  AUTH_JWKS_TIMEOUT_MS: 'AUTH_JWKS_TIMEOUT_MS',
  /** Milliseconds after a JWKS fetch before an unknown `kid` may trigger another. */
  AUTH_JWKS_COOLDOWN_MS: 'AUTH_JWKS_COOLDOWN_MS',
  /** JSON object of claims a token must carry: `{"scope":"chat:write"}`; `*` means any value. */
  AUTH_REQUIRED_CLAIMS: 'AUTH_REQUIRED_CLAIMS',
  /** `false`: tokens without `exp` are accepted (their connections live until API Gateway's 2 hours). Unset: `exp` is required. */
  AUTH_REQUIRE_EXPIRATION: 'AUTH_REQUIRE_EXPIRATION',
  /** Cognito: the `token_use` a token must carry (`access` or `id`). */
  AUTH_TOKEN_USE: 'AUTH_TOKEN_USE',
  /** Cognito: comma-separated app client ids; checked against `client_id` (access) or `aud` (id). */
  AUTH_CLIENT_IDS: 'AUTH_CLIENT_IDS',
} as const;

/**
 * The handler metrics: emitted by the bundled handlers in CloudWatch embedded metric format, read
 * by the construct's `metric*()` methods, alarms and dashboard. One dimension: the API's id, which
 * the construct passes to every bundled function in `Env.API_ID`.
 */
export const HandlerMetrics = {
  NAMESPACE: 'AuthenticatedWebSocketApi',
  API_DIMENSION: 'ApiId',
  /** Posts the @connections API accepted. */
  DELIVERED: 'Delivered',
  /** Recipients found gone (410); their rows were deleted. */
  GONE: 'Gone',
  /** Posts that failed after their retries. */
  FAILED: 'Failed',
  /** Posts answered 429 (each attempt). */
  THROTTLED: 'Throttled',
  /** Post attempts retried. */
  RETRIED: 'Retried',
  /** Connections the authorizer refused (401 or 403). */
  AUTH_DENIED: 'AuthDenied',
} as const;

/** Names of environment variables every bundled function gets for observability. */
export const ObservabilityEnv = {
  /** The WebSocket API's id: the value of the metrics' `ApiId` dimension. */
  API_ID: 'WEBSOCKET_API_ID',
} as const;

/** The connection registry's schema. */
export const Registry = {
  PARTITION_KEY: 'connectionId',
  USER_ID: 'userId',
  USER_INDEX: 'byUser',
  CONNECTED_AT: 'connectedAt',
  EXPIRES_AT: 'expiresAt',
  TTL: 'ttl',
  CLAIMS: 'claims',
} as const;

/** The channels table's schema (item kinds in runtime/channel-store.ts). */
export const ChannelsTable = {
  PARTITION_KEY: 'pk',
  SORT_KEY: 'sk',
  /** Sparse GSI on subscription items: every subscription of a connection. */
  CONNECTION_INDEX: 'byConnection',
  CONNECTION_ID: 'connectionId',
  TTL: 'ttl',
  /** Default partitions per channel's subscriptions. */
  SHARDS: 4,
  /** Default: client broadcast + publish requests per user per window. */
  CLIENT_FANOUT_RATE_LIMIT: 100,
  CLIENT_FANOUT_RATE_WINDOW_SECONDS: 10,
} as const;

/** Keys of the authorizer context the bundled authorizer returns (besides the claims it copies). */
export const AuthorizerContext = {
  USER_ID: 'userId',
  EXPIRES_AT: 'expiresAt',
} as const;

/** Context keys a copied claim may not take: API Gateway or the authorizer already uses them. */
export const RESERVED_CONTEXT_KEYS: readonly string[] = ['principalId', 'integrationLatency', 'userId', 'expiresAt'];

/** Defaults shared by the construct and the handlers. */
export const Defaults = {
  /** API Gateway closes every connection after 2 hours; the row may linger 5 minutes more. */
  CONNECTION_TTL_SECONDS: 2 * 60 * 60 + 5 * 60,
  FANOUT_CONCURRENCY: 100,
  /** Inline broadcasts read this many scan segments in parallel. */
  FANOUT_INLINE_SEGMENTS: 4,
  /** Queue mode: SQS tasks (scan segments) per broadcast, each served by one worker invocation. */
  FANOUT_QUEUE_SEGMENTS: 16,
  /** Queue mode: posts per second of all workers together, under the 10,000 account throttle it shares. */
  FANOUT_MAX_SEND_RATE: 5_000,
  POST_TIMEOUT_MS: 5_000,
  CLOCK_TOLERANCE_SECONDS: 5,
  USER_ID_CLAIM: 'sub',
  TOKEN_HEADER: 'Authorization',
  TOKEN_QUERY: 'token',
  /** The subprotocol a browser offers beside its token, and the one `$connect` echoes. */
  TOKEN_SUBPROTOCOL: 'authws',
  JWKS_TIMEOUT_MS: 3_000,
  JWKS_COOLDOWN_MS: 30_000,
  /**
   * An HMAC secret older than this is read again on next use (a failed read keeps the old one): a
   * rotated secret stops verifying tokens in warm containers within this time.
   */
  SECRET_MAX_AGE_MS: 5 * 60 * 1000,
  /** After a read of the HMAC secret, a bad signature triggers no other read for this long. */
  SECRET_REFRESH_COOLDOWN_MS: 30_000,
  /** A key set older than this is refetched on next use (a failed refetch keeps the old one). */
  JWKS_MAX_AGE_MS: 60 * 60 * 1000,
  /** Longer tokens are refused before any parsing. */
  MAX_TOKEN_BYTES: 8_192,
  /**
   * Longest user id accepted (characters). It is the authorizer's `principalId` and `userId` (an
   * authorizer result is at most 8 KB) and the registry's `byUser` key (at most 2 KB).
   */
  MAX_USER_ID_LENGTH: 256,
  /** Most bytes of the copied context claims (as JSON), so the authorizer result stays under API Gateway's 8 KB. */
  MAX_CONTEXT_CLAIMS_BYTES: 6_144,
  /** Latest `exp` accepted: 9999-12-31T23:59:59Z. Beyond it a token is refused (`1e300` fits no registry number). */
  MAX_EXPIRATION_SECONDS: 253_402_300_799,
  /** The largest message API Gateway accepts or sends: 128 KB. */
  MAX_MESSAGE_BYTES: 131_072,
} as const;
