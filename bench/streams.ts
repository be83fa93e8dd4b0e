// 1,000 concurrent AIDeer tasks, each followed by its stream, on one server core: event lag, RSS
// per stream, and database writes per task. The server is bench/counting-server.ts (the real app
// as server.ts builds it, counting the statements that write aideer_tasks from outside the runner).
import http from 'node:http';
import { percentile } from './report.ts';
import { freePort, startNode, type Proc } from './procs.ts';
import { bearer, call, CHAT_MESSAGES, type Seed } from './seed.ts';
import type { Counts } from './counting-server.ts';

export interface StreamResult {
  tasks: number;
  delayMs: number;
  finished: number;
  closed: number;
  /** Gap between two consecutive running events, minus the model's pause, ms. */
  lagP50: number;
  lagP99: number;
  lagMax: number;
  rssPerStreamKB: number;
  dbWritesPerTask: number;
  wallS: number;
  serverCpuUsPerTask: number;
  /** Most streams open at the same moment. */
  peakOpen: number;
}

interface StreamRecord {
  runningAt: number[];
  final?: string;
  closed: boolean;
}

const open = { now: 0, peak: 0 };

function stream(port: number, path: string, jwt: string): Promise<StreamRecord> {
  return new Promise((resolve, reject) => {
    const rec: StreamRecord = { runningAt: [], closed: false };
    const req = http.get({ host: '127.0.0.1', port, path, headers: bearer(jwt), agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`stream ${path} answered ${res.statusCode}`));
      }
      res.setEncoding('utf8');
      open.peak = Math.max(open.peak, ++open.now);
      res.once('close', () => open.now--);
      let buffer = '';
      res.on('data', (chunk: string) => {
        const at = performance.now();
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          // A state event is `id: N` then `data: {...}`; open and close carry no data.
          const data = block.split('\n').find((line) => line.startsWith('data: '));
          if (block === 'event: close') rec.closed = true;
          else if (data) {
            const event = JSON.parse(data.slice(6)) as { status: string };
            if (event.status === 'running') rec.runningAt.push(at);
            else rec.final = event.status;
          }
        }
      });
      res.on('end', () => resolve(rec));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

export function startCounting(env: NodeJS.ProcessEnv, port: number): Promise<Proc> {
  return startNode(['--import', 'tsx', 'bench/counting-server.ts'], env, port, { ipc: true, timeoutMs: 30_000 });
}

export function counts(server: Proc): Promise<Counts> {
  return new Promise((resolve) => {
    server.child.once('message', (c) => resolve(c as Counts));
    server.child.send('counts');
  });
}

/** Runs `count` of `fn` at a time until `items` are done. */
async function inBatches<T, R>(items: T[], count: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: count }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }));
  return out;
}

export async function benchStreams(opts: { env: NodeJS.ProcessEnv; seed: Seed; tasks: number; delayMs: number; presetId: string }): Promise<StreamResult> {
  const port = await freePort();
  const env = { ...opts.env, PORT: String(port), LLM_ECHO_DELAY_MS: String(opts.delayMs), MAX_ACTIVE_TASKS_PER_USER: '1000' };
  const server = await startCounting(env, port);
  try {
    const owners = Array.from({ length: opts.tasks }, (_, i) => opts.seed.streamers[i % opts.seed.streamers.length]);
    // One chat per task: each task appends its reply to its own chat. The echo model repeats the
    // last user message in 8 pieces.
    const chats = await inBatches(owners, 20, async (owner) => {
      const r = await call(port, 'POST', '/api/v1/chats', bearer(owner.jwt), { preset_id: opts.presetId, title: 'stream', messages: CHAT_MESSAGES.slice(0, 1) });
      if (r.status !== 200) throw new Error(`creating a chat answered ${r.status}`);
      return { owner, chatId: r.json.id as string };
    });
    const writes = async () => (await counts(server)).taskWrites;
    const writesBefore = await writes();
    const rssBefore = server.rss();
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, server.rss() || 0)), 50);
    const died = new Promise<never>((_, reject) => server.child.once('exit', (code, signal) => reject(new Error(`the stream server exited (${code ?? signal}) during the streams: ${server.stderr().trim()}`))));
    const cpuBefore = server.cpuUs();
    open.peak = 0;
    const started = performance.now();
    // Each task's stream opens as soon as the task exists; creations are paced (50 in flight) so
    // the burst does not overflow the listen backlog, while all the streams stay open together.
    let creating = 0;
    const waiting: (() => void)[] = [];
    const create = async (owner: Seed['streamers'][number], chatId: string) => {
      while (creating >= 50) await new Promise<void>((r) => waiting.push(r));
      creating++;
      try {
        return await call(port, 'POST', '/api/v1/tasks', bearer(owner.jwt), { chat_id: chatId, type: 'chat_generation' });
      } finally {
        creating--;
        waiting.shift()?.();
      }
    };
    const records = await Promise.race([died, Promise.all(
      chats.map(async ({ owner, chatId }) => {
        const r = await create(owner, chatId);
        if (r.status !== 200) throw new Error(`creating a task answered ${r.status} ${JSON.stringify(r.json)}`);
        return stream(port, `/api/v1/tasks/${r.json.task_id}/stream`, owner.jwt);
      }),
    )]).finally(() => clearInterval(sampler));
    const wallS = (performance.now() - started) / 1000;
    const cpu = server.cpuUs() - cpuBefore;
    // The runner's final writes land before the stream's final event; give stragglers a moment.
    await new Promise((r) => setTimeout(r, 200));
    const dbWrites = (await writes()) - writesBefore;
    const lags: number[] = [];
    for (const rec of records) for (let i = 1; i < rec.runningAt.length; i++) lags.push(rec.runningAt[i] - rec.runningAt[i - 1] - opts.delayMs);
    lags.sort((a, b) => a - b);
    return {
      tasks: opts.tasks,
      delayMs: opts.delayMs,
      finished: records.filter((r) => r.final === 'finished').length,
      closed: records.filter((r) => r.closed).length,
      lagP50: percentile(lags, 0.5),
      lagP99: percentile(lags, 0.99),
      lagMax: lags[lags.length - 1] ?? NaN,
      rssPerStreamKB: (rssPeak - rssBefore) / 1024 / opts.tasks,
      dbWritesPerTask: dbWrites / opts.tasks,
      wallS,
      serverCpuUsPerTask: cpu / opts.tasks,
      peakOpen: open.peak,
    };
  } finally {
    await server.stop();
  }
}
