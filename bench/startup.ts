// 3. Start-up to first 200: spawn the real server as `npm start` runs it (`node dist/src/server.js`,
// built by `npm run build` first) on a fresh data folder, read its URL from
// its log, and poll until a request succeeds. Baseline: a one-line node:http server spawned the
// same way. Also: how long `createApp` takes in-process.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { createApp } from '../src/app.ts';
import { createLogger } from '../src/logger.ts';
import { ROOT } from '../src/spec.ts';
import { median, num, printTable, ratio } from './report.ts';
import type { BenchApp } from './throughput.ts';

const RUNS = 3;
const TIMEOUT_MS = 15_000;
const PROBE = '/api/phone_verification?phone=13800138000&purpose=register';

const BARE_SCRIPT =
  "require('http').createServer((q,s)=>s.end('{}')).listen(0,'127.0.0.1',function(){console.log(JSON.stringify({url:'http://127.0.0.1:'+this.address().port}))})";

interface Run {
  /** Spawn to first 200, ms. */
  firstOkMs: number;
  /** When each JSON log line reached us, ms after spawn, by its `msg`. */
  lines: { msg: string; atMs: number }[];
}

function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    // A fresh connection each time (agent: false) that the server may close, so it can shut down
    // promptly afterwards.
    http
      .get(url, { agent: false, headers: { Connection: 'close' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

async function spawnUntilOk(args: string[], env: NodeJS.ProcessEnv, probe: string): Promise<Run> {
  const start = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Run['lines'] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL logged within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
      child.once('exit', (code) => reject(new Error(`exited (${code}) before logging its URL: ${stderr.trim()}`)));
      readline.createInterface({ input: child.stdout }).on('line', (line) => {
        const atMs = performance.now() - start;
        let entry: { msg?: string; url?: string };
        try {
          entry = JSON.parse(line);
        } catch {
          return;
        }
        lines.push({ msg: entry.msg ?? '', atMs });
        if (entry.url) {
          clearTimeout(timer);
          resolve(entry.url);
        }
      });
    });
    const deadline = start + TIMEOUT_MS;
    let last = 'no answer';
    while (performance.now() < deadline) {
      try {
        const status = await get(url + probe);
        if (status === 200) return { firstOkMs: performance.now() - start, lines };
        last = `status ${status}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`no 200 from ${url + probe} within ${TIMEOUT_MS} ms (last: ${last})`);
  } finally {
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(killer);
  }
}

export interface StartupResult {
  bare: Run[];
  server: Run[];
  createAppFirstMs: number;
  createAppAgainMs: number;
}

export async function benchStartup(bench: BenchApp): Promise<StartupResult> {
  const bare: Run[] = [];
  const server: Run[] = [];
  for (let i = 0; i < RUNS; i++) bare.push(await spawnUntilOk(['-e', BARE_SCRIPT], process.env, '/'));
  for (let i = 0; i < RUNS; i++) {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-start-'));
    try {
      // A fresh SQLite database each time (so migrations run, as on a first deployment) and no
      // inherited DATABASE_URL / REDIS_URL that could point elsewhere.
      const env = { ...process.env, PORT: '0', HOST: '127.0.0.1', NODE_ENV: 'development', DATA_DIR: dataDir, LOG_LEVEL: 'info', DATABASE_URL: '', REDIS_URL: '' };
      server.push(await spawnUntilOk(['dist/src/server.js'], env, PROBE));
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }

  // createApp again in this process: modules loaded and JIT warm, so this is the binding work
  // itself (spec clone, openapi-backend init, validator compilation).
  const start = performance.now();
  const again = await createApp({ config: bench.config, db: bench.db, logger: createLogger('silent') });
  const createAppAgainMs = performance.now() - start;
  await again.close();

  return { bare, server, createAppFirstMs: bench.createAppMs, createAppAgainMs };
}

/** Median time at which a log line whose message starts with one of `prefixes` arrived. */
function phase(runs: Run[], prefixes: string[]): number {
  return median(runs.map((r) => r.lines.find((l) => prefixes.some((p) => l.msg.startsWith(p)))?.atMs ?? NaN));
}

export function printStartup(r: StartupResult): void {
  console.log(`\n3. Start-up: spawn to first 200, median of ${RUNS}; baseline = a one-line node:http server spawned the same way`);
  const bareMs = median(r.bare.map((x) => x.firstOkMs));
  const serverMs = median(r.server.map((x) => x.firstOkMs));
  const runs = (xs: Run[]) => xs.map((x) => num(x.firstOkMs)).join(', ');
  printTable([
    ['process', 'spawn → first 200 ms', 'runs', 'vs bare'],
    ['node -e (bare node:http)', num(bareMs), runs(r.bare), ratio(1)],
    ['node dist/src/server.js (npm start)', num(serverMs), runs(r.server), ratio(serverMs / bareMs)],
  ]);
  const migrated = phase(r.server, ['migrations applied', 'database up to date']);
  const serving = phase(r.server, ['serving']);
  console.log(
    `  server phases (median, ms after spawn): migrations logged ${num(migrated)} (node + tsx + imports + migrate), ` +
      `URL logged ${num(serving)} (+${num(serving - migrated)}: createApp + listen), first 200 ${num(serverMs)} (+${num(serverMs - serving)})`,
  );
  console.log(`  createApp in-process (both specs bound, validators compiled): first call ${num(r.createAppFirstMs)} ms (cold: parses the YAML, warms Ajv), again ${num(r.createAppAgainMs)} ms`);
}
