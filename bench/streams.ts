// 1,000 concurrent AIDeer tasks, each followed by its stream, on one server core: event lag, RSS
// per stream, and database writes per task. The server is bench/counting-server.ts (the real app
// as server.ts builds it, counting the statements that write aideer_tasks from outside the runner).
import http from 'node:http';
import { percentile } from './report.ts';
import { freePort, startNode, type Proc } from './procs.ts';
import { bearer, call, CHAT_MESSAGES, stringField, type Seed } from './seed.ts';
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
  /** Peak RSS during the run over RSS before it, per task (garbage and finished tasks included). */
  rssPeakPerTaskKB: number;
  /**
   * The hold phase: with every task running and its stream open at once, what one more task and
   * stream keeps after a full GC, from two points (half the streams open, then all of them).
   */
  held?: HeldMemory;
  dbWritesPerTask: number;
  wallS: number;
  serverCpuUsPerTask: number;
  /** Most streams open at the same moment. */
  peakOpen: number;
}

export interface HeldMemory {
  /** Streams open at the two points. */
  open: [number, number];
  rssPerStreamKB: number;
  heapPerStreamKB: number;
  /** What V8 took from the system for its heap (used, garbage-free after the GC, and reserve). */
  heapTotalPerStreamKB: number;
  /** Buffers and other memory outside the V8 heap (process.memoryUsage().external). */
  externalPerStreamKB: number;
  /** The same from before the first task to all streams open (fixed costs included). */
  rssFromIdlePerStreamKB: number;
  /** Whether the server collected garbage before each reading (node --expose-gc). */
  collected: boolean;
}

interface StreamRecord {
  runningAt: number[];
  /** Ids of the running events, in order. */
  ids: number[];
  final?: string;
  closed: boolean;
}

interface OpenCount {
  now: number;
  peak: number;
}

function stream(port: number, path: string, jwt: string, open: OpenCount, onOpen?: () => void): Promise<StreamRecord> {
  return new Promise((resolve, reject) => {
    const rec: StreamRecord = { runningAt: [], ids: [], closed: false };
    const req = http.get({ host: '127.0.0.1', port, path, headers: bearer(jwt), agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`stream ${path} answered ${res.statusCode}`));
      }
      res.setEncoding('utf8');
      open.peak = Math.max(open.peak, ++open.now);
      res.once('close', () => open.now--);
      onOpen?.();
      let buffer = '';
      res.on('data', (chunk: string) => {
        const at = performance.now();
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          // A state event is `id: N` then `data: {...}`; open and close carry no data.
          const lines = block.split('\n');
          const data = lines.find((line) => line.startsWith('data: '));
          if (block === 'event: close') rec.closed = true;
          else if (data) {
            const event = JSON.parse(data.slice(6)) as { status: string };
            if (event.status === 'running') {
              rec.runningAt.push(at);
              rec.ids.push(Number(lines.find((line) => line.startsWith('id: '))?.slice(4)));
            } else rec.final = event.status;
          }
        }
      });
      res.on('end', () => resolve(rec));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** `nodeArgs` go before the script (--cpu-prof, --expose-gc). */
export function startCounting(env: NodeJS.ProcessEnv, port: number, nodeArgs: string[] = []): Promise<Proc> {
  return startNode([...nodeArgs, '--import', 'tsx', 'bench/counting-server.ts'], env, port, {
    ipc: true,
    timeoutMs: 30_000,
  });
}

function ask<T>(server: Proc, message: unknown): Promise<T> {
  return new Promise((resolve) => {
    server.child.once('message', (c) => resolve(c as T));
    server.child.send(message as string);
  });
}

export function counts(server: Proc): Promise<Counts> {
  return ask<Counts>(server, 'counts');
}

type Memory = NodeJS.MemoryUsage & { collected: boolean };

/** Runs `count` of `fn` at a time until `items` are done. */
async function inBatches<T, R>(items: T[], count: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: count }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

interface StreamOpts {
  env: NodeJS.ProcessEnv;
  seed: Seed;
  tasks: number;
  delayMs: number;
  presetId: string;
  /** Both run unless one is false. */
  phases?: { lag?: boolean; hold?: boolean };
  /** node --cpu-prof arguments for the server of the lag phase (its tsx loader thread writes a profile too). */
  profileArgs?: string[];
  /** Where the hold phase writes heap snapshots (idle, all open); none when unset. */
  heapDir?: string;
}

/** One chat per task: each task appends its reply to its own chat. The echo model repeats the last user message in 8 pieces. */
function makeChats(port: number, opts: StreamOpts) {
  const owners = Array.from({ length: opts.tasks }, (_, i) => opts.seed.streamers[i % opts.seed.streamers.length]);
  return inBatches(owners, 20, async (owner) => {
    const r = await call(port, 'POST', '/api/v1/chats', bearer(owner.jwt), {
      preset_id: opts.presetId,
      title: 'stream',
      messages: CHAT_MESSAGES.slice(0, 1),
    });
    if (r.status !== 200) throw new Error(`creating a chat answered ${r.status}`);
    return { owner, chatId: stringField(r.json, 'id') };
  });
}

/**
 * Creates a task per chat and follows each with its stream. Creations are paced (50 in flight) so
 * the burst does not overflow the listen backlog, while the streams stay open together.
 */
function createAndFollow(
  port: number,
  chats: { owner: Seed['streamers'][number]; chatId: string }[],
  open: OpenCount,
  onOpen?: () => void,
): Promise<StreamRecord>[] {
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
  return chats.map(async ({ owner, chatId }) => {
    const r = await create(owner, chatId);
    if (r.status !== 200) throw new Error(`creating a task answered ${r.status} ${JSON.stringify(r.json)}`);
    return stream(port, `/api/v1/tasks/${stringField(r.json, 'task_id')}/stream`, owner.jwt, open, onOpen);
  });
}

export async function benchStreams(opts: StreamOpts): Promise<StreamResult> {
  const result = opts.phases?.lag === false ? ({} as StreamResult) : await lagPhase(opts);
  if (opts.phases?.hold !== false) result.held = await holdPhase(opts);
  return result;
}

/** The case: tasks of 8 deltas `delayMs` apart, each followed by its stream; lag, writes, CPU. */
async function lagPhase(opts: StreamOpts): Promise<StreamResult> {
  const port = await freePort();
  const env = {
    ...opts.env,
    PORT: String(port),
    LLM_ECHO_DELAY_MS: String(opts.delayMs),
    MAX_ACTIVE_TASKS_PER_USER: '1000',
  };
  const server = await startCounting(env, port, opts.profileArgs);
  const open: OpenCount = { now: 0, peak: 0 };
  try {
    const chats = await makeChats(port, opts);
    const writes = async () => (await counts(server)).taskWrites;
    const writesBefore = await writes();
    const rssBefore = server.rss();
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, server.rss() || 0)), 50);
    const died = new Promise<never>((_, reject) =>
      server.child.once('exit', (code, signal) =>
        reject(new Error(`the stream server exited (${code ?? signal}) during the streams: ${server.stderr().trim()}`)),
      ),
    );
    const cpuBefore = server.cpuUs();
    const started = performance.now();
    const records = await Promise.race([died, Promise.all(createAndFollow(port, chats, open))]).finally(() =>
      clearInterval(sampler),
    );
    const wallS = (performance.now() - started) / 1000;
    const cpu = server.cpuUs() - cpuBefore;
    // The runner's final writes land before the stream's final event; give stragglers a moment.
    await new Promise((r) => setTimeout(r, 200));
    const dbWrites = (await writes()) - writesBefore;
    // A gap counts from an event that went out as its delta happened. A stream opened after the
    // first delta begins with the current state (id 1, sent at the open, not when the model gave
    // it): the gap from it to the second delta is shorter than the pause by however late the
    // stream opened, so it is left out. The runner's first delta comes at once, before any pause;
    // a stream that got id 1 live got it before the stream's first read, so it cannot be told
    // from a catch-up by its id alone: the first gap of every stream is left out (7 deltas, 6 gaps).
    const lags: number[] = [];
    for (const rec of records)
      for (let i = 2; i < rec.runningAt.length; i++) lags.push(rec.runningAt[i] - rec.runningAt[i - 1] - opts.delayMs);
    lags.sort((a, b) => a - b);
    return {
      tasks: opts.tasks,
      delayMs: opts.delayMs,
      finished: records.filter((r) => r.final === 'finished').length,
      closed: records.filter((r) => r.closed).length,
      lagP50: percentile(lags, 0.5),
      lagP99: percentile(lags, 0.99),
      lagMax: lags[lags.length - 1] ?? NaN,
      rssPeakPerTaskKB: (rssPeak - rssBefore) / 1024 / opts.tasks,
      dbWritesPerTask: dbWrites / opts.tasks,
      wallS,
      serverCpuUsPerTask: cpu / opts.tasks,
      peakOpen: open.peak,
    };
  } finally {
    await server.stop();
  }
}

/**
 * What a task and its stream keep while both are live, with every one open at once. The lag phase
 * cannot tell: its streams overlap only as far as creating the tasks keeps up with their 3.5 s
 * (at most about half of them on one core), and its peak RSS counts garbage not yet collected and
 * what V8 keeps of a heap once grown. Here the model pauses long enough (HOLD_DELAY_MS) that every
 * stream is open before any task ends; the server collects garbage (--expose-gc) before each
 * reading, and one more stream's cost is the difference between half and all of them open, so
 * code compiled and caches filled by the first tasks are not counted per stream.
 */
const HOLD_DELAY_MS = 10_000; // the most LLM_ECHO_DELAY_MS allows: tasks last 70 s

async function holdPhase(opts: StreamOpts): Promise<HeldMemory> {
  const port = await freePort();
  const env = {
    ...opts.env,
    PORT: String(port),
    LLM_ECHO_DELAY_MS: String(HOLD_DELAY_MS),
    MAX_ACTIVE_TASKS_PER_USER: '1000',
  };
  const server = await startCounting(env, port, ['--expose-gc']);
  const open: OpenCount = { now: 0, peak: 0 };
  try {
    const chats = await makeChats(port, opts);
    const snapshot = async (name: string) => {
      if (opts.heapDir) await ask(server, { snapshot: `${opts.heapDir}/streams-${name}.heapsnapshot` });
    };
    // A snapshot takes memory of its own: the idle one is taken before any reading, the other after the last.
    await snapshot('idle');
    const idle = await ask<Memory>(server, 'memory');
    const half = Math.floor(opts.tasks / 2);
    let reached!: () => void;
    const halfOpen = new Promise<void>((r) => (reached = r));
    let allOpen!: () => void;
    const everyOpen = new Promise<void>((r) => (allOpen = r));
    const first = chats.slice(0, half);
    const rest = chats.slice(half);
    const died = new Promise<never>((_, reject) =>
      server.child.once('exit', (code, signal) =>
        reject(
          new Error(`the stream server exited (${code ?? signal}) while holding streams: ${server.stderr().trim()}`),
        ),
      ),
    );
    const onOpen = () => {
      if (open.now === half) reached();
      if (open.now === opts.tasks) allOpen();
    };
    const streams = createAndFollow(port, first, open, onOpen);
    await Promise.race([died, halfOpen]);
    const atHalf = await ask<Memory>(server, 'memory');
    const openAtHalf = open.now;
    streams.push(...createAndFollow(port, rest, open, onOpen));
    await Promise.race([died, everyOpen]);
    const atAll = await ask<Memory>(server, 'memory');
    const openAtAll = open.now;
    await snapshot('all');
    for (const s of streams) s.catch(() => undefined); // the server stops under them
    const per = (key: 'rss' | 'heapUsed' | 'heapTotal' | 'external') =>
      (atAll[key] - atHalf[key]) / 1024 / (openAtAll - openAtHalf);
    return {
      open: [openAtHalf, openAtAll],
      rssPerStreamKB: per('rss'),
      heapPerStreamKB: per('heapUsed'),
      heapTotalPerStreamKB: per('heapTotal'),
      externalPerStreamKB: per('external'),
      rssFromIdlePerStreamKB: (atAll.rss - idle.rss) / 1024 / openAtAll,
      collected: idle.collected,
    };
  } finally {
    await server.stop();
  }
}
