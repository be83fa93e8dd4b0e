// `npm run bench`: what users pay, against peers measured in the same run. See bench/README.md.
//   --smoke        every case very briefly (CI: checks the bench works; the figures mean nothing)
//   --db=sqlite,pg which databases (default both; pg is skipped when 127.0.0.1:5432 is down)
//   --profile=DIR  also write a CPU profile of each project server (node --cpu-prof) to DIR, the stream server's too
//   --heap=DIR     heap snapshots of the stream server holding its streams (idle, all open) to DIR
//   --out=FILE     JSON result (default bench/results/latest.json; the table goes beside it, .md)
//   --only=self,me scenarios to run (keys below; default all)
//   --skip=peers,writes,streams,cold  parts to leave out (for a profile of one scenario); lag or hold
//                  leaves out one phase of the streams
//   --server=FILE  the server entry to measure (default dist/server.js, the bundle npm start runs; e.g. another checkout's build)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { isDeepStrictEqual } from 'node:util';
import autocannon from 'autocannon';
import type { Knex } from 'knex';
import pg from 'pg';
import { createDb, migrate } from '../src/db.ts';
import { ROOT } from '../src/spec.ts';
import { freePort, HAS_TASKSET, pinSelf, running, startNode, type Proc } from './procs.ts';
import {
  bearer,
  call,
  coldStartEnv,
  JWT_SECRET,
  oneapiAuth,
  ONEAPI_SECRET,
  redeemCode,
  seedOverHttp,
  seedRows,
  type Seed,
} from './seed.ts';
import { benchStreams, counts, startCounting, type StreamResult } from './streams.ts';
import { median, num } from './report.ts';

const args = new Map<string, string | undefined>(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v];
  }),
);
const SMOKE = args.has('smoke') || process.env.BENCH_SMOKE === '1';
const DBS = (args.get('db') ?? 'sqlite,pg').split(',');
const PROFILE_DIR = args.get('profile');
const HEAP_DIR = args.get('heap');
const ONLY = args.get('only')?.split(',');
const SKIP = new Set(args.get('skip')?.split(',') ?? []);
const SERVER = path.resolve(ROOT, args.get('server') ?? 'dist/server.js');
/** The checkout a server entry belongs to (dist/server.js or dist/src/server.js): the folder above it holding openapi/. */
function appRoot(entry: string): string {
  for (let dir = path.dirname(entry); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'openapi', 'aideer.yaml'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no openapi/aideer.yaml above ${entry}`);
  }
}
const OUT = path.resolve(args.get('out') ?? path.join(ROOT, 'bench', 'results', SMOKE ? 'smoke.json' : 'latest.json'));

const PLAN = SMOKE
  ? {
      durationS: 0.4,
      warmupS: 0.2,
      rounds: 1,
      connections: 10,
      tasks: 20,
      delayMs: 50,
      redeemCodes: 10_000,
      coldRuns: 1,
    }
  : {
      durationS: 5,
      warmupS: 1,
      rounds: 2,
      connections: 50,
      tasks: 1000,
      delayMs: 500,
      redeemCodes: 40_000,
      coldRuns: 3,
    };

// A safety net, not the budget: a full run takes about 10 minutes on 2 cores, a smoke run under one.
const WATCHDOG_MS = SMOKE ? 300_000 : 1_500_000;
setTimeout(() => {
  console.error(`bench: still running after ${WATCHDOG_MS / 1000} s, giving up`);
  process.exit(2);
}, WATCHDOG_MS).unref();
// However the bench ends (done, a crash, the watchdog, Ctrl-C), no server it started outlives it.
const tempDirs = new Set<string>();
process.on('exit', () => {
  for (const c of running) c.child.kill('SIGKILL');
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

type Target = 'project' | 'bare' | 'express' | 'express-oav' | 'fastify';
const PEERS: Target[] = ['express', 'express-oav', 'fastify'];

interface Scenario {
  key: string;
  name: string;
  method?: 'GET' | 'POST';
  path: (seed: Seed) => string;
  headers: (seed: Seed) => Record<string, string>;
  body?: (seed: Seed) => unknown;
  /** A new body per request (redeem: one code each). */
  bodyPerRequest?: (seed: Seed) => unknown;
  expect: number;
  /** The peers implement the reads and the validation failure. */
  peers: boolean;
}

const ALL_SCENARIOS: Scenario[] = [
  {
    key: 'self',
    name: 'One-API GET /api/user/self',
    path: () => '/api/user/self',
    headers: oneapiAuth,
    expect: 200,
    peers: true,
  },
  {
    key: 'me',
    name: 'AIDeer GET /api/v1/users/me',
    path: () => '/api/v1/users/me',
    headers: (s) => bearer(s.reader.jwt),
    expect: 200,
    peers: true,
  },
  {
    key: 'chats',
    name: 'AIDeer GET /api/v1/chats?limit=10',
    path: () => '/api/v1/chats?limit=10',
    headers: (s) => bearer(s.reader.jwt),
    expect: 200,
    peers: true,
  },
  {
    key: 'invalid',
    name: 'One-API validation failure (phone=abc)',
    path: () => '/api/phone_verification?phone=abc&purpose=register',
    headers: () => ({}),
    expect: 400,
    peers: true,
  },
  {
    key: 'topicMessage',
    name: 'One-API POST /api/topics/{id}/messages (echo)',
    method: 'POST',
    path: (s) => `/api/topics/${s.topicId}/messages`,
    headers: oneapiAuth,
    body: () => ({ content: 'Hello from the bench' }),
    expect: 200,
    peers: false,
  },
  {
    key: 'createChat',
    name: 'AIDeer POST /api/v1/chats',
    method: 'POST',
    path: () => '/api/v1/chats',
    headers: (s) => bearer(s.writer.jwt),
    body: (s) => ({
      preset_id: s.presetId,
      title: 'Bench chat',
      messages: [{ role: 'user', type: 'text', content: 'Hello', visibility: true }],
    }),
    expect: 200,
    peers: false,
  },
  {
    key: 'redeem',
    name: 'AIDeer POST /api/v1/users/me/credits (redeem)',
    method: 'POST',
    path: () => '/api/v1/users/me/credits',
    headers: (s) => bearer(s.writer.jwt),
    // The codes of this database's seed, each used once, whichever case or variant redeems it.
    bodyPerRequest: (s) => ({ redeem_code: redeemCode(s.codesUsed++) }),
    expect: 200,
    peers: false,
  },
];

const SCENARIOS = ALL_SCENARIOS.filter((sc) => !ONLY || ONLY.includes(sc.key)).map((sc) =>
  SKIP.has('peers') ? { ...sc, peers: false } : sc,
);

interface Measure {
  requests: number;
  durationS: number;
  cpuUs: number;
  latencies: number[];
  statuses: Record<string, number>;
}

interface CaseRow {
  db: string;
  scenario: string;
  target: Target;
  rps: number;
  p50: number;
  p99: number;
  cpuUsPerReq: number;
  /** Share of one core the server used while measured. */
  serverCore: number;
  statuses: Record<string, number>;
  expect: number;
}

interface WritePathRow {
  scenario: string;
  variant: string;
  rps: number;
  p99: number;
  serverCore: number;
  queriesPerReq: number;
  transactionsPerReq: number;
  statuses: Record<string, number>;
}

async function load(port: number, sc: Scenario, seed: Seed, durationS: number): Promise<autocannon.Result> {
  const headers = {
    ...sc.headers(seed),
    ...(sc.body || sc.bodyPerRequest ? { 'content-type': 'application/json' } : {}),
  };
  const body = sc.body ? JSON.stringify(sc.body(seed)) : undefined;
  const perRequest = sc.bodyPerRequest;
  return autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: PLAN.connections,
    duration: durationS,
    timeout: 10,
    requests: [
      {
        method: sc.method ?? 'GET',
        path: sc.path(seed),
        headers,
        body,
        ...(perRequest
          ? { setupRequest: (req: autocannon.Request) => ({ ...req, body: JSON.stringify(perRequest(seed)) }) }
          : {}),
      },
    ],
  });
}

async function measure(proc: Proc, sc: Scenario, seed: Seed): Promise<Measure> {
  const cpu0 = proc.cpuUs();
  const r = await load(proc.port, sc, seed, PLAN.durationS);
  const cpuUs = proc.cpuUs() - cpu0;
  const statuses: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) statuses[code] = s.count;
  if (r.errors) statuses.error = r.errors;
  const requests = Object.values(statuses).reduce((a, b) => a + b, 0);
  // autocannon's histogram gives percentiles per run; runs are merged by their medians below.
  return { requests, durationS: r.duration, cpuUs, latencies: [r.latency.p50, r.latency.p99], statuses };
}

async function withDatabase<T>(
  kind: string,
  fn: (db: Knex, env: NodeJS.ProcessEnv, pgUrl?: string) => Promise<T>,
): Promise<T> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-${kind}-`));
  tempDirs.add(dataDir);
  let pgUrl: string | undefined;
  let admin: pg.Client | undefined;
  const name = `bench_${process.pid}_${Date.now().toString(36)}`;
  if (kind === 'pg') {
    admin = new pg.Client('postgres://postgres@127.0.0.1:5432/postgres');
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    pgUrl = `postgres://postgres@127.0.0.1:5432/${name}`;
  }
  const db = createDb({ databaseUrl: pgUrl, dataDir });
  try {
    await migrate(db);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      DATABASE_URL: pgUrl ?? '',
      REDIS_URL: '',
      JWT_SECRET,
      ONEAPI_SECRET,
      LOG_LEVEL: 'warn',
      // Production refuses the log SMS sender unless told; the bench asks for no codes.
      SMS_LOG_IN_PRODUCTION: 'true',
      GLOBAL_RATE_LIMIT: '10000000',
      SIGNIN_RATE_LIMIT: '1000000',
      LLM_ECHO_DELAY_MS: '0',
      FEED_SAMPLE: 'false',
      BENCH_APP_ROOT: appRoot(SERVER),
    };
    return await fn(db, env, pgUrl);
  } finally {
    await db.destroy();
    if (admin) {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function started(args: string[], env: NodeJS.ProcessEnv, probe: string): Promise<Proc> {
  const port = await freePort();
  return startNode(args, { ...env, PORT: String(port) }, port, { probe });
}

/**
 * A ratio against a peer means something only while the peer does the project's work: each peer
 * must answer every read it serves (the 200 scenarios) with the project's status and body.
 */
async function samePeerAnswers(kind: string, procs: Map<Target, Proc>, seed: Seed): Promise<void> {
  for (const sc of SCENARIOS.filter((x) => x.peers && x.expect === 200)) {
    const ask = (target: Target) =>
      call(procs.get(target)!.port, sc.method ?? 'GET', sc.path(seed), sc.headers(seed), sc.body?.(seed));
    const want = await ask('project');
    for (const peer of PEERS) {
      const got = await ask(peer);
      if (!isDeepStrictEqual(got, want))
        throw new Error(
          `bench: ${kind} ${sc.key}: ${peer} answers ${JSON.stringify(got).slice(0, 400)}, the project ${JSON.stringify(want).slice(0, 400)}`,
        );
    }
  }
}

async function stop(proc: Proc) {
  await proc.stop();
}

interface DatabaseResult {
  rows: CaseRow[];
  writePath: WritePathRow[];
  streams?: StreamResult;
}

/**
 * The write cases again, on a server that counts its statements (bench/counting-server.ts): SQL
 * statements and transactions per request; on Postgres also with a larger pool and with
 * synchronous_commit off, to tell a pool limit from a commit (WAL flush) limit.
 */
async function analyseWrites(env: NodeJS.ProcessEnv, seed: Seed, pgUrl?: string): Promise<WritePathRow[]> {
  const variants = pgUrl
    ? [
        { variant: 'pool 10 (default)', pool: 10, syncOff: false },
        { variant: 'pool 30', pool: 30, syncOff: false },
        { variant: 'pool 10, synchronous_commit off', pool: 10, syncOff: true },
      ]
    : [{ variant: 'SQLite (one connection)', pool: 1, syncOff: false }];
  const rows: WritePathRow[] = [];
  const dbName = pgUrl ? new URL(pgUrl).pathname.slice(1) : '';
  const alter = async (value: string) => {
    const admin = new pg.Client(pgUrl);
    await admin.connect();
    await admin.query(`ALTER DATABASE ${dbName} SET synchronous_commit = ${value}`);
    await admin.end();
  };
  for (const v of variants) {
    if (v.syncOff) await alter('off');
    const port = await freePort();
    const server = await startCounting({ ...env, PORT: String(port), BENCH_POOL_MAX: String(v.pool) }, port);
    try {
      for (const sc of SCENARIOS.filter((x) => x.method === 'POST')) {
        const c0 = await counts(server);
        const cpu0 = server.cpuUs();
        const r = await load(port, sc, seed, PLAN.durationS);
        const cpu = server.cpuUs() - cpu0;
        const c1 = await counts(server);
        const statuses = Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([k, x]) => [k, x.count]));
        const n = Object.values(statuses).reduce((a, b) => a + b, 0);
        rows.push({
          scenario: sc.key,
          variant: v.variant,
          rps: n / r.duration,
          p99: r.latency.p99,
          serverCore: cpu / 1e6 / r.duration,
          queriesPerReq: (c1.queries - c0.queries) / n,
          transactionsPerReq: (c1.transactions - c0.transactions) / n,
          statuses,
        });
        process.stdout.write('.');
      }
    } finally {
      await stop(server);
      if (v.syncOff) await alter('DEFAULT');
    }
  }
  process.stdout.write('\n');
  return rows;
}

async function benchDatabase(kind: string): Promise<DatabaseResult> {
  return withDatabase(kind, async (db, env, pgUrl) => {
    const seed = await seedRows(db, { redeemCodes: PLAN.redeemCodes, streamers: 10 });
    const profile = PROFILE_DIR
      ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(PROFILE_DIR)}`, `--cpu-prof-name=project-${kind}.cpuprofile`]
      : [];
    const project = await started([...profile, SERVER], env, '/api/v1/nope');
    await seedOverHttp(project.port, seed, 10);
    const bareUser = JSON.stringify({
      success: true,
      message: '',
      data: {
        id: seed.oneapi.userId,
        username: 'user_0001',
        display_name: 'bench',
        role: 1,
        status: 1,
        group: 'default',
        school: 'Bench University',
        college: 'Computing',
        phone: '13800000001',
        access_token: seed.oneapi.token,
      },
    });
    const peerEnv = { ...env, JWT_SECRET, BARE_TOKEN: seed.oneapi.token, BARE_USER: bareUser };
    const procs = new Map<Target, Proc>([['project', project]]);
    try {
      for (const peer of ['bare', ...(SCENARIOS.some((sc) => sc.peers) ? PEERS : [])] as Target[])
        procs.set(peer, await started(['--import', 'tsx', 'bench/peers.ts'], { ...peerEnv, PEER: peer }, '/'));
      await samePeerAnswers(kind, procs, seed);
      // Bare once per scenario slot, so every scenario has a bare figure from the same moment.
      const cases: { sc: Scenario; target: Target }[] = [];
      for (const sc of SCENARIOS)
        for (const target of ['bare', 'project', ...(sc.peers ? PEERS : [])] as Target[]) cases.push({ sc, target });
      // Bare answers only One-API's user/self (BARE_TOKEN), whichever scenarios --only keeps.
      const bareScenario = ALL_SCENARIOS[0];
      for (const { sc, target } of cases)
        await load(procs.get(target)!.port, target === 'bare' ? bareScenario : sc, seed, PLAN.warmupS);
      const results = new Map<string, Measure[]>();
      // Round-robin, so a busy moment on a shared machine weighs on every case alike.
      for (let round = 0; round < PLAN.rounds; round++) {
        for (const { sc, target } of cases) {
          const m = await measure(procs.get(target)!, target === 'bare' ? bareScenario : sc, seed);
          const key = `${sc.key}|${target}`;
          results.set(key, [...(results.get(key) ?? []), m]);
          process.stdout.write('.');
        }
      }
      process.stdout.write('\n');
      const rows = cases.map(({ sc, target }): CaseRow => {
        const ms = results.get(`${sc.key}|${target}`)!;
        const requests = ms.reduce((a, m) => a + m.requests, 0);
        const durationS = ms.reduce((a, m) => a + m.durationS, 0);
        const cpuUs = ms.reduce((a, m) => a + m.cpuUs, 0);
        const statuses: Record<string, number> = {};
        for (const m of ms) for (const [s, n] of Object.entries(m.statuses)) statuses[s] = (statuses[s] ?? 0) + n;
        return {
          db: kind,
          scenario: sc.key,
          target,
          rps: requests / durationS,
          p50: median(ms.map((m) => m.latencies[0])),
          p99: median(ms.map((m) => m.latencies[1])),
          cpuUsPerReq: cpuUs / requests,
          serverCore: cpuUs / 1e6 / durationS,
          statuses,
          expect: target === 'bare' ? 200 : sc.expect,
        };
      });
      for (const [target, p] of procs)
        if (rows.some((r) => r.target === target && Object.keys(r.statuses).some((s) => s >= '500')))
          console.error(`bench: ${target} failed requests; its stderr ends:\n${p.stderr()}`);
      await stop(project);
      procs.delete('project');
      console.log(`bench: ${kind} write path`);
      const writePath = SKIP.has('writes') ? [] : await analyseWrites(env, seed, pgUrl);
      console.log(`bench: ${kind} streams`);
      const streams = SKIP.has('streams')
        ? undefined
        : await benchStreams({
            env,
            seed,
            tasks: PLAN.tasks,
            delayMs: PLAN.delayMs,
            presetId: seed.presetId!,
            profileArgs: PROFILE_DIR
              ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(PROFILE_DIR, `streams-${kind}`)}`]
              : undefined,
            phases: { lag: !SKIP.has('lag'), hold: !SKIP.has('hold') },
            heapDir: HEAP_DIR && path.resolve(HEAP_DIR),
          });
      return { rows, writePath, streams };
    } finally {
      for (const p of procs.values()) await stop(p);
    }
  });
}

/** Spawn to first 200 on a fresh SQLite database (migrations run), both specs; bare node:http alike. */
async function benchColdStart(): Promise<{ serverMs: number[]; bareMs: number[] }> {
  const serverMs: number[] = [];
  const bareMs: number[] = [];
  const bareScript = "require('http').createServer((q,s)=>s.end('{}')).listen(Number(process.env.PORT),'127.0.0.1')";
  const until200 = async (args: string[], env: NodeJS.ProcessEnv, probe: string) => {
    const port = await freePort();
    const t0 = performance.now();
    const proc = await startNode(args, { ...env, PORT: String(port) }, port, { probe, need200: true });
    try {
      return performance.now() - t0;
    } finally {
      await stop(proc);
    }
  };
  for (let i = 0; i < PLAN.coldRuns; i++) {
    bareMs.push(await until200(['-e', bareScript], { PATH: process.env.PATH }, '/'));
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-cold-'));
    tempDirs.add(dataDir);
    try {
      serverMs.push(
        await until200([SERVER], coldStartEnv(dataDir), '/api/phone_verification?phone=13800138000&purpose=register'),
      );
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }
  return { serverMs, bareMs };
}

function pgUp(): boolean {
  try {
    execFileSync('pg_isready', ['-q', '-h', '127.0.0.1', '-p', '5432']);
    return true;
  } catch {
    return false;
  }
}

// ── run ──

const t0 = performance.now();
pinSelf();
const machine = {
  nproc: os.cpus().length,
  cpu: os.cpus()[0]?.model.trim(),
  node: process.version,
  taskset: HAS_TASKSET,
  loadavg: os.loadavg().map((x) => Number(x.toFixed(2))),
  date: new Date().toISOString(),
  smoke: SMOKE,
  plan: PLAN,
};
console.log(
  `bench${SMOKE ? ' (smoke)' : ''}: node ${machine.node}, ${machine.nproc} CPUs (${machine.cpu}), load ${machine.loadavg.join(' ')}; server core ${HAS_TASKSET ? 0 : '(unpinned)'}, client core ${HAS_TASKSET ? 1 : '(unpinned)'}`,
);

const byDb: Record<string, DatabaseResult> = {};
for (const kind of DBS) {
  if (kind === 'pg' && !pgUp()) {
    console.log('bench: Postgres is not reachable on 127.0.0.1:5432, skipping it');
    continue;
  }
  console.log(`bench: ${kind}`);
  byDb[kind] = await benchDatabase(kind);
}
console.log('bench: cold start');
const cold = SKIP.has('cold') ? { serverMs: [], bareMs: [] } : await benchColdStart();

const result = {
  machine,
  databases: byDb,
  coldStart: { serverMedianMs: median(cold.serverMs), bareMedianMs: median(cold.bareMs), ...cold },
  seconds: (performance.now() - t0) / 1000,
};
fs.mkdirSync(path.dirname(OUT), { recursive: true });
fs.writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
const table = markdown(result);
fs.writeFileSync(OUT.replace(/\.json$/, '.md'), table);
console.log('\n' + table);
console.log(`bench: wrote ${path.relative(process.cwd(), OUT)} and its .md in ${result.seconds.toFixed(0)} s`);

// Fails (for the CI smoke check) when a case did not get the status it is meant to exercise.
const wrong = Object.values(byDb).flatMap((d) =>
  d.rows.filter((r) => !r.statuses[String(r.expect)] || Object.keys(r.statuses).length !== 1),
);
const streamsBad = Object.values(byDb).flatMap((d) =>
  d.streams && (d.streams.finished !== d.streams.tasks || d.streams.closed !== d.streams.tasks) ? [d.streams] : [],
);
for (const r of wrong)
  console.error(
    `bench: ${r.db} ${r.scenario} ${r.target} expected only ${r.expect}, got ${JSON.stringify(r.statuses)}`,
  );
for (const s of streamsBad)
  console.error(`bench: streams ended ${s.finished} finished / ${s.closed} closed of ${s.tasks}`);
process.exit(wrong.length || streamsBad.length ? 1 : 0);

function markdown(r: typeof result): string {
  const out: string[] = [];
  const x = (a: number, b: number) =>
    Number.isFinite(a) && Number.isFinite(b) && b > 0
      ? `${(a / b).toFixed(a / b >= 10 ? 1 : a / b >= 1 ? 2 : 3)}`
      : '—';
  for (const [kind, d] of Object.entries(r.databases)) {
    out.push(`### ${kind === 'pg' ? 'Postgres' : 'SQLite'}`, '');
    out.push(
      "Ratios are requests per server CPU-second over the other server's in the same run (bare node:http: a Map lookup and ~300 bytes of JSON).",
      '',
    );
    out.push(
      '| scenario | server | req/s | p50 ms | p99 ms | CPU µs/req | core used | ÷ bare | ÷ express floor | ÷ express+oav | ÷ fastify |',
    );
    out.push('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const sc of SCENARIOS) {
      const row = (t: Target) => d.rows.find((x) => x.scenario === sc.key && x.target === t);
      const bare = row('bare')!;
      for (const t of ['project', ...(sc.peers ? PEERS : [])] as Target[]) {
        const c = row(t)!;
        const vs = (peer: Target) => (t === peer || !sc.peers ? '—' : x(row(peer)!.cpuUsPerReq, c.cpuUsPerReq));
        out.push(
          `| ${t === 'project' ? sc.name : ''} | ${t} | ${num(c.rps)} | ${num(c.p50)} | ${num(c.p99)} | ${num(c.cpuUsPerReq)} | ${(c.serverCore * 100).toFixed(0)}% | ${x(bare.cpuUsPerReq, c.cpuUsPerReq)} | ${vs('express')} | ${vs('express-oav')} | ${vs('fastify')} |`,
        );
      }
    }
    const bare = d.rows.filter((x) => x.target === 'bare');
    out.push(
      '',
      `bare node:http: ${num(median(bare.map((b) => b.rps)))} req/s, ${num(median(bare.map((b) => b.cpuUsPerReq)))} µs CPU per request (median of its slots).`,
      '',
    );
    if (d.writePath.length)
      out.push('Write path (the write cases again on a server counting its SQL; knex query events):', '');
    if (d.writePath.length)
      out.push(
        '| scenario | variant | req/s | p99 ms | core used | SQL statements/req | transactions/req |',
        '|---|---|---|---|---|---|---|',
      );
    for (const w of d.writePath)
      out.push(
        `| ${w.scenario} | ${w.variant} | ${num(w.rps)} | ${num(w.p99)} | ${(w.serverCore * 100).toFixed(0)}% | ${w.queriesPerReq.toFixed(2)} | ${w.transactionsPerReq.toFixed(2)} |`,
      );
    out.push('');
    const s = d.streams;
    if (s?.tasks)
      out.push(
        `Streams: ${s.tasks} tasks (echo, 8 deltas ${s.delayMs} ms apart), each followed by its stream, on one server core (at most ${s.peakOpen} open at once): ${s.finished} finished, ${s.closed} closed; event lag p50 ${num(s.lagP50)} ms, p99 ${num(s.lagP99)} ms (max ${num(s.lagMax)}); peak RSS ${num(s.rssPeakPerTaskKB)} KB per task over the run; ${num(s.dbWritesPerTask)} database writes per task (INSERT/UPDATE of aideer_tasks); server CPU ${num(s.serverCpuUsPerTask)} µs per task; ${num(s.wallS)} s wall.`,
        '',
      );
    if (s?.held)
      out.push(
        `Held with every stream open at once (${s.held.open[0]} then ${s.held.open[1]} open, ${s.held.collected ? 'after a full GC' : 'garbage included: no --expose-gc'}): ${num(s.held.rssPerStreamKB)} KB RSS per task and stream (V8 heap used ${num(s.held.heapPerStreamKB)} KB, taken ${num(s.held.heapTotalPerStreamKB)} KB, external ${num(s.held.externalPerStreamKB)} KB); ${num(s.held.rssFromIdlePerStreamKB)} KB counted from idle.`,
        '',
      );
  }
  if (r.coldStart.serverMs.length)
    out.push(
      `Cold start, spawn to first 200 (\`node ${path.relative(ROOT, SERVER)}\`, both specs, fresh SQLite database so migrations run): median ${num(r.coldStart.serverMedianMs)} ms (runs ${r.coldStart.serverMs.map(num).join(', ')}); bare node:http ${num(r.coldStart.bareMedianMs)} ms.`,
      '',
    );
  return out.join('\n');
}
