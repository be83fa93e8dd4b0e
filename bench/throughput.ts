// 2. Full request throughput: the real app in this process, a bare node:http server beside it as
// the baseline, both driven by the same load generator in a child process (bench/load.ts).
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import { createApp, type App } from '../src/app.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { createDb, migrate } from '../src/db.ts';
import { createLogger } from '../src/logger.ts';
import type { LoadJob, LoadResult } from './load.ts';
import { num, percentile, printTable, ratio } from './report.ts';

const REQUESTS = 3000; // per case, measured
const ROUNDS = 3; // the cases take turns, REQUESTS / ROUNDS at a time (see benchThroughput)
const WARMUP = 300; // per case, before any measurement
const CONCURRENCY = 20;

interface Case {
  name: string;
  path: string;
  headers?: Record<string, string>;
  /** Status the case is meant to exercise; a different one is flagged in the output. */
  expect: number;
  bare?: true;
}

const CASES: Case[] = [
  { name: 'bare node:http, tiny JSON', path: '/', expect: 200, bare: true },
  { name: 'GET /api/phone_verification (validation 400)', path: '/api/phone_verification?phone=abc&purpose=register', expect: 400 },
  {
    name: 'GET /api/user/self, bad token (DB lookup, 401)',
    path: '/api/user/self',
    headers: { Authorization: 'Bearer not-a-real-token-0123456789abcdef', UserID: '1' },
    expect: 401,
  },
  { name: 'GET /api/v1/nope (404)', path: '/api/v1/nope', expect: 404 },
];

export interface ThroughputRow {
  name: string;
  statuses: Record<string, number>;
  expect: number;
  rps: number;
  p50: number;
  p99: number;
  /** Server-process CPU per request (user + system), in µs. */
  cpuUs: number;
}

/** The real app on a fresh SQLite database, as the tests build it. */
export interface BenchApp {
  config: Config;
  db: Knex;
  app: App;
  dataDir: string;
  /** Wall time of the first `createApp` call in this process. */
  createAppMs: number;
}

export async function buildApp(): Promise<BenchApp> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-app-'));
  // The rate limits are set to their maximums (config.ts refuses more), far above what the run sends.
  const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir, LOG_LEVEL: 'silent', GLOBAL_RATE_LIMIT: '10000000', SIGNIN_RATE_LIMIT: '1000000' });
  const db = createDb({ dataDir });
  await migrate(db);
  const start = performance.now();
  const app = await createApp({ config, db, logger: createLogger(config.logLevel) });
  return { config, db, app, dataDir, createAppMs: performance.now() - start };
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Sends one job to the load generator and waits for its answer. */
function drive(child: ChildProcess, job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`load generator exited (${code})`));
    child.once('exit', onExit);
    child.once('message', (result) => {
      child.off('exit', onExit);
      resolve(result as LoadResult);
    });
    child.send(job);
  });
}

export async function benchThroughput(bench: BenchApp): Promise<ThroughputRow[]> {
  const bare = http.createServer((_req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end('{"ok":true}');
  });
  const appServer = http.createServer(bench.app.app);
  const [barePort, appPort] = [await listen(bare), await listen(appServer)];

  // fork() reuses this process's execArgv, so the child loads bench/load.ts through tsx too.
  const child = fork(fileURLToPath(new URL('./load.ts', import.meta.url)), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const jobs = CASES.map((c) => ({ port: c.bare ? barePort : appPort, path: c.path, headers: c.headers, concurrency: CONCURRENCY }));
  const totals = CASES.map(() => ({ elapsedMs: 0, cpuUs: 0, latenciesMs: [] as number[], statuses: {} as Record<string, number> }));
  try {
    for (const job of jobs) await drive(child, { ...job, requests: WARMUP });
    // Round-robin rather than one case after another, so a slow patch of a shared machine weighs
    // on every case alike instead of skewing one case against the baseline.
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, job] of jobs.entries()) {
        const cpu = process.cpuUsage();
        const r = await drive(child, { ...job, requests: REQUESTS / ROUNDS });
        const used = process.cpuUsage(cpu);
        const t = totals[i];
        t.elapsedMs += r.elapsedMs;
        t.cpuUs += used.user + used.system;
        t.latenciesMs.push(...r.latenciesMs);
        for (const [status, n] of Object.entries(r.statuses)) t.statuses[status] = (t.statuses[status] ?? 0) + n;
      }
    }
  } finally {
    child.kill();
    await Promise.all([close(bare), close(appServer)]);
  }
  return CASES.map((c, i) => {
    const t = totals[i];
    const sorted = t.latenciesMs.sort((a, b) => a - b);
    return {
      name: c.name,
      statuses: t.statuses,
      expect: c.expect,
      rps: (REQUESTS * 1000) / t.elapsedMs,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      cpuUs: t.cpuUs / REQUESTS,
    };
  });
}

export function printThroughput(rows: ThroughputRow[]): void {
  console.log(`\n2. Throughput: ${REQUESTS} requests per case in ${ROUNDS} interleaved rounds, ${CONCURRENCY} concurrent, keep-alive; baseline = bare node:http in this process`);
  const base = rows[0];
  printTable([
    ['case', 'status', 'req/s', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'req/s vs bare', 'req per CPU-s vs bare'],
    ...rows.map((r) => {
      const statuses = Object.entries(r.statuses)
        .map(([s, n]) => (n === REQUESTS ? s : `${s}×${n}`))
        .join(' ');
      const flag = r.statuses[String(r.expect)] === REQUESTS ? '' : ` (expected ${r.expect})`;
      return [r.name, statuses + flag, num(r.rps), num(r.p50), num(r.p99), num(r.cpuUs), ratio(r.rps / base.rps), ratio(base.cpuUs / r.cpuUs)];
    }),
  ]);
  // The client is one process on the same small machine: for cheap cases req/s is bounded by the
  // client, and the server's CPU per request is the fairer comparison.
  console.log('  req/s is capped by the load generator for cheap cases; "req per CPU-s" compares the server process\'s CPU per request.');
}
