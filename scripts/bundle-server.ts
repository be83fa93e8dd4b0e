// Last step of `npm run build`: the compiled server (dist/src/server.js and what it imports, our
// modules and the pure-JavaScript packages) as one ES module, dist/server.js, which `npm start`
// runs. Why: at a cold start Node spent about a third of the time finding, reading and compiling
// ~80 of our modules and several hundred package files; one file cut spawn-to-first-200 by
// ~350 ms (pinned to one core, fresh SQLite). Nothing changes at run time otherwise: paths are
// still found from the file's own place (src/spec.ts ROOT walks up to openapi/, createRequire
// resolves from dist/ into node_modules/), and the source map leads back to src/*.ts.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Left to node_modules at run time: native addons (which cannot be bundled), the packages the
 * server loads only when a setting asks for them (pg, ioredis, openai, sharp: loaded lazily, so
 * they stay out of a start that does not need them), and knex's drivers for databases we do not
 * use (knex requires them only for those dialects). A missing better-sqlite3 still stops the
 * start-up, as before: the bundle imports it at load.
 */
const EXTERNAL = [
  'better-sqlite3',
  'bcrypt',
  'sharp',
  'pg',
  'pg-native',
  'pg-query-stream',
  'ioredis',
  'openai',
  'mysql',
  'mysql2',
  'mariadb',
  'mariadb/*',
  'oracledb',
  'tedious',
  'sqlite3',
];

await build({
  absWorkingDir: ROOT,
  entryPoints: ['dist/src/server.js'],
  outfile: 'dist/server.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: EXTERNAL,
  // The CommonJS packages inside an ES module still call require and read __dirname/__filename.
  banner: {
    js: [
      "import { createRequire as __bundleRequire } from 'node:module';",
      "import { fileURLToPath as __bundlePath } from 'node:url';",
      'const require = __bundleRequire(import.meta.url);',
      'const __filename = __bundlePath(import.meta.url);',
      "const __dirname = __bundlePath(new URL('.', import.meta.url));",
    ].join(' '),
  },
  // Chained through dist/src/*.js.map to src/*.ts; the sources are on disk, so not copied in.
  sourcemap: 'linked',
  sourcesContent: false,
  logLevel: 'warning',
});
