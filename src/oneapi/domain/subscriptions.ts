// One-API subscriptions (decisions O8, O10): subscribing, cancelling, reactivating and deleting,
// each decided by one conditional statement of store/subscriptions.ts so racing requests cannot
// both succeed. A deleted subscription is removed.
import type { Listed, Slice } from '../store/listing.ts';
import type { SubscriptionStatus } from '../store/rows.ts';
import type { SubscriptionFields, SubscriptionStore } from '../store/subscriptions.ts';
import { owned, type Refusal } from './refusal.ts';

export type { SubscriptionFields };

export const SUBSCRIPTION_STATUS = { cancelled: 0, active: 1 } as const satisfies Record<string, SubscriptionStatus>;

export class Subscriptions {
  constructor(
    private readonly store: SubscriptionStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** The user's subscriptions, cancelled ones included, newest first. */
  list(userId: number, page: Slice): Promise<Listed<SubscriptionFields>> {
    return this.store.list(userId, page);
  }

  /**
   * Subscribes the user to `topicName` (O10): a new active subscription, or the user's cancelled
   * one of that name reactivated (its description replaced only when one is given), or
   * `alreadyActive`. The insert and the reactivation are each one statement that the unique
   * (user_id, topic_name) constraint arbitrates, so concurrent creates leave one active row.
   */
  async create(
    userId: number,
    topicName: string,
    description?: string,
  ): Promise<{ subscription: SubscriptionFields; reactivated: boolean } | 'alreadyActive'> {
    const { active, cancelled } = SUBSCRIPTION_STATUS;
    // Each pass ends in an answer unless the row it collided with was deleted in between.
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = this.now();
      const inserted = await this.store.insert({
        user_id: userId,
        topic_name: topicName,
        topic_description: description ?? '',
        status: active,
        created_at: now,
        updated_at: now,
      });
      if (inserted !== 'taken') return { subscription: inserted, reactivated: false };
      const reactivated = await this.store.changeByName(userId, topicName, cancelled, {
        status: active,
        updated_at: now,
        ...(description !== undefined ? { topic_description: description } : {}),
      });
      if (reactivated) return { subscription: reactivated, reactivated: true };
      if ((await this.store.statusByName(userId, topicName)) === active) return 'alreadyActive';
    }
    throw new Error(`subscription "${topicName}" of user ${userId} kept changing under concurrent requests`);
  }

  /** The user's subscription with this id, or why they cannot have it. */
  async owned(userId: number, id: number): Promise<SubscriptionFields | Refusal> {
    return owned(await this.store.byId(id), userId);
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
    if (await this.store.deleteOwned(userId, id)) return 'done';
    const found = await this.owned(userId, id);
    return typeof found === 'string' ? found : 'notFound';
  }

  // One conditional update does the transition; only when it changed nothing do we look at the
  // row to say why.
  private async setStatus(
    userId: number,
    id: number,
    from: SubscriptionStatus,
    to: SubscriptionStatus,
  ): Promise<'done' | 'unchanged' | Refusal> {
    if (await this.store.changeById(userId, id, from, { status: to, updated_at: this.now() })) return 'done';
    const found = await this.owned(userId, id);
    return typeof found === 'string' ? found : 'unchanged';
  }
}
