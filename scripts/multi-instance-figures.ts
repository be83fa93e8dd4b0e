// Figures for several instances on one Postgres (issue 13), from two real server processes on a
// database of their own (created and dropped here):
// - 1,000 task streams across two instances (tasks run on A, streams half on A, half on B):
//   event lag p50/p99 on each instance;
// - database queries per second (pg_stat_database.xact_commit: every statement outside a
//   transaction commits one) with 1,000 tasks running on A and 0, 10 and 1,000 streams open on B;
// - the time from SIGKILL of the instance running tasks to their restart elsewhere, and events
//   lost or duplicated across the resume, seen by the clients.
// Run: `npx tsx scripts/multi-instance-figures.ts [streams]` (Postgres on 127.0.0.1:5432, Redis on
// 127.0.0.1:6379, or CI_POSTGRES_URL / CI_REDIS_URL). Prints JSON, then a markdown table.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreditStore } from '../src/aideer/store/credits.ts';
import {
  createPostgres,
  sharedEnv,
  startInstance,
  type Instance,
  type TestPostgres,
} from '../test/multi-instance/instances.ts';

const STREAMS = Number(process.argv[2] ?? 1000);

interface Arrival {
  id: number;
  status: string;
  content: string | null;
  at: number;
}

interface Stream {
  opened: number;
  events: Arrival[];
  done: Promise<void>;
  /** The connection broke (as when its server is killed). */
  broken: boolean;
  close(): void;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A stream of its own connection, each data event stamped with its arrival time. */
function openStream(base: string, taskId: string, lastEventId?: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const opened = performance.now();
    const req = http.get(
      `${base}/api/v1/tasks/${taskId}/stream`,
      {
        agent: false,
        headers: { accept: 'text/event-stream', ...(lastEventId ? { 'Last-Event-ID': lastEventId } : {}) },
      },
      (res) => {
        if (res.statusCode !== 200) return reject(new Error(`stream ${taskId}: HTTP ${res.statusCode}`));
        const stream: Stream = {
          opened,
          events: [],
          broken: false,
          done: new Promise((r) => res.on('close', r)),
          close: () => req.destroy(),
        };
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const id = /^id: (\d+)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (id && data)
              stream.events.push({
                id: Number(id),
                ...(JSON.parse(data) as { status: string; content: string | null }),
                at: performance.now(),
              });
          }
        });
        res.on('error', () => (stream.broken = true));
        res.on('aborted', () => (stream.broken = true));
        resolve(stream);
      },
    );
    req.on('error', reject);
  });
}

function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function pool<T>(n: number, concurrency: number, work: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await work(i);
      }
    }),
  );
  return out;
}

async function pair(pg: TestPostgres, echoDelayMs: number, leaseSeconds = 15): Promise<[Instance, Instance]> {
  const env = sharedEnv(pg.url, {
    LLM_ECHO_DELAY_MS: String(echoDelayMs),
    MAX_ACTIVE_TASKS_PER_USER: '1000',
    TASK_LEASE_SECONDS: String(leaseSeconds),
    LOG_LEVEL: 'info',
  });
  const a = await startInstance('a', env);
  const b = await startInstance('b', env);
  return [a, b];
}

async function userWithChat(pg: TestPostgres, base: string): Promise<{ token: string; chatId: string }> {
  const username = `fig_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  const created = await call(base, 'POST', '/api/v1/users', { username, password: 'pass-word-1' });
  const form = await fetch(`${base}/api/v1/session/oauth2/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password: 'pass-word-1' }),
  });
  const token = ((await form.json()) as { access_token: string }).access_token;
  await new CreditStore(pg.db).change(pg.db, created.body.id as number, 1e9, 'Add: figures');
  const preset = await call(
    base,
    'POST',
    '/api/v1/presets',
    { title: 'P', messages: [], parameters: { model: 'deepseek-chat' } },
    token,
  );
  const chat = await call(
    base,
    'POST',
    '/api/v1/chats',
    {
      preset_id: preset.body.id,
      title: 'C',
      messages: [{ role: 'user', type: 'text', content: 'one two three four five six seven eight' }],
    },
    token,
  );
  return { token, chatId: chat.body.id as string };
}

async function createTask(base: string, user: { token: string; chatId: string }): Promise<string> {
  const res = await call(base, 'POST', '/api/v1/tasks', { chat_id: user.chatId, type: 'chat_generation' }, user.token);
  if (res.status !== 200) throw new Error(`task refused: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.task_id as string;
}

/** Lag of each live event: its arrival after the previous one, minus the model's pause. Replayed events (sent at connect) are left out. */
function lags(streams: Stream[], pauseMs: number): number[] {
  const out: number[] = [];
  for (const s of streams) {
    const running = s.events.filter((e) => e.status === 'running');
    for (let k = 1; k < running.length; k++) {
      if (running[k - 1].at - s.opened < 5) continue;
      out.push(running[k].at - running[k - 1].at - pauseMs);
    }
  }
  return out;
}

function lostAndDuplicated(ids: number[]): { lost: number; duplicated: number } {
  const seen = new Set<number>();
  let duplicated = 0;
  for (const id of ids) {
    if (seen.has(id)) duplicated++;
    else seen.add(id);
  }
  const max = Math.max(...ids);
  return { lost: max - seen.size, duplicated };
}

async function commits(pg: TestPostgres): Promise<number> {
  const name = new URL(pg.url).pathname.slice(1);
  const result = await pg.db.raw<{ rows: { xact_commit: string }[] }>(
    'select xact_commit from pg_stat_database where datname = ?',
    [name],
  );
  return Number(result.rows[0].xact_commit);
}

async function queriesPerSecond(pg: TestPostgres, seconds: number): Promise<number> {
  await pg.db.raw('select pg_stat_clear_snapshot()');
  const before = await commits(pg);
  await sleep(seconds * 1000);
  await pg.db.raw('select pg_stat_clear_snapshot()');
  // The two reads here commit too.
  return (await commits(pg)) - before - 2;
}

async function main(): Promise<void> {
  const pg = await createPostgres();
  const figures: Record<string, unknown> = {
    streams: STREAMS,
    machine: `${(await import('node:os')).cpus().length} cores, ${(await import('node:os')).cpus()[0]?.model}`,
  };
  try {
    // ── lag: tasks on A (8 pieces, 500 ms apart), streams half on A, half on B ──
    let [a, b] = await pair(pg, 500);
    const users = [await userWithChat(pg, a.url)];
    const user = users[0];
    const streams = await pool(STREAMS, 50, async (i) => {
      const taskId = await createTask(a.url, user);
      return { onB: i % 2 === 1, stream: await openStream(i % 2 ? b.url : a.url, taskId, '0') };
    });
    await Promise.all(streams.map((s) => s.stream.done));
    const finished = streams.filter((s) => s.stream.events.at(-1)?.status === 'finished').length;
    const lagA = lags(
      streams.filter((s) => !s.onB).map((s) => s.stream),
      500,
    );
    const lagB = lags(
      streams.filter((s) => s.onB).map((s) => s.stream),
      500,
    );
    const gaps = streams.map((s) => lostAndDuplicated(s.stream.events.map((e) => e.id)));
    const gapped = streams
      .filter((_, i) => gaps[i].lost || gaps[i].duplicated)
      .slice(0, 3)
      .map((s) => s.stream.events.map((e) => `${e.id}:${e.status}:${e.content?.length}`).join(' '));
    if (gapped.length) console.error('streams with gaps:', gapped);
    figures.lag = {
      finished,
      onRunningInstance: { events: lagA.length, p50: percentile(lagA, 50), p99: percentile(lagA, 99) },
      onOtherInstance: { events: lagB.length, p50: percentile(lagB, 50), p99: percentile(lagB, 99) },
      lost: gaps.reduce((n, g) => n + g.lost, 0),
      duplicated: gaps.reduce((n, g) => n + g.duplicated, 0),
    };

    await a.kill('SIGKILL');
    await b.kill('SIGKILL');

    // ── SIGKILL of A with 20 tasks running (TASK_LEASE_SECONDS=2): 10 followed from B, 10 streamed from A ──
    [a, b] = await pair(pg, 500, 2);
    const followed = await pool(10, 10, async () => openStream(b.url, await createTask(a.url, user), '0'));
    const ofA = await pool(10, 10, async () => {
      const taskId = await createTask(a.url, user);
      return { taskId, stream: await openStream(a.url, taskId, '0') };
    });
    while (![...followed, ...ofA.map((s) => s.stream)].every((s) => s.events.length >= 2)) await sleep(20);
    const killedAt = performance.now();
    await a.kill('SIGKILL');
    const resumedOnB = await Promise.all(
      ofA.map(async ({ taskId, stream }) => {
        await stream.done;
        return openStream(b.url, taskId, String(stream.events.at(-1)!.id));
      }),
    );
    await Promise.all([...followed, ...resumedOnB].map((s) => s.done));
    const restartAfter = followed.map(
      (s) => (s.events.find((e) => e.status === 'running' && e.content === '')?.at ?? NaN) - killedAt,
    );
    const clientIds = ofA.map(({ stream }, i) => [...stream.events, ...resumedOnB[i].events].map((e) => e.id));
    const kills = [...followed.map((s) => s.events.map((e) => e.id)), ...clientIds].map(lostAndDuplicated);
    const charged = await pg
      .db('aideer_credit_records')
      .whereNotNull('task_id')
      .groupBy('task_id')
      .havingRaw('count(*) > 1')
      .select('task_id');
    figures.kill = {
      tasks: 20,
      leaseSeconds: 2,
      restartMs: { min: Math.min(...restartAfter), p50: percentile(restartAfter, 50), max: Math.max(...restartAfter) },
      finished: [...followed, ...resumedOnB].filter((s) => s.events.at(-1)?.status === 'finished').length,
      lost: kills.reduce((n, g) => n + g.lost, 0),
      duplicated: kills.reduce((n, g) => n + g.duplicated, 0),
      chargedTwice: charged.length,
      leftRunning: Number(
        (await pg.db('aideer_tasks').whereIn('status', ['pending', 'running']).count({ n: '*' }).first())!.n,
      ),
    };
    await b.kill('SIGKILL');

    // ── queries per second: 1,000 tasks running on A (8 pieces, 4 s apart, so each window of 4 s
    // sees every task write once); 0, 10, then 1,000 streams on B, then 0 again ──
    [a, b] = await pair(pg, 4000);
    const tasks = await pool(STREAMS, 50, () => createTask(a.url, user));
    await sleep(3000);
    const qps0 = (await queriesPerSecond(pg, 4)) / 4;
    const ten = await Promise.all(tasks.slice(0, 10).map((id) => openStream(b.url, id)));
    await sleep(500);
    const qps10 = (await queriesPerSecond(pg, 4)) / 4;
    const rest = await pool(tasks.length - 10, 50, (i) => openStream(b.url, tasks[10 + i]));
    await sleep(500);
    const qpsAll = (await queriesPerSecond(pg, 4)) / 4;
    for (const s of [...ten, ...rest]) s.close();
    await sleep(500);
    const qpsAfter = (await queriesPerSecond(pg, 4)) / 4;
    figures.queriesPerSecond = {
      tasksRunningOnA: tasks.length,
      streamsOnB0: qps0,
      streamsOnB10: qps10,
      [`streamsOnB${STREAMS}`]: qpsAll,
      streamsOnB0Again: qpsAfter,
    };
    await a.kill('SIGKILL');
    await b.kill('SIGKILL');
  } finally {
    await pg.drop();
    agent.destroy();
  }
  console.log(JSON.stringify(figures, null, 2));
  const lag = figures.lag as {
    onRunningInstance: { p50: number; p99: number };
    onOtherInstance: { p50: number; p99: number };
    lost: number;
    duplicated: number;
  };
  const kill = figures.kill as {
    restartMs: { min: number; p50: number; max: number };
    lost: number;
    duplicated: number;
    chargedTwice: number;
    leftRunning: number;
  };
  const q = figures.queriesPerSecond as Record<string, number>;
  console.log(`
| figure | value |
| --- | --- |
| event lag, streams on the running instance (p50 / p99) | ${lag.onRunningInstance.p50.toFixed(1)} / ${lag.onRunningInstance.p99.toFixed(1)} ms |
| event lag, streams on the other instance (p50 / p99) | ${lag.onOtherInstance.p50.toFixed(1)} / ${lag.onOtherInstance.p99.toFixed(1)} ms |
| events lost / duplicated, ${STREAMS} streams | ${lag.lost} / ${lag.duplicated} |
| DB queries/s, ${STREAMS} tasks on A, 0 / 10 / ${STREAMS} / 0 streams on B | ${q.streamsOnB0.toFixed(0)} / ${q.streamsOnB10.toFixed(0)} / ${q[`streamsOnB${STREAMS}`].toFixed(0)} / ${q.streamsOnB0Again.toFixed(0)} |
| SIGKILL to restart elsewhere (TASK_LEASE_SECONDS=2; min / p50 / max) | ${kill.restartMs.min.toFixed(0)} / ${kill.restartMs.p50.toFixed(0)} / ${kill.restartMs.max.toFixed(0)} ms |
| events lost / duplicated across the resume (20 tasks) | ${kill.lost} / ${kill.duplicated} |
| tasks charged twice / left running | ${kill.chargedTwice} / ${kill.leftRunning} |`);
}

await main();
