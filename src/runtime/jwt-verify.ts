import { constants, createHmac, KeyObject, timingSafeEqual, verify as verifySignature, webcrypto } from 'node:crypto';
import { errors, jwtVerify, UnsecuredJWT, type FlattenedJWSInput, type JWSHeaderParameters, type JWTPayload } from 'jose';

/** A key jose verifies with. */
export type VerificationKey = webcrypto.CryptoKey | KeyObject | Uint8Array;

/** The key for a token, chosen by its protected header (`alg`, `kid`). */
export type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<VerificationKey>;

/** What a token's claims are checked against (jose's names and meaning). */
export interface JwtVerifyOptions {
  /** JWS algorithms accepted; anything else (including `none`) is refused. */
  readonly algorithms: readonly string[];
  readonly issuer?: string;
  readonly audience?: readonly string[];
  /** Seconds of skew tolerated on `nbf`, `iat` and `exp` (jose's `clockTolerance`). */
  readonly clockTolerance: number;
}

/** How node:crypto checks one JWS algorithm, and what a WebCrypto key for it must be (as jose requires). */
interface NodeAlgorithm {
  /** The CryptoKey's `algorithm.name`. */
  readonly name: string;
  /** The CryptoKey's `algorithm.hash.name`, when the key carries one. */
  readonly keyHash?: string;
  /** The CryptoKey's `algorithm.namedCurve` (ECDSA). */
  readonly namedCurve?: string;
  /** RSA keys shorter than this are refused (jose refuses under 2048 bits). */
  readonly minRsaBits?: number;
  /** The KeyObject's `asymmetricKeyType` (`secret`: a secret key). */
  readonly keyObjectType: 'secret' | 'rsa' | 'ec' | 'ed25519';
  /** The KeyObject's `asymmetricKeyDetails.namedCurve` (OpenSSL's name). */
  readonly opensslCurve?: string;
  readonly verify: (data: Buffer, key: KeyObject, signature: Buffer) => boolean;
}

function hmac(bits: number): NodeAlgorithm {
  return {
    name: 'HMAC',
    keyHash: `SHA-${bits}`,
    keyObjectType: 'secret',
    verify: (data, key, signature) => {
      const expected = createHmac(`sha${bits}`, key).update(data).digest();
      return expected.length === signature.length && timingSafeEqual(expected, signature);
    },
  };
}

function rsa(bits: number, saltLength?: number): NodeAlgorithm {
  const padding = saltLength ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength } : { padding: constants.RSA_PKCS1_PADDING };
  return {
    name: saltLength ? 'RSA-PSS' : 'RSASSA-PKCS1-v1_5',
    keyHash: `SHA-${bits}`,
    minRsaBits: 2048,
    keyObjectType: 'rsa',
    verify: (data, key, signature) => verifySignature(`sha${bits}`, data, { key, ...padding }, signature),
  };
}

function ecdsa(namedCurve: string, opensslCurve: string, bits: number): NodeAlgorithm {
  return {
    name: 'ECDSA',
    namedCurve,
    keyObjectType: 'ec',
    opensslCurve,
    // JWS carries ECDSA signatures as r || s (as WebCrypto does), not DER.
    verify: (data, key, signature) => verifySignature(`sha${bits}`, data, { key, dsaEncoding: 'ieee-p1363' }, signature),
  };
}

const ed25519: NodeAlgorithm = { name: 'Ed25519', keyObjectType: 'ed25519', verify: (data, key, signature) => verifySignature(null, data, key, signature) };

/** The algorithms verified with node:crypto; any other is left to jose. */
const NODE_ALGORITHMS: Readonly<Record<string, NodeAlgorithm>> = {
  HS256: hmac(256),
  HS384: hmac(384),
  HS512: hmac(512),
  RS256: rsa(256),
  RS384: rsa(384),
  RS512: rsa(512),
  PS256: rsa(256, 32),
  PS384: rsa(384, 48),
  PS512: rsa(512, 64),
  ES256: ecdsa('P-256', 'prime256v1', 256),
  ES384: ecdsa('P-384', 'secp384r1', 384),
  ES512: ecdsa('P-521', 'secp521r1', 512),
  EdDSA: ed25519,
  Ed25519: ed25519,
};

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const UNSECURED_HEADER = Buffer.from('{"alg":"none"}').toString('base64url');
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
/** KeyObjects for the WebCrypto keys the key sources hand out (each imported once per key and algorithm). */
const keyObjects = new WeakMap<webcrypto.CryptoKey, KeyObject>();

/**
 * jose's `jwtVerify(token, key, options)`, same decisions and error classes, with the signature
 * checked by node:crypto instead of WebCrypto.
 *
 * jose 6 verifies through WebCrypto, whose every call is an asynchronous job: RS256 ran at a third of
 * aws-jwt-verify's rate and ES256 at half of it. Here jose still does everything but the signature on
 * the common path: the claims are checked by jose's own claim validation (`UnsecuredJWT.decode` of the
 * payload under an `alg: none` header, which runs the same checks as `jwtVerify`), and the key still
 * comes from the resolver, which runs only once the algorithm is allowed. The signature is checked
 * synchronously by node:crypto with a KeyObject made once per WebCrypto key.
 *
 * The fast path takes only the plain case: three base64url parts, a JSON object header without `crit`
 * or `b64`, an allowed `alg` this module knows, and a resolved key that jose would accept for that
 * `alg`: a WebCrypto key with the same algorithm name, hash, curve, `verify` usage and type, or a
 * KeyObject of the algorithm's type and curve; RSA at least 2048 bits. Every other token or key goes
 * to jose's `jwtVerify` unchanged, so an odd token is refused by jose itself.
 */
export async function verifyJwt(token: string, key: KeyResolver, options: JwtVerifyOptions): Promise<JWTPayload> {
  const joseOptions = {
    algorithms: [...options.algorithms],
    issuer: options.issuer,
    audience: options.audience ? [...options.audience] : undefined,
    clockTolerance: options.clockTolerance,
  };
  const parts = token.split('.');
  const header = parts.length === 3 && parts.every((part) => BASE64URL.test(part)) ? plainHeader(parts[0]) : undefined;
  const alg = header?.alg;
  const algorithm = typeof alg === 'string' && options.algorithms.includes(alg) ? NODE_ALGORITHMS[alg] : undefined;
  if (!header || !algorithm) return (await jwtVerify(token, key, joseOptions)).payload;

  const resolved = await key(header, { protected: parts[0], payload: parts[1], signature: parts[2] });
  const keyObject = isCryptoKey(resolved) ? keyObjectFor(resolved, algorithm)
    : resolved instanceof KeyObject && fits(resolved, algorithm) ? resolved : undefined;
  // Another kind of key (bytes, a JWK object, an rsa-pss or private KeyObject), or one jose would refuse: jose decides, with the key resolved.
  if (!keyObject) return (await jwtVerify(token, resolved, joseOptions)).payload;

  let verified = false;
  try {
    verified = algorithm.verify(Buffer.from(`${parts[0]}.${parts[1]}`, 'latin1'), keyObject, Buffer.from(parts[2], 'base64url'));
  } catch {
    verified = false; // e.g. an ECDSA signature of the wrong length: WebCrypto says false too
  }
  if (!verified) throw new errors.JWSSignatureVerificationFailed();
  return UnsecuredJWT.decode(`${UNSECURED_HEADER}.${parts[1]}.`, joseOptions).payload;
}

/** The decoded protected header when it is a plain JSON object without `crit` or `b64`; undefined otherwise. */
function plainHeader(encoded: string): JWSHeaderParameters | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(strictUtf8.decode(Buffer.from(encoded, 'base64url')));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Object.prototype.toString.call(parsed) !== '[object Object]') return undefined;
  const prototype = Object.getPrototypeOf(parsed);
  if (prototype !== null && Object.getPrototypeOf(prototype) !== null) return undefined;
  if ('crit' in parsed || 'b64' in parsed) return undefined;
  return parsed as JWSHeaderParameters;
}

function isCryptoKey(key: unknown): key is webcrypto.CryptoKey {
  return (key as { [Symbol.toStringTag]?: string } | undefined)?.[Symbol.toStringTag] === 'CryptoKey';
}

/**
 * Whether jose would verify `algorithm` with this KeyObject: a public key of the algorithm's type (RSA
 * of at least 2048 bits, EC on the algorithm's curve, Ed25519), or a non-empty secret for HMAC.
 * (An `rsa-pss` key, or a private one, goes to jose.)
 */
function fits(key: KeyObject, algorithm: NodeAlgorithm): boolean {
  if (algorithm.keyObjectType === 'secret') return key.type === 'secret' && (key.symmetricKeySize ?? 0) > 0;
  if (key.type !== 'public' || key.asymmetricKeyType !== algorithm.keyObjectType) return false;
  const details = key.asymmetricKeyDetails ?? {};
  if (algorithm.minRsaBits && !((details.modulusLength ?? 0) >= algorithm.minRsaBits)) return false;
  return !algorithm.opensslCurve || details.namedCurve === algorithm.opensslCurve;
}

/** The KeyObject for `key`, or undefined when jose would not verify `algorithm` with it. */
function keyObjectFor(key: webcrypto.CryptoKey, algorithm: NodeAlgorithm): KeyObject | undefined {
  const params = key.algorithm as { name: string; hash?: { name?: string }; namedCurve?: string; modulusLength?: number };
  if (params.name !== algorithm.name) return undefined;
  if (algorithm.keyHash && params.hash?.name !== algorithm.keyHash) return undefined;
  if (algorithm.namedCurve && params.namedCurve !== algorithm.namedCurve) return undefined;
  if (algorithm.minRsaBits && !(typeof params.modulusLength === 'number' && params.modulusLength >= algorithm.minRsaBits)) return undefined;
  if (!key.usages.includes('verify')) return undefined;
  if (key.type !== (algorithm.name === 'HMAC' ? 'secret' : 'public')) return undefined;
  let keyObject = keyObjects.get(key);
  if (!keyObject) {
    keyObject = KeyObject.from(key);
    keyObjects.set(key, keyObject);
  }
  return keyObject;
}
