// `npm run bench`: routing cost, request throughput and start-up time. Every figure is printed
// next to a baseline measured in the same run, as a ratio; nothing is asserted. Only 127.0.0.1
// is used. See bench/README.md.
import fs from 'node:fs';
import os from 'node:os';
import { benchRouting, printRouting } from './routing.ts';
import { benchThroughput, buildApp, printThroughput } from './throughput.ts';
import { benchStartup, printStartup } from './startup.ts';

// A safety net, not the budget: a normal run takes well under a minute on 2 cores. Child
// processes are killed by their own steps; this only guards against a step that hangs.
const WATCHDOG_MS = 90_000;
setTimeout(() => {
  console.error(`bench: still running after ${WATCHDOG_MS / 1000} s, giving up`);
  process.exit(2);
}, WATCHDOG_MS).unref();

const started = performance.now();
console.log(`Benchmark: node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim()}). Ratios compare with a baseline from this same run.`);

// The app is built first so that its createApp time is a first call in this process (YAML parse,
// openapi-backend and Ajv not yet warmed up by the routing section), as in a fresh server.
const bench = await buildApp();
try {
  printRouting(await benchRouting());
  printThroughput(await benchThroughput(bench));
  printStartup(await benchStartup(bench));
} finally {
  await bench.app.close();
  await bench.db.destroy();
  fs.rmSync(bench.dataDir, { recursive: true, force: true });
}

console.log(`\nDone in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
// The app's in-memory rate limiters and pino keep timers and handles that are not ours to close.
process.exit(0);
