/**
 * The verification key could not be had: the secret or the key set could not be fetched (down,
 * slow, denied, not a key). Its reason is a code or an error name, safe to log.
 */
export class KeyUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`The verification key is unavailable: ${reason}`);
    this.name = 'KeyUnavailableError';
  }
}
