// Bundles the authws CLI into one file (assets/local/authws.js), so installing the library adds no
// runtime dependencies. Run by the `bundle:local` task.
import { readFile } from 'node:fs/promises';
import { build } from 'esbuild';

/**
 * dynalite loads its actions with `require('./actions/' + action)`. esbuild bundles every file of
 * that folder but keys them with their extension, so the computed path must name it too.
 */
const dynaliteActions = {
  name: 'dynalite-actions',
  setup(builder) {
    builder.onLoad({ filter: /[\\/]dynalite[\\/]index\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      const patched = source
        .replace("require('./actions/' + action)", "require('./actions/' + action + '.js')")
        .replace("require('./validations/' + action)", "require('./validations/' + action + '.js')");
      if (patched === source) throw new Error('dynalite/index.js changed: update the dynalite-actions plugin of src/local/bundle-cli.mjs');
      return { contents: patched, loader: 'js' };
    });
  },
};

await build({
  entryPoints: ['src/local/cli.ts'],
  outfile: 'assets/local/authws.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  tsconfig: 'tsconfig.dev.json',
  // dynalite's optional on-disk store (`level`, a native addon) is never opened: tables live in memory.
  alias: { level: './src/local/level-unavailable.ts' },
  plugins: [dynaliteActions],
  logLevel: 'warning',
});
