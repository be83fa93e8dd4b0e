// The streams of AIDeer tasks this process serves (A6): one per task at a time, held in the task's
// row so that every instance agrees who streams it. Streams of a task run here get its events as
// they happen; the others get them from the row, read once per batch of signals for all streams.
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { messageOf, type Logger } from '../../logger.ts';
import type { TaskSignal } from '../store/taskNotify.ts';
import type { TaskStore } from '../store/tasks.ts';
import type { TaskRow } from '../store/rows.ts';
import { logOf, type EventLog, type StreamConnection } from './taskEvents.ts';

/** How long signals are gathered into one read, and the most task ids one read asks for. */
const REFRESH_BATCH_MS = 20;
const READ_BATCH = 500;

/** A stream of ours holding a task, and the read count when it took the hold (an older row read cannot end it). */
type Held = { connection: StreamConnection; since: number };

export class TaskStreams {
  /** Streams this process serves, by task and by holder id. */
  private readonly byTask = new Map<string, Map<string, Held>>();
  private readonly holders = new Map<string, StreamConnection>();
  private readonly dirty = new Set<string>();
  private nextFlush?: Promise<void>;
  private flushing: Promise<void> = Promise.resolve();
  private reads = 0;

  /** `runLog`: the events of a task this process runs, undefined for the others. */
  constructor(
    private readonly store: TaskStore,
    private readonly runLog: (id: string) => EventLog | undefined,
    private readonly settings: { ttlMs: number; streamLeaseMs: number },
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The tasks that have a stream here. */
  taskIds(): string[] {
    return [...this.byTask.keys()];
  }

  /** Ends every stream at once (see StreamConnection.end). */
  endAll(why: 'takeover' | 'drain'): void {
    for (const streams of this.byTask.values()) for (const { connection } of streams.values()) connection.end(why);
  }

  /** Hands the task's events to this process's streams of it. */
  deliver(id: string, log: EventLog | null): void {
    const streams = this.byTask.get(id);
    if (streams) for (const { connection } of streams.values()) connection.update(log);
  }

  /**
   * Asks for the task's row to be read for this process's streams of it: their events (unless it
   * runs here, where they arrive as they happen), and whether each still holds the task. Reads are
   * batched: one query for every task signalled within REFRESH_BATCH_MS, so the queries per second
   * do not grow with the number of streams. Resolves once a read begun after the call is delivered.
   */
  refresh(id: string): Promise<void> {
    if (!this.byTask.get(id)?.size) return Promise.resolve();
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
    const ids = [...this.dirty].filter((id) => this.byTask.get(id)?.size);
    this.dirty.clear();
    const readAt = ++this.reads;
    for (let i = 0; i < ids.length; i += READ_BATCH) {
      const batch = ids.slice(i, i + READ_BATCH);
      let rows: TaskRow[];
      try {
        rows = await this.store.many(batch, this.now() - this.settings.ttlMs);
      } catch (err) {
        this.logger.warn({ err: messageOf(err) }, 'task event read failed; retrying');
        setTimeout(() => batch.forEach((id) => void this.refresh(id)), 1000).unref();
        continue;
      }
      const byId = new Map(rows.map((row) => [row.id, row]));
      for (const id of batch) {
        const row = byId.get(id);
        const log = this.runLog(id);
        for (const [holder, { connection, since }] of this.byTask.get(id) ?? []) {
          // A read that began before this stream took the hold may show the previous holder.
          if (row && since < readAt && row.stream_holder !== holder) connection.end('takeover');
          else connection.update(log ?? (row ? logOf(row) : null));
        }
      }
    }
  }

  onSignal(signal: TaskSignal): void {
    // Events of a task run here reached its streams already; a hold change is for everyone.
    if ('seq' in signal && this.runLog(signal.taskId) !== undefined) return;
    void this.refresh(signal.taskId);
  }

  /**
   * Takes the task's one stream: when it is free, its hold lapsed, or its holder is a connection
   * of ours that has gone; or, for a client resuming with Last-Event-ID (`takeOver`), from a live
   * holder, which is ended. The holder id; `gone` when the task no longer exists; `held` when
   * another live connection holds it (answered at once, without waiting).
   */
  async acquire(
    id: string,
    connection: StreamConnection,
    takeOver: boolean,
  ): Promise<{ holder: string } | 'gone' | 'held'> {
    const holder = crypto.randomUUID();
    // Compare-and-set on the holder; a hold that changed in between (released, taken) is read again.
    for (let tries = 0; tries < 3; tries++) {
      const now = this.now();
      const previous = await this.store.hold(id);
      if (!previous) return 'gone';
      const local = previous.stream_holder ? this.holders.get(previous.stream_holder) : undefined;
      const free = !previous.stream_holder || (previous.stream_lease_until ?? 0) < now || (local?.closed() ?? false);
      if (!free && !takeOver) return 'held';
      const lease = now + this.settings.streamLeaseMs;
      if (!(await this.store.takeHold(id, holder, lease, previous.stream_holder))) continue;
      this.holders.set(holder, connection);
      let byTask = this.byTask.get(id);
      if (!byTask) this.byTask.set(id, (byTask = new Map<string, Held>()));
      byTask.set(holder, { connection, since: ++this.reads });
      if (previous.stream_holder && !free) {
        if (local) local.end('takeover');
        else await this.store.signal(id, 'hold').catch(() => undefined);
      }
      return { holder };
    }
    return 'held';
  }

  /**
   * Renews the holds of every stream of this process in one query (every third of a hold's
   * lease). A hold not renewed was taken by another connection, or its task is gone (deleted with
   * its user): the task's row is read for its streams, which end with `close` in the first case
   * and with the failed event of a task that no longer exists in the second.
   */
  async renew(): Promise<void> {
    const holders = [...this.holders.keys()];
    for (let i = 0; i < holders.length; i += READ_BATCH) {
      const batch = holders.slice(i, i + READ_BATCH);
      const held = await this.store.renewHolds(batch, this.now() + this.settings.streamLeaseMs);
      const lost = batch.filter((holder) => !held.has(holder));
      if (lost.length)
        for (const [id, byTask] of this.byTask) if (lost.some((holder) => byTask.has(holder))) void this.refresh(id);
    }
  }

  async release(id: string, holder: string): Promise<void> {
    const byTask = this.byTask.get(id);
    byTask?.delete(holder);
    if (byTask && !byTask.size) this.byTask.delete(id);
    // Forgotten here only once released in the database: meanwhile a reconnecting client can take
    // over from this dead connection (see acquireStream).
    try {
      await this.store.releaseHold(id, holder);
    } finally {
      this.holders.delete(holder);
    }
  }
}
