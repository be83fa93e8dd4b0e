// A/B of cold start (spawn to first 200, both specs, fresh SQLite), alternating between builds.
// Usage: tsx bench/cold-ab.ts RUNS SERVER_A [SERVER_B ...]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, pinSelf, startNode } from './procs.ts';
import { coldStartEnv } from './seed.ts';

const [runsArg, ...servers] = process.argv.slice(2);
pinSelf();
process.on('unhandledRejection', (e) => {
  console.error(e);
  process.exit(1);
});
const times = new Map<string, number[]>(servers.map((s) => [s, []]));
const cpu = new Map<string, number[]>(servers.map((s) => [s, []]));
for (let i = 0; i < Number(runsArg); i++) {
  for (const server of servers) {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cold-ab-'));
    const port = await freePort();
    const env = { ...coldStartEnv(dataDir), PORT: String(port) };
    const t0 = performance.now();
    const proc = await startNode([path.resolve(server)], env, port, {
      probe: '/api/phone_verification?phone=13800138000&purpose=register',
      need200: true,
      timeoutMs: 120_000,
    });
    cpu.get(server)!.push(proc.cpuUs() / 1000);
    times.get(server)!.push(performance.now() - t0);
    await proc.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [s, xs] of times)
  console.log(
    `${s}: wall median ${median(xs).toFixed(0)} ms (${xs.map((x) => x.toFixed(0)).join(', ')}); CPU median ${median(cpu.get(s)!).toFixed(0)} ms (${cpu
      .get(s)!
      .map((x) => x.toFixed(0))
      .join(', ')})`,
  );
