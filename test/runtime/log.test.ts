import { withInvocation } from '../../src/runtime/invocation';
import { errorName, logEvent } from '../../src/runtime/log';
import { CapturedConsole, captureConsole } from '../support/console-capture';

let output: CapturedConsole;
let stdout: jest.SpyInstance;
let stderr: jest.SpyInstance;

beforeEach(() => {
  output = captureConsole();
  stdout = jest.mocked(process.stdout.write) as unknown as jest.SpyInstance;
  stderr = jest.mocked(process.stderr.write) as unknown as jest.SpyInstance;
});

afterEach(() => output.restore());

test('a line is one JSON object with level, event and an ISO timestamp, written to stdout, not through console', () => {
  const log = jest.spyOn(console, 'log');
  logEvent('info', 'something_happened', { count: 2, flag: true, absent: undefined });
  expect(output.lines).toHaveLength(1);
  expect(JSON.parse(output.lines[0])).toEqual({ level: 'info', event: 'something_happened', timestamp: expect.any(String), count: 2, flag: true });
  expect(new Date(JSON.parse(output.lines[0]).timestamp).toISOString()).toBe(JSON.parse(output.lines[0]).timestamp);
  expect(stdout).toHaveBeenCalledTimes(1);
  expect(log).not.toHaveBeenCalled(); // Lambda's console prefixes lines, which would break the JSON
});

test('errors go to stderr, warnings and info to stdout', () => {
  logEvent('error', 'e');
  logEvent('warn', 'w');
  expect(stderr).toHaveBeenCalledTimes(1);
  expect(stdout).toHaveBeenCalledTimes(1);
});

test('fields cannot overwrite level, event or timestamp', () => {
  logEvent('warn', 'real', { level: 'debug', event: 'fake', timestamp: 'then' });
  expect(output.logs()[0]).toMatchObject({ level: 'warn', event: 'real' });
  expect(output.logs()[0].timestamp).not.toBe('then');
});

test('inside an invocation every line carries its request id, function name, connection id, route and event type, across awaits', async () => {
  const context = { awsRequestId: 'req-1', functionName: 'fn' };
  await withInvocation(context, { connectionId: 'c1', routeKey: '$default', eventType: 'MESSAGE', apiId: 'api' }, async () => {
    logEvent('info', 'first');
    await new Promise((resolve) => setTimeout(resolve, 5));
    await Promise.all([1, 2].map(async (n) => logEvent('info', 'inner', { n })));
  });
  logEvent('info', 'outside');
  const ids = { requestId: 'req-1', functionName: 'fn', connectionId: 'c1', routeKey: '$default', eventType: 'MESSAGE' };
  expect(output.logs()).toEqual([
    expect.objectContaining({ event: 'first', ...ids }),
    expect.objectContaining({ event: 'inner', n: 1, ...ids }),
    expect.objectContaining({ event: 'inner', n: 2, ...ids }),
    { level: 'info', event: 'outside', timestamp: expect.any(String) },
  ]);
});

test('concurrent invocations keep their own fields', async () => {
  const run = (id: string, delay: number) => withInvocation({ awsRequestId: id }, {}, async () => {
    await new Promise((resolve) => setTimeout(resolve, delay));
    logEvent('info', 'done');
  });
  await Promise.all([run('slow', 20), run('fast', 1)]);
  expect(output.logs().map((r) => r.requestId)).toEqual(['fast', 'slow']);
});

test('the function name falls back to AWS_LAMBDA_FUNCTION_NAME; a field given explicitly wins over the invocation\'s', async () => {
  process.env.AWS_LAMBDA_FUNCTION_NAME = 'from-env';
  try {
    await withInvocation(undefined, { connectionId: 'sender' }, async () => logEvent('warn', 'post_failed', { connectionId: 'recipient' }));
  } finally {
    delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  }
  expect(output.logs()[0]).toMatchObject({ functionName: 'from-env', connectionId: 'recipient' });
});

test('errorName names what was thrown without its message', () => {
  expect(errorName(new TypeError('secret in message'))).toBe('TypeError');
  expect(errorName('a string')).toBe('string');
});
