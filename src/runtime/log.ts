/**
 * One JSON object per line, so CloudWatch Logs Insights can query the fields. Callers pass reason
 * codes and ids only: never tokens, secrets or message bodies.
 */
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;

export function logEvent(level: 'info' | 'warn' | 'error', event: string, fields: LogFields = {}): void {
  const line = JSON.stringify({ level, event, ...fields });
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}

/** The name of a thrown value (e.g. `GoneException`, `TypeError`), which is safe to log where its message may not be. */
export function errorName(err: unknown): string {
  return err instanceof Error ? err.name : typeof err;
}
