// AIDeer generation tasks (decisions A5–A7): rows in the database, run in the background by the
// instance that claims them, charged once on success in the same transaction as their result.
//
// Claims: the creating instance claims its task at once; every instance also looks, every third of
// a lease, for tasks whose claim lapsed (their process died) and claims them (`FOR UPDATE SKIP
// LOCKED` on Postgres; SQLite's single writer makes a conditional UPDATE enough). A reclaimed task
// restarts from its start, until TASK_MAX_ATTEMPTS runs have been cut; then it is failed.
//
// Events: each has an id, increasing per task across restarts. The row holds the current run's
// text and one length per running event, so any instance rebuilds any event exactly. Streams on the
// running instance get every delta at once; the text is written at most every
// TASK_PROGRESS_WRITE_MS, and on Postgres each write sends a NOTIFY (task id and sequence) that
// every instance hears on its one LISTEN connection, reads the row once for, and fans out to its
// streams of that task.
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Knex } from 'knex';
import { forUpdate, isPostgres, prepare, type Prepared } from '../db.ts';
import { LlmError, type ChatMessage } from '../llm/index.ts';
import type { Logger } from '../logger.ts';
import type { Chats } from './chats.ts';
import { MULTIPLIERS, TITLE_MODEL, type ModelRouter, type PresetModel } from './models.ts';
import type { Users } from './users.ts';
import { TaskListener, notifyTask, type TaskSignal } from './taskNotify.ts';
import type { components } from '../../generated/aideer.ts';

export type TaskStatus = components['schemas']['TaskStatus'];
/** The task types that run (image_generation is refused before a task exists). */
export type TaskType = Exclude<components['schemas']['TaskType'], 'image_generation'>;

export interface TaskRow {
  id: string;
  user_id: number;
  chat_id: string;
  type: TaskType;
  status: TaskStatus;
  content: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
  ended_at: number | null;
  runner_lease_until: number | null;
  stream_holder: string | null;
  stream_lease_until: number | null;
  event_seq: number;
  run_first_seq: number;
  event_marks: string | null;
  attempts: number;
  runner_id: string | null;
}

/** One event of a task's stream: the cumulative text while running, then the final state. */
export interface TaskEvent {
  id: number;
  status: TaskStatus;
  content: string | null;
}

/** What it takes to rebuild every event of a task's current run. */
export interface EventLog {
  /** Id of the run's first event. */
  firstSeq: number;
  /** The text's length at each running event of the run, in order (ids firstSeq, firstSeq + 1, …). */
  marks: number[];
  /** The text so far. */
  text: string;
  /** The final event, once the task ended. */
  final?: TaskEvent;
}

export interface TaskSettings {
  maxActivePerUser: number;
  ttlMs: number;
  titlePrompt: string;
  /** How long a runner's or a stream's hold lasts without renewal. */
  runnerLeaseMs: number;
  streamLeaseMs: number;
  /** Least time between two writes of the growing text to the database. */
  progressWriteMs: number;
  /** Runs a task may start before a lapsed claim fails it. */
  maxAttempts: number;
}

const ACTIVE: TaskStatus[] = ['pending', 'running'];
const TITLE_MAX = 50;
/** Most lapsed tasks one instance claims per sweep, so a crowd of orphans spreads over instances. */
const CLAIM_BATCH = 20;
/** How long signals are gathered into one read, and the most task ids one read asks for. */
const REFRESH_BATCH_MS = 20;
const READ_BATCH = 500;

export const DRAIN_REASON = 'The server shut down before the task finished; create the task again';
const GONE_REASON = 'The task no longer exists';

/** A failure whose message may be shown to the client. */
class TaskFailure extends Error {}

function failureText(err: unknown): string {
  if (err instanceof TaskFailure) return err.message;
  if (err instanceof LlmError) {
    switch (err.kind) {
      case 'http':
        return `The model provider answered HTTP ${err.status ?? 'error'}`;
      case 'timeout':
        return 'The model provider timed out';
      case 'unreachable':
        return 'The model provider could not be reached';
      case 'broken':
        return "The model provider's stream broke off";
      case 'cancelled':
        return 'The task was cancelled';
    }
  }
  return 'Internal error';
}

function finalOf(task: Pick<TaskRow, 'status' | 'content' | 'error' | 'event_seq'>): TaskEvent {
  return { id: task.event_seq, status: task.status, content: task.status === 'failed' ? task.error : task.content };
}

export function logOf(row: TaskRow): EventLog {
  return { firstSeq: row.run_first_seq, marks: row.event_marks ? (JSON.parse(row.event_marks) as number[]) : [], text: row.content ?? '', final: ACTIVE.includes(row.status) ? undefined : finalOf(row) };
}

/** The id of the log's last event (firstSeq - 1 when the run has sent none yet). */
export function lastId(log: EventLog): number {
  return log.final ? log.final.id : log.firstSeq + log.marks.length - 1;
}

/**
 * The events after id `after`, in order. Without `after`, only the latest (a client that joins
 * without a Last-Event-ID gets the current state at once). An id of an earlier run gets the whole
 * current run, which begins with the restart's reset event.
 */
export function eventsAfter(log: EventLog, after: number | undefined): TaskEvent[] {
  const last = lastId(log);
  const from = Math.max(after === undefined ? last : after + 1, log.firstSeq);
  const out: TaskEvent[] = [];
  const runningEnd = log.final ? Math.min(log.final.id, log.firstSeq + log.marks.length) : log.firstSeq + log.marks.length;
  for (let id = from; id < runningEnd; id++) out.push({ id, status: 'running', content: log.text.slice(0, log.marks[id - log.firstSeq]) });
  if (log.final && log.final.id >= from) out.push(log.final);
  return out;
}

/** A stream this process serves. */
export interface StreamConnection {
  /** The peer has gone (or is going). */
  closed(): boolean;
  /** The task's events changed; `null` when the task no longer exists. */
  update(log: EventLog | null): void;
  /** Stop at once: another connection took the stream over, or this process is draining. */
  end(why: 'takeover' | 'drain'): void;
}

interface Run {
  controller: AbortController;
  log: EventLog;
  /** Why the run was stopped from outside: shown to the client, or `lost` when another instance took the claim. */
  stopReason?: string;
  lost?: boolean;
}

export class Tasks {
  /** This process's name in the claims it holds. */
  readonly instanceId = crypto.randomUUID();
  /** Tasks this process runs. */
  private readonly runs = new Map<string, Run>();
  /** Streams this process serves, by task and by holder id. */
  private readonly streamsByTask = new Map<string, Map<string, { connection: StreamConnection; since: number }>>();
  private readonly streams = new Map<string, StreamConnection>();
  private readonly dirty = new Set<string>();
  private nextFlush?: Promise<void>;
  private flushing: Promise<void> = Promise.resolve();
  private reads = 0;
  private renewTimer?: NodeJS.Timeout;
  private timer?: NodeJS.Timeout;
  private listener?: TaskListener;
  private readonly idle = new Set<Promise<void>>();
  private draining = false;
  /** Writes of a run's growing text to the database, for benchmarks and tests. */
  progressWrites = 0;

  /**
   * The statements a task and its stream send again and again (a progress write per delta, the
   * reads and hold changes of every stream), prepared once: knex building and preparing them anew
   * cost more than running them. Writes return the ids they changed, which say whether they did.
   */
  private readonly sql: {
    get: Prepared<TaskRow>;
    progress: Prepared<{ id: string }>;
    hold: Prepared<Pick<TaskRow, 'stream_holder' | 'stream_lease_until'>>;
    takeFree: Prepared<{ id: string }>;
    takeFrom: Prepared<{ id: string }>;
    release: Prepared<{ id: string }>;
  };

  constructor(
    private readonly db: Knex,
    private readonly deps: { chats: Chats; users: Users; router: ModelRouter; logger: Logger },
    private readonly settings: TaskSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.sql = {
      get: prepare(db, 'SELECT * FROM aideer_tasks WHERE id = ? AND (ended_at IS NULL OR ended_at > ?)'),
      progress: prepare(db, "UPDATE aideer_tasks SET content = ?, event_marks = ?, event_seq = ?, updated_at = ? WHERE id = ? AND status = 'running' AND runner_id = ? RETURNING id"),
      hold: prepare(db, 'SELECT stream_holder, stream_lease_until FROM aideer_tasks WHERE id = ?'),
      takeFree: prepare(db, 'UPDATE aideer_tasks SET stream_holder = ?, stream_lease_until = ? WHERE id = ? AND stream_holder IS NULL RETURNING id'),
      takeFrom: prepare(db, 'UPDATE aideer_tasks SET stream_holder = ?, stream_lease_until = ? WHERE id = ? AND stream_holder = ? RETURNING id'),
      release: prepare(db, 'UPDATE aideer_tasks SET stream_holder = NULL, stream_lease_until = NULL WHERE id = ? AND stream_holder = ? RETURNING id'),
    };
  }

  private get postgres(): boolean {
    return isPostgres(this.db);
  }

  /** The task, unless it ended more than the TTL ago (then it is as good as purged). */
  async get(id: string): Promise<TaskRow | undefined> {
    return this.sql.get.first(id, this.now() - this.settings.ttlMs);
  }

  private visible<Q extends Knex.QueryBuilder>(query: Q): Q {
    return query.andWhere((q) => q.whereNull('ended_at').orWhere('ended_at', '>', this.now() - this.settings.ttlMs)) as Q;
  }

  /**
   * Stores a pending task, claimed by this process, unless the user already has the maximum of
   * active ones. The user's row is locked for the count-then-insert (SQLite runs writers one at a
   * time anyway). While draining, the task is stored unclaimed, for another instance to take.
   */
  async create(userId: number, chatId: string, type: TaskType): Promise<TaskRow | 'tooMany'> {
    const claim = !this.draining;
    const row = await this.db.transaction(async (trx) => {
      await forUpdate(trx, trx('aideer_users').select('id').where({ id: userId }));
      const active = await trx('aideer_tasks').where({ user_id: userId }).whereIn('status', ACTIVE).count({ n: '*' }).first();
      if (Number(active?.n ?? 0) >= this.settings.maxActivePerUser) return 'tooMany' as const;
      const now = this.now();
      const task: TaskRow = {
        id: crypto.randomUUID(), user_id: userId, chat_id: chatId, type, status: 'pending', content: null, error: null, created_at: now, updated_at: now, ended_at: null,
        runner_lease_until: claim ? now + this.settings.runnerLeaseMs : null, runner_id: claim ? this.instanceId : null, attempts: claim ? 1 : 0,
        stream_holder: null, stream_lease_until: null, event_seq: 0, run_first_seq: 1, event_marks: null,
      };
      await trx('aideer_tasks').insert(task);
      return task;
    });
    if (row !== 'tooMany' && claim) this.start(row);
    return row;
  }

  /** Forgets a finished or failed task. */
  async delete(id: string): Promise<'ok' | 'notFound' | TaskStatus> {
    const task = await this.get(id);
    if (!task) return 'notFound';
    if (ACTIVE.includes(task.status)) return task.status;
    await this.db('aideer_tasks').where({ id }).whereNotIn('status', ACTIVE).delete();
    return 'ok';
  }

  // ── running ──

  /** Runs a task this process has claimed (its row as read at the claim). */
  private start(task: TaskRow): void {
    const run: Run = { controller: new AbortController(), log: { firstSeq: task.event_seq + 1, marks: [], text: '' } };
    this.runs.set(task.id, run);
    // After the answer has gone out: the handler's caller sends it before the next turn.
    const done = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.run(task, run))
      .catch((err: unknown) => this.deps.logger.error({ err, taskId: task.id }, 'task runner failed'))
      .finally(async () => {
        this.runs.delete(task.id);
        // Ended without a final event of ours (lost claim, row deleted): streams follow the row.
        if (!run.log.final) {
          await this.signal(task.id, lastId(run.log)).catch(() => undefined);
          await this.refresh(task.id);
        }
        this.idle.delete(done);
      });
    this.idle.add(done);
  }

  private async run(task: TaskRow, run: Run): Promise<void> {
    const { signal } = run.controller;
    try {
      // A restart of a chat task begins with a reset event: streams elsewhere drop the cut run's text.
      if (task.attempts > 1 && task.type === 'chat_generation') run.log.marks.push(0);
      const began = await this.db('aideer_tasks')
        .where({ id: task.id, runner_id: this.instanceId })
        .whereIn('status', ACTIVE)
        .update({ status: 'running', updated_at: this.now(), content: run.log.marks.length ? '' : null, event_marks: JSON.stringify(run.log.marks), run_first_seq: run.log.firstSeq, event_seq: lastId(run.log) });
      if (began !== 1) {
        run.lost = true;
        return;
      }
      if (run.log.marks.length) await this.signal(task.id, lastId(run.log));
      this.deliver(task.id, run.log);
      const context = await this.deps.chats.generationContext(task.chat_id);
      if (!context) throw new TaskFailure('The chat no longer exists');
      if (task.type === 'chat_generation') {
        const model = context.parameters.model as PresetModel;
        const p = context.parameters;
        const stream = this.deps.router.route(model).provider.chat(
          context.messages,
          { model, max_tokens: p.max_tokens ?? undefined, temperature: p.temperature ?? undefined, top_p: p.top_p ?? undefined, seed: p.seed ?? undefined, presence_penalty: p.presence_penalty ?? undefined, frequency_penalty: p.frequency_penalty ?? undefined },
          { signal },
        );
        const progress = this.progressWriter(task.id, run);
        try {
          for await (const delta of stream) {
            if (!delta) continue;
            run.log.text += delta;
            run.log.marks.push(run.log.text.length);
            progress.changed();
          }
        } finally {
          await progress.stop();
        }
        const result = await stream.result();
        await this.finish(task, run, result.text, result.usage.total_tokens * MULTIPLIERS[model], 'Chat generation', (trx) => this.deps.chats.appendAssistantMessage(trx, task.chat_id, result.text));
      } else {
        // The instruction goes last, as a system message: the model answers with the title (and
        // the offline `echo` model, which repeats the last user message, gives a sensible one).
        const messages: ChatMessage[] = [...context.messages, { role: 'system', content: this.settings.titlePrompt }];
        const result = await this.deps.router.route(TITLE_MODEL).provider.chat(messages, { model: TITLE_MODEL, max_tokens: 100 }, { signal }).result();
        const title = [...result.text.replace(/\s+/g, ' ').trim().replace(/^["'“”「」《》]+|["'“”「」《》]+$/g, '')].slice(0, TITLE_MAX).join('') || '闲聊';
        await this.finish(task, run, title, result.usage.total_tokens, 'Title generation', (trx) => this.deps.chats.setTitle(trx, task.chat_id, title));
      }
    } catch (err) {
      if (run.lost) return void this.deps.logger.info({ taskId: task.id }, 'task claimed by another instance; this run stops');
      const reason = run.stopReason ?? failureText(err);
      if (!run.stopReason && !(err instanceof TaskFailure) && !(err instanceof LlmError)) this.deps.logger.error({ err, taskId: task.id }, 'task failed');
      else this.deps.logger.info({ taskId: task.id, reason }, 'task failed');
      await this.fail(task.id, run, reason);
    }
  }

  /**
   * Streams here get every delta at once; the database gets the text at most every
   * progressWriteMs, and once more after the last delta (so streams elsewhere are never left
   * behind by more than that).
   */
  private progressWriter(id: string, run: Run): { changed(): void; stop(): Promise<void> } {
    let lastWrite = 0;
    let timer: NodeJS.Timeout | undefined;
    let writing: Promise<void> = Promise.resolve();
    let written = lastId(run.log);
    const write = () => {
      timer = undefined;
      lastWrite = this.now();
      writing = writing.then(async () => {
        const seq = lastId(run.log);
        if (seq === written || run.log.final) return;
        this.progressWrites++;
        const n = (await this.sql.progress.all(run.log.text, JSON.stringify(run.log.marks), seq, this.now(), id, this.instanceId)).length;
        written = seq;
        if (n === 1) await this.signal(id, seq);
      }).catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message, taskId: id }, 'task progress write failed'));
    };
    return {
      changed: () => {
        this.deliver(id, run.log);
        if (timer) return;
        const wait = lastWrite + this.settings.progressWriteMs - this.now();
        if (wait <= 0) write();
        else timer = setTimeout(write, wait);
      },
      stop: async () => {
        clearTimeout(timer);
        timer = undefined;
        await writing;
      },
    };
  }

  /**
   * The result, the charge with its record and `finished`, in one transaction; then the event.
   * The record's unique task id makes a second charge impossible, whatever happens; the claim check
   * keeps a run that lost its claim from finishing.
   */
  private async finish(task: TaskRow, run: Run, text: string, cost: number, what: string, apply: (trx: Knex) => Promise<boolean>): Promise<void> {
    const now = this.now();
    const final: TaskEvent = { id: lastId(run.log) + 1, status: 'finished', content: text };
    await this.db.transaction(async (trx) => {
      if (!(await apply(trx))) throw new TaskFailure('The chat no longer exists');
      await this.deps.users.changeCredits(trx, task.user_id, -cost, `Consume: ${what}, chat_id: ${task.chat_id}, task_id: ${task.id}`, task.id);
      const done = await trx('aideer_tasks')
        .where({ id: task.id, status: 'running', runner_id: this.instanceId })
        .update({ status: 'finished', content: text, event_marks: JSON.stringify(run.log.marks), event_seq: final.id, ended_at: now, updated_at: now, runner_lease_until: null, runner_id: null });
      if (done !== 1) throw new TaskFailure('The task was stopped');
      if (this.postgres) await notifyTask(trx, task.id, final.id);
    });
    run.log.final = final;
    this.deliver(task.id, run.log);
  }

  /** Fails a run of ours, keeping its events (the text streamed so far) rebuildable. */
  private async fail(id: string, run: Run, reason: string): Promise<void> {
    const now = this.now();
    const final: TaskEvent = { id: lastId(run.log) + 1, status: 'failed', content: reason };
    const n = await this.db('aideer_tasks')
      .where({ id, runner_id: this.instanceId })
      .whereIn('status', ACTIVE)
      .update({ status: 'failed', error: reason, content: run.log.text, event_marks: JSON.stringify(run.log.marks), event_seq: final.id, ended_at: now, updated_at: now, runner_lease_until: null, runner_id: null });
    if (n !== 1) return;
    run.log.final = final;
    await this.signal(id, final.id).catch(() => undefined);
    this.deliver(id, run.log);
  }

  // ── events and streams ──

  /** Tells the other instances (Postgres only; SQLite is one instance). */
  private async signal(id: string, what: number | 'hold'): Promise<void> {
    if (this.postgres) await notifyTask(this.db, id, what);
  }

  /** Hands the task's events to this process's streams of it. */
  private deliver(id: string, log: EventLog | null): void {
    const streams = this.streamsByTask.get(id);
    if (streams) for (const { connection } of streams.values()) connection.update(log);
  }

  /**
   * Asks for the task's row to be read for this process's streams of it: their events (unless it
   * runs here, where they arrive as they happen), and whether each still holds the task. Reads are
   * batched: one query for every task signalled within REFRESH_BATCH_MS, so the queries per second
   * do not grow with the number of streams. Resolves once a read begun after the call is delivered.
   */
  private refresh(id: string): Promise<void> {
    if (!this.streamsByTask.get(id)?.size) return Promise.resolve();
    this.dirty.add(id);
    this.nextFlush ??= (async () => {
      await sleep(REFRESH_BATCH_MS);
      await this.flushing;
      this.nextFlush = undefined;
      this.flushing = this.flush();
      await this.flushing;
    })();
    return this.nextFlush;
  }

  private async flush(): Promise<void> {
    const ids = [...this.dirty].filter((id) => this.streamsByTask.get(id)?.size);
    this.dirty.clear();
    const readAt = ++this.reads;
    for (let i = 0; i < ids.length; i += READ_BATCH) {
      const batch = ids.slice(i, i + READ_BATCH);
      let rows: TaskRow[];
      try {
        rows = await this.visible(this.db('aideer_tasks').whereIn('id', batch));
      } catch (err) {
        this.deps.logger.warn({ err: (err as Error).message }, 'task event read failed; retrying');
        setTimeout(() => batch.forEach((id) => void this.refresh(id)), 1000).unref();
        continue;
      }
      const byId = new Map(rows.map((row) => [row.id, row]));
      for (const id of batch) {
        const row = byId.get(id);
        const run = this.runs.get(id);
        for (const [holder, { connection, since }] of this.streamsByTask.get(id) ?? []) {
          // A read that began before this stream took the hold may show the previous holder.
          if (row && since < readAt && row.stream_holder !== holder) connection.end('takeover');
          else connection.update(run ? run.log : row ? logOf(row) : null);
        }
      }
    }
  }

  private onSignal(signal: TaskSignal): void {
    // Events of a task run here reached its streams already; a hold change is for everyone.
    if ('seq' in signal && this.runs.has(signal.taskId)) return;
    void this.refresh(signal.taskId);
  }

  /** The task's events as this process knows them best: its own run's, or the row's. */
  async currentLog(id: string): Promise<EventLog | null> {
    const run = this.runs.get(id);
    if (run) return run.log;
    const row = await this.get(id);
    return row ? logOf(row) : null;
  }

  /**
   * Takes the task's one stream: when it is free, its hold lapsed, or its holder is a connection
   * of ours that has gone; or, for a client resuming with Last-Event-ID (`takeOver`), from a live
   * holder, which is ended. The holder id; `gone` when the task no longer exists; undefined when
   * another live connection holds it (answered at once, without waiting).
   */
  async acquireStream(id: string, connection: StreamConnection, takeOver: boolean): Promise<string | 'gone' | undefined> {
    const holder = crypto.randomUUID();
    // Compare-and-set on the holder; a hold that changed in between (released, taken) is read again.
    for (let tries = 0; tries < 3; tries++) {
      const now = this.now();
      const previous = await this.sql.hold.first(id);
      if (!previous) return 'gone';
      const local = previous.stream_holder ? this.streams.get(previous.stream_holder) : undefined;
      const free = !previous.stream_holder || (previous.stream_lease_until ?? 0) < now || (local?.closed() ?? false);
      if (!free && !takeOver) return undefined;
      const lease = now + this.settings.streamLeaseMs;
      const taken = previous.stream_holder ? await this.sql.takeFrom.all(holder, lease, id, previous.stream_holder) : await this.sql.takeFree.all(holder, lease, id);
      if (taken.length !== 1) continue;
      this.streams.set(holder, connection);
      let byTask = this.streamsByTask.get(id);
      if (!byTask) this.streamsByTask.set(id, (byTask = new Map()));
      byTask.set(holder, { connection, since: ++this.reads });
      if (previous.stream_holder && !free) {
        if (local) local.end('takeover');
        else await this.signal(id, 'hold').catch(() => undefined);
      }
      return holder;
    }
    return undefined;
  }

  /**
   * Renews the holds of every stream of this process in one query (every third of a hold's
   * lease). A hold not renewed was taken by another connection, or its task is gone (deleted with
   * its user): the task's row is read for its streams, which end with `close` in the first case
   * and with the failed event of a task that no longer exists in the second.
   */
  private async renewStreams(): Promise<void> {
    const holders = [...this.streams.keys()];
    for (let i = 0; i < holders.length; i += READ_BATCH) {
      const batch = holders.slice(i, i + READ_BATCH);
      const kept = (await this.db('aideer_tasks').whereIn('stream_holder', batch).update({ stream_lease_until: this.now() + this.settings.streamLeaseMs }, ['stream_holder'])) as { stream_holder: string }[];
      const held = new Set(kept.map((r) => r.stream_holder));
      const lost = batch.filter((holder) => !held.has(holder));
      if (lost.length) for (const [id, byTask] of this.streamsByTask) if (lost.some((holder) => byTask.has(holder))) void this.refresh(id);
    }
  }

  async releaseStream(id: string, holder: string): Promise<void> {
    const byTask = this.streamsByTask.get(id);
    byTask?.delete(holder);
    if (byTask && !byTask.size) this.streamsByTask.delete(id);
    // Forgotten here only once released in the database: meanwhile a reconnecting client can take
    // over from this dead connection (see acquireStream).
    try {
      await this.sql.release.all(id, holder);
    } finally {
      this.streams.delete(holder);
    }
  }

  // ── claims and maintenance ──

  /**
   * Fails the tasks whose claim lapsed after their last allowed run; the final event's id follows
   * the last one their runner wrote.
   */
  async failExhausted(): Promise<number> {
    const now = this.now();
    const ids = (await this.db('aideer_tasks').select('id').whereIn('status', ACTIVE).andWhere('runner_lease_until', '<', now).andWhere('attempts', '>=', this.settings.maxAttempts)).map((r: { id: string }) => r.id);
    if (!ids.length) return 0;
    const reason = `The server running the task stopped ${this.settings.maxAttempts === 1 ? 'once' : `${this.settings.maxAttempts} times`} before it finished; create the task again`;
    const n = await this.db('aideer_tasks')
      .whereIn('id', ids)
      .whereIn('status', ACTIVE)
      .andWhere('runner_lease_until', '<', now)
      .update({ status: 'failed', error: reason, event_seq: this.db.raw('event_seq + 1'), ended_at: now, updated_at: now, runner_lease_until: null, runner_id: null });
    for (const id of ids) await this.signal(id, 0).catch(() => undefined);
    await Promise.all(ids.map((id) => this.refresh(id)));
    return n;
  }

  /** Claims tasks nobody holds (their server died, or they were stored while one drained). */
  async claimLapsed(): Promise<TaskRow[]> {
    if (this.draining) return [];
    const now = this.now();
    const lease = now + this.settings.runnerLeaseMs;
    let claimed: TaskRow[];
    if (this.postgres) {
      const result = await this.db.raw(
        `UPDATE aideer_tasks t SET runner_id = ?, runner_lease_until = ?, attempts = t.attempts + 1, updated_at = ?
         FROM (SELECT id FROM aideer_tasks
               WHERE status IN ('pending', 'running') AND (runner_lease_until IS NULL OR runner_lease_until < ?) AND attempts < ?
               ORDER BY created_at LIMIT ? FOR UPDATE SKIP LOCKED) c
         WHERE t.id = c.id RETURNING t.*`,
        [this.instanceId, lease, now, now, this.settings.maxAttempts, CLAIM_BATCH],
      );
      claimed = result.rows as TaskRow[];
    } else {
      const lapsed = (q: Knex.QueryBuilder) => q.whereIn('status', ACTIVE).andWhere((w) => w.whereNull('runner_lease_until').orWhere('runner_lease_until', '<', now)).andWhere('attempts', '<', this.settings.maxAttempts);
      const candidates = (await lapsed(this.db('aideer_tasks').select('id')).orderBy('created_at').limit(CLAIM_BATCH)) as { id: string }[];
      claimed = [];
      for (const { id } of candidates) {
        const n = await lapsed(this.db('aideer_tasks').where({ id })).update({ runner_id: this.instanceId, runner_lease_until: lease, attempts: this.db.raw('attempts + 1'), updated_at: now });
        if (n === 1) claimed.push((await this.db('aideer_tasks').where({ id }).first()) as TaskRow);
      }
    }
    for (const task of claimed) {
      this.deps.logger.info({ taskId: task.id, attempt: task.attempts }, 'task claimed; running it from its start');
      this.start(task);
    }
    return claimed;
  }

  /** Deletes tasks that ended more than the TTL ago. */
  async purge(): Promise<number> {
    return this.db('aideer_tasks').where('ended_at', '<', this.now() - this.settings.ttlMs).delete();
  }

  /** Renews the claims of this process's runs; a run whose claim another instance took stops. */
  private async heartbeat(): Promise<void> {
    const ids = [...this.runs.keys()];
    if (!ids.length) return;
    const n = await this.db('aideer_tasks').whereIn('id', ids).where({ runner_id: this.instanceId }).whereIn('status', ACTIVE).update({ runner_lease_until: this.now() + this.settings.runnerLeaseMs });
    if (n === ids.length) return;
    const kept = new Set((await this.db('aideer_tasks').select('id').whereIn('id', ids).where({ runner_id: this.instanceId })).map((r: { id: string }) => r.id));
    for (const id of ids) {
      const run = this.runs.get(id);
      if (run && !kept.has(id) && !run.log.final) {
        run.lost = true;
        run.controller.abort();
      }
    }
  }

  private async sweep(): Promise<void> {
    await this.heartbeat();
    await this.failExhausted();
    await this.claimLapsed();
    await this.purge();
  }

  /**
   * Starts listening for other instances' events (Postgres), then sweeps at once (a task left by a
   * stopped server is restarted or failed before anything is served) and every third of a lease.
   */
  async startMaintenance(): Promise<void> {
    if (this.postgres) {
      this.listener = new TaskListener(this.db.client.config.connection as string, {
        onSignal: (signal) => this.onSignal(signal),
        onReconnect: () => {
          for (const id of this.streamsByTask.keys()) void this.refresh(id);
        },
      }, this.deps.logger);
      await this.listener.start();
    }
    await this.sweep();
    this.renewTimer = setInterval(() => {
      this.renewStreams().catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'stream hold renewal failed'));
    }, Math.max(1000, Math.floor(this.settings.streamLeaseMs / 3)));
    this.renewTimer.unref();
    this.timer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'task maintenance failed'));
    }, Math.max(1000, Math.floor(this.settings.runnerLeaseMs / 3)));
    this.timer.unref();
  }

  /**
   * Stops starting or claiming tasks; lets running ones finish until `deadlineAt` (ms since the
   * epoch); then fails the rest at once with DRAIN_REASON. Streams of tasks run here end with the
   * final state and `event: close`; streams of tasks run by another instance end without one, for
   * their client to resume elsewhere.
   */
  async drain(deadlineAt: number): Promise<void> {
    this.draining = true;
    const left = deadlineAt - this.now();
    if (this.idle.size && left > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.idle]), new Promise((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
    }
    for (const run of this.runs.values()) {
      run.stopReason ??= DRAIN_REASON;
      run.controller.abort();
    }
    await Promise.allSettled([...this.idle]);
    // SQLite is one instance: a task stored unclaimed during the drain has nobody else to run it.
    if (!this.postgres) {
      const now = this.now();
      await this.db('aideer_tasks')
        .whereNull('runner_id')
        .whereIn('status', ACTIVE)
        .update({ status: 'failed', error: DRAIN_REASON, event_seq: this.db.raw('event_seq + 1'), ended_at: now, updated_at: now, runner_lease_until: null })
        .catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'tasks stored during the drain could not be failed; the next start-up restarts them'));
    }
    await Promise.all([...this.streamsByTask.keys()].map((id) => this.refresh(id)));
    for (const byTask of this.streamsByTask.values()) for (const { connection } of byTask.values()) connection.end('drain');
  }

  isDraining(): boolean {
    return this.draining;
  }

  /** Drains at once (running tasks fail), stops the sweep and the listener. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.renewTimer);
    await this.drain(this.now());
    await this.listener?.stop();
  }
}
