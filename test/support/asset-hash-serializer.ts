/**
 * Jest snapshot serializer that masks asset hashes, so a snapshot changes when the template
 * changes and not when a bundled handler's bytes do.
 */
const HASH = /[0-9a-f]{64}/g;

module.exports = {
  test: (value: unknown): boolean => typeof value === 'string' && /[0-9a-f]{64}/.test(value),
  print: (value: unknown): string => JSON.stringify((value as string).replace(HASH, '[ASSET HASH]')),
};
