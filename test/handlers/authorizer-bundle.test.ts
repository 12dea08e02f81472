import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Env } from '../../src/runtime/environment';
import { useDummyAwsEnvironment } from '../support/aws-environment';
import { SecretsServer } from '../support/secrets-server';
import { signToken, TEST_SECRET } from '../support/tokens';
import { authorizerEvent } from '../support/websocket-events';

/**
 * The asset Lambda runs: assets/handlers/authorizer.lambda/index.js, built by `npx projen bundle`.
 * It is copied away from node_modules and run by plain Node, as Lambda would: it must carry jose
 * (ESM-only) and the SDK inside one CommonJS file.
 */
const BUNDLE = path.join(__dirname, '../../assets/handlers/authorizer.lambda/index.js');

const INVOKE = `
  const { handler } = require(process.argv[1]);
  handler(JSON.parse(process.argv[2])).then(
    (result) => console.log(JSON.stringify({ result })),
    (err) => console.log(JSON.stringify({ error: err.message })),
  );
`;

let secrets: SecretsServer;
let lambdaDir: string;

beforeAll(async () => {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`npx projen bundle\` first`);
  lambdaDir = mkdtempSync(path.join(tmpdir(), 'authorizer-lambda-'));
  copyFileSync(BUNDLE, path.join(lambdaDir, 'index.js'));
  useDummyAwsEnvironment();
  secrets = await SecretsServer.start();
});

afterAll(async () => {
  await secrets.stop();
  rmSync(lambdaDir, { recursive: true, force: true });
});

async function invokeBundle(authorization: string): Promise<{ result?: { principalId: string }; error?: string }> {
  const event = authorizerEvent({ headers: { Authorization: authorization } });
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', INVOKE, path.join(lambdaDir, 'index.js'), JSON.stringify(event)], {
    cwd: lambdaDir,
    env: {
      PATH: process.env.PATH,
      AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY,
      AWS_REGION: 'us-east-1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
      [Env.AUTH_SECRET_ARN]: secrets.put('bundle', TEST_SECRET),
    },
  });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

test('the bundled authorizer loads under plain Node, away from node_modules, and verifies tokens', async () => {
  expect((await invokeBundle(`Bearer ${await signToken({ sub: 'user-a' })}`)).result?.principalId).toBe('user-a');
  expect(await invokeBundle(`Bearer ${await signToken({ sub: 'user-a' }, { secret: 'wrong' })}`)).toEqual({ error: 'Unauthorized' });
});
