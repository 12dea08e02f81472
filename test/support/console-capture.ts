/**
 * Everything written to console.log/warn/error while capturing, one entry per call, and every line
 * written to process.stdout/stderr (where the handlers' JSON logs and EMF metrics go, see
 * src/runtime/log.ts); nothing reaches the terminal.
 */
export interface CapturedConsole {
  readonly lines: string[];
  /** The lines that are JSON objects, parsed. */
  records(): Record<string, unknown>[];
  /** The JSON log lines (`event` names them), without the EMF metric lines. */
  logs(): Record<string, unknown>[];
  /** The CloudWatch embedded metric format lines (those with `_aws`). */
  metrics(): Record<string, unknown>[];
  restore(): void;
}

export function captureConsole(): CapturedConsole {
  const lines: string[] = [];
  const record = (...args: unknown[]) => { lines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')); };
  const spies: Array<{ mockRestore(): void }> = (['log', 'warn', 'error', 'info', 'debug'] as const)
    .map((level) => jest.spyOn(console, level).mockImplementation(record));
  for (const stream of [process.stdout, process.stderr]) {
    spies.push(jest.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(...(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')).split('\n').filter((line) => line.length > 0));
      return true;
    }));
  }
  const records = () => lines.flatMap((line) => {
    try {
      const parsed: unknown = JSON.parse(line);
      return typeof parsed === 'object' && parsed !== null ? [parsed as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
  return {
    lines,
    records,
    logs: () => records().filter((r) => !('_aws' in r)),
    metrics: () => records().filter((r) => '_aws' in r),
    restore: () => spies.forEach((spy) => spy.mockRestore()),
  };
}
