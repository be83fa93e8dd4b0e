// AIDeer generation tasks (decisions A5–A7): rows in the database, run in the background by the
// instance that created them, charged once on success in the same transaction as their result.
//
// Leases make this safe with several instances on one database: the runner renews its task's
// lease while it works, so a task whose lease ran out belongs to a process that died and is marked
// failed (at start-up and by a periodic sweep); a stream holds a lease of its own, so a crashed
// server cannot keep a task's one stream connection forever.
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Knex } from 'knex';
import { forUpdate } from '../db.ts';
import { LlmError, type ChatMessage } from '../llm/index.ts';
import type { Logger } from '../logger.ts';
import type { Chats } from './chats.ts';
import { MULTIPLIERS, TITLE_MODEL, type ModelRouter, type PresetModel } from './models.ts';
import type { Users } from './users.ts';
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
}

/** What a stream sends: the cumulative text while running, then the final state. */
export interface TaskEvent {
  status: TaskStatus;
  content: string | null;
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
}

export const DEFAULT_TASK_SETTINGS: Pick<TaskSettings, 'progressWriteMs'> = {
  progressWriteMs: 250,
};

const ACTIVE: TaskStatus[] = ['pending', 'running'];
/** Why a task this server could not finish before it shut down failed. */
export const SHUTDOWN_FAILURE = 'The server shut down before the task finished; create the task again';
/** Event telling this process's streams that it shuts down (see Tasks.drain). */
const DRAINING = Symbol('draining');
const TITLE_MAX = 50;

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

export function eventOf(task: Pick<TaskRow, 'status' | 'content' | 'error'>): TaskEvent {
  if (task.status === 'failed') return { status: 'failed', content: task.error };
  return { status: task.status, content: task.content };
}

export class Tasks {
  private readonly events = new EventEmitter();
  /** Tasks this process is running, with the means to stop them. */
  private readonly running = new Map<string, AbortController>();
  private readonly latest = new Map<string, TaskEvent>();
  /** Streams this process serves, by holder id, to tell a dead connection from a live one. */
  private readonly streams = new Map<string, { closed(): boolean }>();
  private timer?: NodeJS.Timeout;
  private readonly idle = new Set<Promise<void>>();
  private draining = false;

  constructor(
    private readonly db: Knex,
    private readonly deps: { chats: Chats; users: Users; router: ModelRouter; logger: Logger },
    private readonly settings: TaskSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.events.setMaxListeners(0);
  }

  /** The task, unless it ended more than the TTL ago (then it is as good as purged). */
  async get(id: string): Promise<TaskRow | undefined> {
    return this.db('aideer_tasks')
      .where({ id })
      .andWhere((q) => q.whereNull('ended_at').orWhere('ended_at', '>', this.now() - this.settings.ttlMs))
      .first();
  }

  /**
   * Stores a pending task unless the user already has the maximum of active ones. The user's row
   * is locked for the count-then-insert (SQLite runs writers one at a time anyway).
   */
  async create(userId: number, chatId: string, type: TaskType): Promise<TaskRow | 'tooMany'> {
    const row = await this.db.transaction(async (trx) => {
      await forUpdate(trx, trx('aideer_users').select('id').where({ id: userId }));
      const active = await trx('aideer_tasks').where({ user_id: userId }).whereIn('status', ACTIVE).count({ n: '*' }).first();
      if (Number(active?.n ?? 0) >= this.settings.maxActivePerUser) return 'tooMany' as const;
      const now = this.now();
      const task: TaskRow = { id: crypto.randomUUID(), user_id: userId, chat_id: chatId, type, status: 'pending', content: null, error: null, created_at: now, updated_at: now, ended_at: null, runner_lease_until: now + this.settings.runnerLeaseMs, stream_holder: null, stream_lease_until: null };
      await trx('aideer_tasks').insert(task);
      return task;
    });
    if (row !== 'tooMany') this.start(row);
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

  private start(task: TaskRow): void {
    const controller = new AbortController();
    this.running.set(task.id, controller);
    // After the answer has gone out: the handler's caller sends it before the next turn.
    const run = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.run(task, controller.signal))
      .catch((err: unknown) => this.deps.logger.error({ err, taskId: task.id }, 'task runner failed'))
      .finally(async () => {
        this.running.delete(task.id);
        this.latest.delete(task.id);
        await this.announceEnd(task.id);
        this.idle.delete(run);
      });
    this.idle.add(run);
  }

  private async run(task: TaskRow, signal: AbortSignal): Promise<void> {
    if (this.draining) return this.fail(task.id, SHUTDOWN_FAILURE);
    try {
      const claimed = await this.db('aideer_tasks').where({ id: task.id, status: 'pending' }).update({ status: 'running', updated_at: this.now() });
      if (claimed !== 1) return;
      this.publish(task.id, { status: 'running', content: null });
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
        const progress = this.progressWriter(task.id);
        let text = '';
        for await (const delta of stream) {
          text += delta;
          progress(text);
        }
        const result = await stream.result();
        await this.finish(task, result.text, result.usage.total_tokens * MULTIPLIERS[model], 'Chat generation', (trx) => this.deps.chats.appendAssistantMessage(trx, task.chat_id, result.text));
      } else {
        // The instruction goes last, as a system message: the model answers with the title (and
        // the offline `echo` model, which repeats the last user message, gives a sensible one).
        const messages: ChatMessage[] = [...context.messages, { role: 'system', content: this.settings.titlePrompt }];
        const result = await this.deps.router.route(TITLE_MODEL).provider.chat(messages, { model: TITLE_MODEL, max_tokens: 100 }, { signal }).result();
        const title = [...result.text.replace(/\s+/g, ' ').trim().replace(/^["'“”「」《》]+|["'“”「」《》]+$/g, '')].slice(0, TITLE_MAX).join('') || '闲聊';
        await this.finish(task, title, result.usage.total_tokens, 'Title generation', (trx) => this.deps.chats.setTitle(trx, task.chat_id, title));
      }
    } catch (err) {
      if (!(err instanceof TaskFailure) && !(err instanceof LlmError)) this.deps.logger.error({ err, taskId: task.id }, 'task failed');
      else this.deps.logger.info({ taskId: task.id, reason: failureText(err) }, 'task failed');
      await this.fail(task.id, failureText(err));
    }
  }

  /** Publishes every delta at once; writes the growing text to the database now and then. */
  private progressWriter(id: string): (text: string) => void {
    let lastWrite = 0;
    let writing: Promise<unknown> = Promise.resolve();
    return (text) => {
      this.publish(id, { status: 'running', content: text });
      const now = this.now();
      if (now - lastWrite < this.settings.progressWriteMs) return;
      lastWrite = now;
      writing = writing.then(() => this.db('aideer_tasks').where({ id, status: 'running' }).update({ content: text, updated_at: this.now() })).catch(() => undefined);
    };
  }

  /**
   * The result, the charge with its record and `finished`, in one transaction; then the event.
   * The record's unique task id makes a second charge impossible, whatever happens.
   */
  private async finish(task: TaskRow, text: string, cost: number, what: string, apply: (trx: Knex) => Promise<boolean>): Promise<void> {
    const now = this.now();
    await this.db.transaction(async (trx) => {
      if (!(await apply(trx))) throw new TaskFailure('The chat no longer exists');
      await this.deps.users.changeCredits(trx, task.user_id, -cost, `Consume: ${what}, chat_id: ${task.chat_id}, task_id: ${task.id}`, task.id);
      const done = await trx('aideer_tasks').where({ id: task.id, status: 'running' }).update({ status: 'finished', content: text, ended_at: now, updated_at: now, runner_lease_until: null });
      if (done !== 1) throw new TaskFailure('The task was stopped');
    });
    this.publish(task.id, { status: 'finished', content: text });
  }

  /**
   * Tells this process's streams how the run ended, whatever ended it: the task may have been
   * failed or purged elsewhere (another instance's sweep, its user deleted) without an event here.
   * A stream that already got its final event ignores this one.
   */
  private async announceEnd(id: string): Promise<void> {
    const row = await this.get(id).catch(() => undefined);
    this.publish(id, row && !ACTIVE.includes(row.status) ? eventOf(row) : { status: 'failed', content: row ? 'The task was stopped' : 'The task no longer exists' });
  }

  private async fail(id: string, reason: string): Promise<void> {
    const now = this.now();
    const n = await this.db('aideer_tasks').where({ id }).whereIn('status', ACTIVE).update({ status: 'failed', error: reason, ended_at: now, updated_at: now, runner_lease_until: null });
    if (n === 1) this.publish(id, { status: 'failed', content: reason });
  }

  // ── events and streams ──

  private publish(id: string, event: TaskEvent): void {
    if (this.running.has(id)) this.latest.set(id, event);
    this.events.emit(id, event);
  }

  /** The newest state of a task this process runs (fresher than the database's copy of the text). */
  latestEvent(id: string): TaskEvent | undefined {
    return this.latest.get(id);
  }

  /** Whether this process runs the task (then its events arrive here as they happen). */
  runsHere(id: string): boolean {
    return this.running.has(id);
  }

  subscribe(id: string, listener: (event: TaskEvent) => void): () => void {
    this.events.on(id, listener);
    return () => this.events.off(id, listener);
  }

  /**
   * Takes the task's one stream, if free (or held by a connection of ours that has gone): the
   * holder id, `gone` when the task no longer exists, undefined when another connection holds it.
   */
  async acquireStream(id: string, connection: { closed(): boolean }): Promise<string | 'gone' | undefined> {
    const holder = crypto.randomUUID();
    // A client that drops its stream and reconnects at once can be faster than this server noticing
    // the drop and releasing the hold: while the holder is one of our connections that is closed
    // (or closing), wait a moment for it to let go, then take over.
    for (let waited = 0; ; waited += 10) {
      const now = this.now();
      const previous = (await this.db('aideer_tasks').select('stream_holder', 'stream_lease_until').where({ id }).first()) as Pick<TaskRow, 'stream_holder' | 'stream_lease_until'> | undefined;
      if (!previous) return 'gone';
      const local = previous.stream_holder ? this.streams.get(previous.stream_holder) : undefined;
      const free = !previous.stream_holder || (previous.stream_lease_until ?? 0) < now || (local?.closed() ?? false);
      if (free) {
        const taken = await this.db('aideer_tasks')
          .where({ id })
          .andWhere((q) => (previous.stream_holder ? q.where('stream_holder', previous.stream_holder).orWhereNull('stream_holder') : q.whereNull('stream_holder')))
          .update({ stream_holder: holder, stream_lease_until: now + this.settings.streamLeaseMs });
        if (taken === 1) {
          this.streams.set(holder, connection);
          return holder;
        }
      }
      if (!local || waited >= 250) return undefined;
      await sleep(10);
    }
  }

  async renewStream(id: string, holder: string): Promise<void> {
    await this.db('aideer_tasks').where({ id, stream_holder: holder }).update({ stream_lease_until: this.now() + this.settings.streamLeaseMs });
  }

  async releaseStream(id: string, holder: string): Promise<void> {
    // Forgotten here only once released in the database: meanwhile a reconnecting client can take
    // over from this dead connection (see acquireStream).
    try {
      await this.db('aideer_tasks').where({ id, stream_holder: holder }).update({ stream_holder: null, stream_lease_until: null });
    } finally {
      this.streams.delete(holder);
    }
  }

  // ── maintenance ──

  /** Fails the tasks whose runner stopped renewing its lease (its process died). */
  async recover(): Promise<number> {
    const now = this.now();
    return this.db('aideer_tasks')
      .whereIn('status', ACTIVE)
      .andWhere('runner_lease_until', '<', now)
      .update({ status: 'failed', error: 'The server stopped while the task was running', ended_at: now, updated_at: now, runner_lease_until: null });
  }

  /** Deletes tasks that ended more than the TTL ago. */
  async purge(): Promise<number> {
    return this.db('aideer_tasks').where('ended_at', '<', this.now() - this.settings.ttlMs).delete();
  }

  private async heartbeat(): Promise<void> {
    const ids = [...this.running.keys()];
    if (ids.length) await this.db('aideer_tasks').whereIn('id', ids).whereIn('status', ACTIVE).update({ runner_lease_until: this.now() + this.settings.runnerLeaseMs });
  }

  /** Recovers at once, then keeps leases fresh, recovers and purges every third of a lease. */
  async startMaintenance(): Promise<void> {
    const failed = await this.recover();
    if (failed) this.deps.logger.warn({ failed }, 'tasks left running by a stopped server were marked failed');
    await this.purge();
    this.timer = setInterval(() => {
      this.heartbeat()
        .then(() => this.recover())
        .then(() => this.purge())
        .catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'task maintenance failed'));
    }, Math.max(1000, Math.floor(this.settings.runnerLeaseMs / 3)));
    this.timer.unref();
  }

  /**
   * Shutdown, this process's part: starts and claims no task from now on; waits for the tasks it
   * runs until `deadlineAt` (ms since the epoch); then fails the ones still active at once with
   * SHUTDOWN_FAILURE. Every stream this process serves ends with the task's current state (final,
   * when the task ran here) and `event: close`: a stream of a task run elsewhere at once, the others
   * as their task ends. Resolves when no task of this process is left running.
   */
  async drain(deadlineAt: number): Promise<void> {
    this.draining = true;
    this.events.emit(DRAINING);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadlineAt - this.now()))));
    await Promise.race([Promise.allSettled([...this.idle]), deadline]);
    clearTimeout(timer);
    const late = [...this.running.entries()];
    // Failed first, so the runner's own ending (aborted) finds nothing left to fail.
    await Promise.allSettled(late.map(([id]) => this.fail(id, SHUTDOWN_FAILURE)));
    for (const [, controller] of late) controller.abort();
    await Promise.allSettled([...this.idle]);
    this.events.emit(DRAINING);
  }

  /** Calls `listener` when this process starts to shut down, and again once its tasks have ended. */
  onDrain(listener: () => void): () => void {
    this.events.on(DRAINING, listener);
    if (this.draining) queueMicrotask(listener);
    return () => this.events.off(DRAINING, listener);
  }

  /** Stops the sweep and the tasks this process runs (they end as failed), and waits for them. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const controller of this.running.values()) controller.abort();
    await Promise.allSettled([...this.idle]);
  }
}
