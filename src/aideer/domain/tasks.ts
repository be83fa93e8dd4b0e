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
import { LlmError } from '../../llm/index.ts';
import { messageOf, type Logger } from '../../logger.ts';
import type { ChatStore } from '../store/chats.ts';
import type { ModelRouter } from './models.ts';
import { failureText, generate, TaskFailure, type Generated } from './generation.ts';
import type { CreditStore } from '../store/credits.ts';
import type { TaskListener } from '../store/taskNotify.ts';
import type { RunState, TaskStore } from '../store/tasks.ts';
import type { components } from '../../../generated/aideer.ts';
import type { TaskRow, TaskStatus, TaskType, UserRow } from '../store/rows.ts';
import { isAdmin } from './access.ts';
import { lastId, logOf, type EventLog, type StreamConnection, type TaskEvent } from './taskEvents.ts';
import { TaskStreams } from './taskStreams.ts';

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
/** Most lapsed tasks one instance claims per sweep, so a crowd of orphans spreads over instances. */
const CLAIM_BATCH = 20;

export const DRAIN_REASON = 'The server shut down before the task finished; create the task again';

/** The run's state as the row keeps it. */
function stateOf(log: EventLog): RunState {
  return { text: log.text, marks: JSON.stringify(log.marks), seq: lastId(log) };
}

interface Run {
  controller: AbortController;
  log: EventLog;
  /** Why the run was stopped from outside: shown to the client, or `lost` when another instance took the claim. */
  stopReason?: string;
  lost?: boolean;
}

export class Tasks {
  /** Tasks this process runs. */
  private readonly runs = new Map<string, Run>();
  /** The streams this process serves. */
  private readonly streams: TaskStreams;
  private renewTimer?: NodeJS.Timeout;
  private timer?: NodeJS.Timeout;
  private listener?: TaskListener;
  private readonly idle = new Set<Promise<void>>();
  private draining = false;
  /** Writes of a run's growing text to the database, for benchmarks and tests. */
  progressWrites = 0;

  constructor(
    private readonly store: TaskStore,
    private readonly deps: { chats: ChatStore; credits: CreditStore; router: ModelRouter; logger: Logger },
    private readonly settings: TaskSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.streams = new TaskStreams(store, (id) => this.runs.get(id)?.log, settings, deps.logger, now);
  }

  /** See TaskStreams.acquire. */
  acquireStream(
    id: string,
    connection: StreamConnection,
    takeOver: boolean,
  ): Promise<{ holder: string } | 'gone' | 'held'> {
    return this.streams.acquire(id, connection, takeOver);
  }

  releaseStream(id: string, holder: string): Promise<void> {
    return this.streams.release(id, holder);
  }

  /** The task, unless it ended more than the TTL ago (then it is as good as purged). */
  async get(id: string): Promise<TaskRow | undefined> {
    return this.store.get(id, this.now() - this.settings.ttlMs);
  }

  /**
   * A new task of the caller on their own chat, or why not, in the original's order of checks:
   * credits (admins need none), the chat, its owner, the type (A5).
   */
  async create(
    caller: UserRow,
    chatId: string,
    type: components['schemas']['TaskType'],
  ): Promise<TaskRow | 'noCredits' | 'chatNotFound' | 'forbidden' | 'unsupported' | 'tooMany'> {
    if (caller.credits_left <= 0 && !isAdmin(caller)) return 'noCredits';
    const chat = await this.deps.chats.byId(chatId);
    if (!chat) return 'chatNotFound';
    if (chat.owner_id !== caller.id) return 'forbidden';
    if (type === 'image_generation') return 'unsupported';
    return this.insert(caller.id, chatId, type);
  }

  /**
   * Stores a pending task, claimed by this process, unless the user already has the maximum of
   * active ones. The user's row is locked for the count-then-insert (SQLite runs writers one at a
   * time anyway). While draining, the task is stored unclaimed, for another instance to take.
   */
  private async insert(userId: number, chatId: string, type: TaskType): Promise<TaskRow | 'tooMany'> {
    const claim = !this.draining;
    const now = this.now();
    const task: TaskRow = {
      id: crypto.randomUUID(),
      user_id: userId,
      chat_id: chatId,
      type,
      status: 'pending',
      content: null,
      error: null,
      created_at: now,
      updated_at: now,
      ended_at: null,
      runner_lease_until: claim ? now + this.settings.runnerLeaseMs : null,
      runner_id: claim ? this.store.runnerId : null,
      attempts: claim ? 1 : 0,
      stream_holder: null,
      stream_lease_until: null,
      event_seq: 0,
      run_first_seq: 1,
      event_marks: null,
    };
    const row = await this.store.insertUnderCap(task, this.settings.maxActivePerUser);
    if (row !== 'tooMany' && claim) this.start(row);
    return row;
  }

  /** Forgets a finished or failed task. */
  async delete(id: string): Promise<'ok' | 'notFound' | TaskStatus> {
    const task = await this.get(id);
    if (!task) return 'notFound';
    if (ACTIVE.includes(task.status)) return task.status;
    await this.store.deleteEnded(id);
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
          await this.streams.refresh(task.id);
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
      const text = run.log.marks.length ? '' : null;
      const began = await this.store.begin(task.id, run.log.firstSeq, { ...stateOf(run.log), text }, this.now());
      if (!began) {
        run.lost = true;
        return;
      }
      if (run.log.marks.length) await this.signal(task.id, lastId(run.log));
      this.streams.deliver(task.id, run.log);
      const progress = this.progressWriter(task.id, run);
      const result = await generate(task, { ...this.deps, titlePrompt: this.settings.titlePrompt }, signal, {
        delta: (delta) => {
          run.log.text += delta;
          run.log.marks.push(run.log.text.length);
          progress.changed();
        },
        end: () => progress.stop(),
      });
      await this.finish(task, run, result);
    } catch (err) {
      if (run.lost)
        return void this.deps.logger.info({ taskId: task.id }, 'task claimed by another instance; this run stops');
      const reason = run.stopReason ?? failureText(err);
      if (!run.stopReason && !(err instanceof TaskFailure) && !(err instanceof LlmError))
        this.deps.logger.error({ err, taskId: task.id }, 'task failed');
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
      writing = writing
        .then(async () => {
          const seq = lastId(run.log);
          if (seq === written || run.log.final) return;
          this.progressWrites++;
          const wrote = await this.store.progress(id, stateOf(run.log), this.now());
          written = seq;
          if (wrote) await this.signal(id, seq);
        })
        .catch((err: unknown) =>
          this.deps.logger.warn({ err: messageOf(err), taskId: id }, 'task progress write failed'),
        );
    };
    return {
      changed: () => {
        this.streams.deliver(id, run.log);
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
  private async finish(task: TaskRow, run: Run, { text, cost, what, apply }: Generated): Promise<void> {
    const now = this.now();
    const final: TaskEvent = { id: lastId(run.log) + 1, status: 'finished', content: text };
    await this.store.transaction(async (trx) => {
      if (!(await apply(trx))) throw new TaskFailure('The chat no longer exists');
      await this.deps.credits.change(
        trx,
        task.user_id,
        -cost,
        `Consume: ${what}, chat_id: ${task.chat_id}, task_id: ${task.id}`,
        task.id,
      );
      const done = await this.store.finish(
        trx,
        task.id,
        { text, marks: JSON.stringify(run.log.marks), seq: final.id },
        now,
      );
      if (!done) throw new TaskFailure('The task was stopped');
      await this.store.signal(task.id, final.id, trx);
    });
    run.log.final = final;
    this.streams.deliver(task.id, run.log);
  }

  /** Fails a run of ours, keeping its events (the text streamed so far) rebuildable. */
  private async fail(id: string, run: Run, reason: string): Promise<void> {
    const now = this.now();
    const final: TaskEvent = { id: lastId(run.log) + 1, status: 'failed', content: reason };
    if (!(await this.store.fail(id, reason, { ...stateOf(run.log), seq: final.id }, now))) return;
    run.log.final = final;
    await this.signal(id, final.id).catch(() => undefined);
    this.streams.deliver(id, run.log);
  }

  // ── events and streams ──

  /** Tells the other instances (Postgres only; SQLite is one instance). */
  private async signal(id: string, what: number | 'hold'): Promise<void> {
    await this.store.signal(id, what);
  }

  /** The task's events as this process knows them best: its own run's, or the row's. */
  async currentLog(id: string): Promise<EventLog | null> {
    const run = this.runs.get(id);
    if (run) return run.log;
    const row = await this.get(id);
    return row ? logOf(row) : null;
  }

  // ── claims and maintenance ──

  /**
   * Fails the tasks whose claim lapsed after their last allowed run; the final event's id follows
   * the last one their runner wrote.
   */
  async failExhausted(): Promise<number> {
    const now = this.now();
    const { maxAttempts } = this.settings;
    const reason = `The server running the task stopped ${maxAttempts === 1 ? 'once' : `${maxAttempts} times`} before it finished; create the task again`;
    const { ids, failed } = await this.store.failExhausted(now, maxAttempts, reason);
    for (const id of ids) await this.signal(id, 0).catch(() => undefined);
    await Promise.all(ids.map((id) => this.streams.refresh(id)));
    return failed;
  }

  /** Claims tasks nobody holds (their server died, or they were stored while one drained). */
  async claimLapsed(): Promise<TaskRow[]> {
    if (this.draining) return [];
    const now = this.now();
    const lease = now + this.settings.runnerLeaseMs;
    const claimed = await this.store.claimLapsed(now, lease, this.settings.maxAttempts, CLAIM_BATCH);
    for (const task of claimed) {
      this.deps.logger.info({ taskId: task.id, attempt: task.attempts }, 'task claimed; running it from its start');
      this.start(task);
    }
    return claimed;
  }

  /** Deletes tasks that ended more than the TTL ago. */
  async purge(): Promise<number> {
    return this.store.purge(this.now() - this.settings.ttlMs);
  }

  /** Renews the claims of this process's runs; a run whose claim another instance took stops. */
  private async heartbeat(): Promise<void> {
    const ids = [...this.runs.keys()];
    if (!ids.length) return;
    const kept = await this.store.renewClaims(ids, this.now() + this.settings.runnerLeaseMs);
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
    if (this.store.shared) {
      this.listener = this.store.listen(
        {
          onSignal: (signal) => this.streams.onSignal(signal),
          onReconnect: () => {
            for (const id of this.streams.taskIds()) void this.streams.refresh(id);
          },
        },
        this.deps.logger,
      );
      await this.listener.start();
    }
    await this.sweep();
    this.renewTimer = setInterval(
      () => {
        this.streams
          .renew()
          .catch((err: unknown) => this.deps.logger.warn({ err: messageOf(err) }, 'stream hold renewal failed'));
      },
      Math.max(1000, Math.floor(this.settings.streamLeaseMs / 3)),
    );
    this.renewTimer.unref();
    this.timer = setInterval(
      () => {
        this.sweep().catch((err: unknown) => this.deps.logger.warn({ err: messageOf(err) }, 'task maintenance failed'));
      },
      Math.max(1000, Math.floor(this.settings.runnerLeaseMs / 3)),
    );
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
      await Promise.race([
        Promise.allSettled([...this.idle]),
        new Promise((resolve) => (timer = setTimeout(resolve, left))),
      ]);
      clearTimeout(timer);
    }
    for (const run of this.runs.values()) {
      run.stopReason ??= DRAIN_REASON;
      run.controller.abort();
    }
    await Promise.allSettled([...this.idle]);
    // SQLite is one instance: a task stored unclaimed during the drain has nobody else to run it.
    if (!this.store.shared) {
      await this.store
        .failUnclaimed(DRAIN_REASON, this.now())
        .catch((err: unknown) =>
          this.deps.logger.warn(
            { err: messageOf(err) },
            'tasks stored during the drain could not be failed; the next start-up restarts them',
          ),
        );
    }
    await Promise.all(this.streams.taskIds().map((id) => this.streams.refresh(id)));
    this.streams.endAll('drain');
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
