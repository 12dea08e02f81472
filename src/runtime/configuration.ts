/**
 * Reads the settings the construct passes through environment variables (names in `environment.ts`).
 * A setting that is present but malformed is a deployment mistake, so it fails loudly instead of
 * falling back to a default.
 */

/** A setting is missing or malformed. Its message names variables and non-secret values only, so it is safe to log. */
export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigurationError';
  }
}

/** The environment a handler reads; `process.env` in Lambda, a plain object in tests. */
export type Environment = Readonly<Record<string, string | undefined>>;

/** The value of `name`, or an error naming the missing variable. */
export function requiredSetting(env: Environment, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigurationError(`Environment variable ${name} is not set`);
  return value;
}

/** The value of `name`, or undefined when unset or blank. */
export function optionalSetting(env: Environment, name: string): string | undefined {
  return env[name]?.trim() || undefined;
}

/** A positive integer setting, `fallback` when unset. */
export function positiveIntegerSetting(env: Environment, name: string, fallback: number): number {
  const raw = optionalSetting(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new ConfigurationError(`Environment variable ${name} must be a positive integer, got "${raw}"`);
  return value;
}

/** A non-negative number setting, `fallback` when unset. */
export function nonNegativeNumberSetting(env: Environment, name: string, fallback: number): number {
  const raw = optionalSetting(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new ConfigurationError(`Environment variable ${name} must be a non-negative number, got "${raw}"`);
  return value;
}

/** A comma-separated list setting, blanks dropped; empty when unset. */
export function listSetting(env: Environment, name: string): string[] {
  return (optionalSetting(env, name) ?? '').split(',').map((item) => item.trim()).filter((item) => item.length > 0);
}

/** A `true`/`false` setting, `fallback` when unset. */
export function booleanSetting(env: Environment, name: string, fallback: boolean): boolean {
  const raw = optionalSetting(env, name);
  if (raw === undefined) return fallback;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  throw new ConfigurationError(`Environment variable ${name} must be "true" or "false", got "${raw}"`);
}
