// One-API subscriptions (decisions O8, O10): the only module that reads or writes
// oneapi_subscriptions. A deleted subscription is removed; (user_id, topic_name) is unique, so a
// user has at most one subscription per name whatever the timing of their requests.
import type { Knex } from 'knex';
import { uniqueViolation } from '../dbErrors.ts';
import type { components } from '../../generated/oneapi.ts';
import { iso } from '../time.ts';
import type { Refusal } from './envelope.ts';
import type { Page } from './paging.ts';

export type Subscription = components['schemas']['Subscription'];

export const SUBSCRIPTION_STATUS = { cancelled: 0, active: 1 } as const;
type Status = (typeof SUBSCRIPTION_STATUS)[keyof typeof SUBSCRIPTION_STATUS];

interface Row {
  id: number;
  user_id: number;
  topic_name: string;
  topic_description: string;
  status: Status;
  created_at: number;
}

const COLUMNS = ['id', 'user_id', 'topic_name', 'topic_description', 'status', 'created_at'];
const TABLE = 'oneapi_subscriptions';

function toSubscription(row: Row): Subscription {
  return {
    id: row.id,
    topic_name: row.topic_name,
    topic_description: row.topic_description,
    status: Number(row.status) as Status,
    created_at: iso(row.created_at),
  };
}

export class Subscriptions {
  constructor(
    private readonly db: Knex,
    private readonly now: () => number = Date.now,
  ) {}

  /** The user's subscriptions, cancelled ones included, newest first. */
  async list(userId: number, page: Page): Promise<{ items: Subscription[]; total: number }> {
    const [rows, counted] = await Promise.all([
      this.db(TABLE).select(COLUMNS).where({ user_id: userId }).orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(page.size).offset(page.offset),
      this.db(TABLE).where({ user_id: userId }).count({ total: '*' }),
    ]);
    return { items: (rows as Row[]).map(toSubscription), total: Number(counted[0].total) };
  }

  /**
   * Subscribes the user to `topicName` (O10): a new active subscription, or the user's cancelled
   * one of that name reactivated (its description replaced only when one is given), or
   * `alreadyActive`. The insert and the reactivation are each one statement that the unique
   * (user_id, topic_name) constraint arbitrates, so concurrent creates leave one active row.
   */
  async create(userId: number, topicName: string, description?: string): Promise<{ subscription: Subscription; reactivated: boolean } | 'alreadyActive'> {
    // Each pass ends in an answer unless the row it collided with was deleted in between.
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = this.now();
      try {
        const [row] = await this.db(TABLE)
          .insert({ user_id: userId, topic_name: topicName, topic_description: description ?? '', status: SUBSCRIPTION_STATUS.active, created_at: now, updated_at: now })
          .returning(COLUMNS);
        return { subscription: toSubscription(row as Row), reactivated: false };
      } catch (err) {
        if (uniqueViolation(err) === undefined) throw err;
      }
      const [row] = await this.db(TABLE)
        .where({ user_id: userId, topic_name: topicName, status: SUBSCRIPTION_STATUS.cancelled })
        .update({ status: SUBSCRIPTION_STATUS.active, updated_at: now, ...(description !== undefined ? { topic_description: description } : {}) })
        .returning(COLUMNS);
      if (row) return { subscription: toSubscription(row as Row), reactivated: true };
      const existing = await this.db(TABLE).where({ user_id: userId, topic_name: topicName }).first('status');
      if (existing && Number(existing.status) === SUBSCRIPTION_STATUS.active) return 'alreadyActive';
    }
    throw new Error(`subscription "${topicName}" of user ${userId} kept changing under concurrent requests`);
  }

  /** The user's subscription with this id, or why they cannot have it. */
  async owned(userId: number, id: number): Promise<Subscription | Refusal> {
    const row = (await this.db(TABLE).first(COLUMNS).where({ id })) as Row | undefined;
    if (!row) return 'notFound';
    if (row.user_id !== userId) return 'forbidden';
    return toSubscription(row);
  }

  /** Active → cancelled; `unchanged` when it was already cancelled. */
  cancel(userId: number, id: number): Promise<'done' | 'unchanged' | Refusal> {
    return this.setStatus(userId, id, SUBSCRIPTION_STATUS.active, SUBSCRIPTION_STATUS.cancelled);
  }

  /** Cancelled → active; `unchanged` when it was already active. */
  reactivate(userId: number, id: number): Promise<'done' | 'unchanged' | Refusal> {
    return this.setStatus(userId, id, SUBSCRIPTION_STATUS.cancelled, SUBSCRIPTION_STATUS.active);
  }

  async delete(userId: number, id: number): Promise<'done' | Refusal> {
    const deleted = await this.db(TABLE).where({ id, user_id: userId }).delete();
    if (deleted === 1) return 'done';
    const found = await this.owned(userId, id);
    return typeof found === 'string' ? found : 'notFound';
  }

  // One conditional update does the transition, so two racing requests cannot both succeed; only
  // when it changed nothing do we look at the row to say why.
  private async setStatus(userId: number, id: number, from: Status, to: Status): Promise<'done' | 'unchanged' | Refusal> {
    const changed = await this.db(TABLE).where({ id, user_id: userId, status: from }).update({ status: to, updated_at: this.now() });
    if (changed === 1) return 'done';
    const found = await this.owned(userId, id);
    return typeof found === 'string' ? found : 'unchanged';
  }
}
