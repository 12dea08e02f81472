/**
 * Runs an integration test app for integ-runner, then relabels its cloud assembly with the newest
 * schema version integ-runner can read.
 *
 * Why: the newest integ-runner on the registry this project installs from (2.197.x) bundles cloud
 * assembly schema 53 and refuses the schema 55 assemblies aws-cdk-lib 2.276 writes ("Cloud assembly
 * schema version mismatch"), before it compares a single template. The snapshot check reads only
 * the CloudFormation templates and the asset manifests' ids, which are the same under either
 * label. Drop this wrapper (the `--app` flag of the `integ` tasks) once an integ-runner that
 * reads schema 55 is installable.
 *
 * Usage (from integ-runner): node -r ts-node/register/transpile-only support/integ-app.ts {filePath}
 */
import * as fs from 'fs';
import * as path from 'path';

/** The newest cloud assembly schema major integ-runner 2.197.x reads. */
const READABLE_SCHEMA = '53.0.0';

const app = process.argv[2];
if (!app) throw new Error('usage: integ-app.ts <integ.*.ts>');
const outdir = process.env.CDK_OUTDIR;

// An App synthesizes on 'beforeExit' when CDK_OUTDIR is set; 'exit' comes after it.
process.on('exit', () => {
  if (!outdir || !fs.existsSync(outdir)) return;
  for (const name of fs.readdirSync(outdir)) {
    if (!name.endsWith('.json')) continue;
    const file = path.join(outdir, name);
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (typeof json.version !== 'string' || !/^\d+\.\d+\.\d+$/.test(json.version)) continue;
    if (Number(json.version.split('.')[0]) <= Number(READABLE_SCHEMA.split('.')[0])) continue;
    json.version = READABLE_SCHEMA;
    delete json.minimumCliVersion;
    fs.writeFileSync(file, JSON.stringify(json, undefined, 2));
  }
});

// The app is TypeScript, loaded through ts-node's require hook, so it is required rather than imported.
// eslint-disable-next-line @typescript-eslint/no-require-imports
require(path.resolve(app));
