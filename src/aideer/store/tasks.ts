// AIDeer tasks (A5–A7): the only module that reads or writes `aideer_tasks`, and the one that
// sends and hears their signals between instances (taskNotify.ts). Writes made by a runner name
// it (`runner_id`), so a run that lost its claim changes nothing; each answers whether it did.
import type { Knex } from 'knex';
import type pg from 'pg';
import { forUpdate, isPostgres, knexSettings, prepare, type Prepared } from '../../db.ts';
import type { Logger } from '../../logger.ts';
import { notifyTask, TaskListener, type TaskSignal } from './taskNotify.ts';
import type { TaskRow, TaskStatus } from './rows.ts';

const ACTIVE: TaskStatus[] = ['pending', 'running'];

/** The state of a run as written with an event: the text so far and its length at each running event. */
export interface RunState {
  text: string;
  /** JSON of the marks. */
  marks: string;
  /** The id of the last event. */
  seq: number;
}

const CLAIM_LAPSED_PG_SQL = `UPDATE aideer_tasks t SET runner_id = ?, runner_lease_until = ?, attempts = t.attempts + 1, updated_at = ?
  FROM (SELECT id FROM aideer_tasks
        WHERE status IN ('pending', 'running') AND (runner_lease_until IS NULL OR runner_lease_until < ?) AND attempts < ?
        ORDER BY created_at LIMIT ? FOR UPDATE SKIP LOCKED) c
  WHERE t.id = c.id RETURNING t.*`;

/** The columns a run's end writes, whatever the outcome: its last events, and no runner any more. */
function ended(state: RunState, now: number) {
  const { text: content, marks: event_marks, seq: event_seq } = state;
  return { content, event_marks, event_seq, ended_at: now, updated_at: now, runner_lease_until: null, runner_id: null };
}

export class TaskStore {
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

  /** `runnerId`: this process's name in the claims it holds. */
  constructor(
    private readonly db: Knex,
    readonly runnerId: string,
  ) {
    this.sql = {
      get: prepare(db, 'SELECT * FROM aideer_tasks WHERE id = ? AND (ended_at IS NULL OR ended_at > ?)'),
      progress: prepare(
        db,
        "UPDATE aideer_tasks SET content = ?, event_marks = ?, event_seq = ?, updated_at = ? WHERE id = ? AND status = 'running' AND runner_id = ? RETURNING id",
      ),
      hold: prepare(db, 'SELECT stream_holder, stream_lease_until FROM aideer_tasks WHERE id = ?'),
      takeFree: prepare(
        db,
        'UPDATE aideer_tasks SET stream_holder = ?, stream_lease_until = ? WHERE id = ? AND stream_holder IS NULL RETURNING id',
      ),
      takeFrom: prepare(
        db,
        'UPDATE aideer_tasks SET stream_holder = ?, stream_lease_until = ? WHERE id = ? AND stream_holder = ? RETURNING id',
      ),
      release: prepare(
        db,
        'UPDATE aideer_tasks SET stream_holder = NULL, stream_lease_until = NULL WHERE id = ? AND stream_holder = ? RETURNING id',
      ),
    };
  }

  /** Several instances share the table (Postgres); SQLite is one instance. */
  get shared(): boolean {
    return isPostgres(this.db);
  }

  /** The task, unless it ended at or before `endedBefore`. */
  get(id: string, endedBefore: number): Promise<TaskRow | undefined> {
    return this.sql.get.first(id, endedBefore);
  }

  /** The tasks among `ids` that have not ended at or before `endedBefore`. */
  many(ids: string[], endedBefore: number): Promise<TaskRow[]> {
    return this.db('aideer_tasks')
      .whereIn('id', ids)
      .andWhere((q) => {
        q.whereNull('ended_at').orWhere('ended_at', '>', endedBefore);
      });
  }

  /**
   * Stores the task unless its user has `cap` active ones. The user's row is locked for the
   * count-then-insert (SQLite runs writers one at a time anyway).
   */
  async insertUnderCap(task: TaskRow, cap: number): Promise<TaskRow | 'tooMany'> {
    return this.db.transaction(async (trx) => {
      await forUpdate(trx, trx('aideer_users').select('id').where({ id: task.user_id }));
      const active = await trx('aideer_tasks')
        .where({ user_id: task.user_id })
        .whereIn('status', ACTIVE)
        .count({ n: '*' })
        .first();
      if (Number(active?.n ?? 0) >= cap) return 'tooMany' as const;
      await trx('aideer_tasks').insert(task);
      return task;
    });
  }

  /** Deletes the task if it has ended. */
  async deleteEnded(id: string): Promise<void> {
    await this.db('aideer_tasks').where({ id }).whereNotIn('status', ACTIVE).delete();
  }

  /** Marks a claimed task running, with the run's first events; false when the claim was lost. */
  async begin(
    id: string,
    firstSeq: number,
    state: Omit<RunState, 'text'> & { text: string | null },
    now: number,
  ): Promise<boolean> {
    const n = await this.db('aideer_tasks').where({ id, runner_id: this.runnerId }).whereIn('status', ACTIVE).update({
      status: 'running',
      updated_at: now,
      content: state.text,
      event_marks: state.marks,
      run_first_seq: firstSeq,
      event_seq: state.seq,
    });
    return n === 1;
  }

  /** Writes a run's growing text; false when the run lost its claim or the task is gone. */
  async progress(id: string, state: RunState, now: number): Promise<boolean> {
    return (await this.sql.progress.all(state.text, state.marks, state.seq, now, id, this.runnerId)).length === 1;
  }

  /** Runs `work` in one transaction (finishing a task writes the chat, the charge and the task together). */
  transaction<T>(work: (trx: Knex) => Promise<T>): Promise<T> {
    return this.db.transaction(work);
  }

  /** Ends a run of ours as finished, in the caller's transaction; false when its claim was lost. */
  async finish(trx: Knex, id: string, state: RunState, now: number): Promise<boolean> {
    const n = await trx('aideer_tasks')
      .where({ id, status: 'running', runner_id: this.runnerId })
      .update({ status: 'finished', ...ended(state, now) });
    return n === 1;
  }

  /** Ends a run of ours as failed; false when its claim was lost or the task is gone. */
  async fail(id: string, reason: string, state: RunState, now: number): Promise<boolean> {
    const n = await this.db('aideer_tasks')
      .where({ id, runner_id: this.runnerId })
      .whereIn('status', ACTIVE)
      .update({ status: 'failed', error: reason, ...ended(state, now) });
    return n === 1;
  }

  /** Tells every instance (Postgres; nothing on SQLite); in a transaction, once it commits. */
  async signal(id: string, what: number | 'hold', trx: Knex = this.db): Promise<void> {
    if (this.shared) await notifyTask(trx, id, what);
  }

  /** Hears other instances' signals on one connection (Postgres only). */
  listen(handlers: { onSignal(signal: TaskSignal): void; onReconnect(): void }, logger: Logger): TaskListener {
    // Knex keeps the settings it was made with (its client is untyped): the URL or pg's own config object.
    const { connection } = knexSettings(this.db);
    if (typeof connection !== 'string' && !isObject(connection))
      throw new Error('listen: no Postgres connection settings');
    return new TaskListener(connection, handlers, logger);
  }

  // ── stream holds ──

  hold(id: string): Promise<Pick<TaskRow, 'stream_holder' | 'stream_lease_until'> | undefined> {
    return this.sql.hold.first(id);
  }

  /** Takes the hold for `holder` if nobody has it, or if `from` still has it; false when it changed meanwhile. */
  async takeHold(id: string, holder: string, leaseUntil: number, from: string | null): Promise<boolean> {
    const taken = from
      ? await this.sql.takeFrom.all(holder, leaseUntil, id, from)
      : await this.sql.takeFree.all(holder, leaseUntil, id);
    return taken.length === 1;
  }

  async releaseHold(id: string, holder: string): Promise<void> {
    await this.sql.release.all(id, holder);
  }

  /** Renews the holds of these holders in one query; answers the holders still holding. */
  async renewHolds(holders: string[], leaseUntil: number): Promise<Set<string>> {
    const kept = await this.db('aideer_tasks')
      .whereIn('stream_holder', holders)
      .update({ stream_lease_until: leaseUntil }, ['stream_holder']);
    return new Set(kept.flatMap((r) => (r.stream_holder ? [r.stream_holder] : [])));
  }

  // ── claims ──

  /** Renews this runner's claims on these tasks; answers the ids still claimed by it. */
  async renewClaims(ids: string[], leaseUntil: number): Promise<Set<string>> {
    const n = await this.db('aideer_tasks')
      .whereIn('id', ids)
      .where({ runner_id: this.runnerId })
      .whereIn('status', ACTIVE)
      .update({ runner_lease_until: leaseUntil });
    if (n === ids.length) return new Set(ids);
    const kept = await this.db('aideer_tasks').select('id').whereIn('id', ids).where({ runner_id: this.runnerId });
    return new Set(kept.map((r) => r.id));
  }

  /**
   * Fails the active tasks whose claim lapsed before `now` after `maxAttempts` runs; the final
   * event's id follows the last one their runner wrote. Answers the ids it looked at, and how many
   * it failed (one may have been claimed meanwhile).
   */
  async failExhausted(now: number, maxAttempts: number, reason: string): Promise<{ ids: string[]; failed: number }> {
    const rows = await this.db('aideer_tasks')
      .select('id')
      .whereIn('status', ACTIVE)
      .andWhere('runner_lease_until', '<', now)
      .andWhere('attempts', '>=', maxAttempts);
    const ids = rows.map((r) => r.id);
    if (!ids.length) return { ids, failed: 0 };
    const failed = await this.db('aideer_tasks')
      .whereIn('id', ids)
      .whereIn('status', ACTIVE)
      .andWhere('runner_lease_until', '<', now)
      .update(this.failedWhereItStands(reason, now));
    return { ids, failed };
  }

  /**
   * Claims up to `batch` active tasks whose claim lapsed before `now` (or that nobody claimed) and
   * that have had fewer than `maxAttempts` runs, oldest first; answers them as claimed.
   */
  async claimLapsed(now: number, leaseUntil: number, maxAttempts: number, batch: number): Promise<TaskRow[]> {
    if (this.shared) {
      // Instances claiming at once skip each other's rows rather than wait for them.
      const result = await this.db.raw<{ rows: TaskRow[] }>(CLAIM_LAPSED_PG_SQL, [
        this.runnerId,
        leaseUntil,
        now,
        now,
        maxAttempts,
        batch,
      ]);
      return result.rows;
    }
    const lapsed = (q: Knex.QueryBuilder) => {
      void q
        .whereIn('status', ACTIVE)
        .andWhere((w) => void w.whereNull('runner_lease_until').orWhere('runner_lease_until', '<', now))
        .andWhere('attempts', '<', maxAttempts);
    };
    const candidates = await this.db('aideer_tasks').where(lapsed).select('id').orderBy('created_at').limit(batch);
    const claimed: TaskRow[] = [];
    for (const { id } of candidates) {
      const n = await this.db('aideer_tasks')
        .where({ id })
        .andWhere(lapsed)
        .update({
          runner_id: this.runnerId,
          runner_lease_until: leaseUntil,
          attempts: this.db.raw('attempts + 1'),
          updated_at: now,
        });
      const row = n === 1 ? await this.db('aideer_tasks').where({ id }).first() : undefined;
      if (row) claimed.push(row);
    }
    return claimed;
  }

  /** Fails the active tasks nobody claimed (stored while this single instance drained). */
  async failUnclaimed(reason: string, now: number): Promise<void> {
    await this.db('aideer_tasks')
      .whereNull('runner_id')
      .whereIn('status', ACTIVE)
      .update(this.failedWhereItStands(reason, now));
  }

  /**
   * The columns a task failed by no run of ours takes (its runner is gone, or it never had one):
   * the text and events it has stay, and the final event's id follows the last one written.
   */
  private failedWhereItStands(reason: string, now: number) {
    const event_seq = this.db.raw('event_seq + 1');
    return {
      status: 'failed' as const,
      error: reason,
      event_seq,
      ended_at: now,
      updated_at: now,
      runner_lease_until: null,
      runner_id: null,
    };
  }

  /** Deletes tasks that ended before `endedBefore`. */
  purge(endedBefore: number): Promise<number> {
    return this.db('aideer_tasks').where('ended_at', '<', endedBefore).delete();
  }
}

/** pg's ClientConfig has only optional fields: any object is one. */
function isObject(value: unknown): value is pg.ClientConfig {
  return typeof value === 'object' && value !== null;
}
