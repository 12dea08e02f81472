/** Everything written to console.log/warn/error while capturing, one entry per call; nothing reaches the terminal. */
export interface CapturedConsole {
  readonly lines: string[];
  /** The lines that are JSON objects, parsed. */
  records(): Record<string, unknown>[];
  restore(): void;
}

export function captureConsole(): CapturedConsole {
  const lines: string[] = [];
  const record = (...args: unknown[]) => { lines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')); };
  const spies = (['log', 'warn', 'error', 'info', 'debug'] as const).map((level) => jest.spyOn(console, level).mockImplementation(record));
  return {
    lines,
    records: () => lines.flatMap((line) => {
      try {
        const parsed: unknown = JSON.parse(line);
        return typeof parsed === 'object' && parsed !== null ? [parsed as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    }),
    restore: () => spies.forEach((spy) => spy.mockRestore()),
  };
}
