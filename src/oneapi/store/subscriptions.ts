// The subscription table (oneapi_subscriptions): the only code that reads or writes it. (user_id,
// topic_name) is unique, so a user has at most one subscription per name whatever the timing.
import type { Knex } from 'knex';
import { uniqueViolation } from '../../dbErrors.ts';
import { counted, newestFirst, type Listed, type Slice } from './listing.ts';
import type { SubscriptionRow, SubscriptionStatus } from './rows.ts';

const TABLE = 'oneapi_subscriptions';
const COLUMNS = ['id', 'user_id', 'topic_name', 'topic_description', 'status', 'created_at'] as const;

export type SubscriptionFields = Pick<SubscriptionRow, (typeof COLUMNS)[number]>;
/** What a change of status writes. */
export type SubscriptionChange = Pick<SubscriptionRow, 'status' | 'updated_at'> &
  Partial<Pick<SubscriptionRow, 'topic_description'>>;

export class SubscriptionStore {
  constructor(private readonly db: Knex) {}

  /** The user's subscriptions, newest first. */
  async list(userId: number, slice: Slice): Promise<Listed<SubscriptionFields>> {
    const [rows, total] = await Promise.all([
      newestFirst(
        this.db(TABLE)
          .select(...COLUMNS)
          .where({ user_id: userId }),
        slice,
      ),
      this.db(TABLE).where({ user_id: userId }).count({ total: '*' }),
    ]);
    return { rows, total: counted(total) };
  }

  /** Inserts the subscription; `taken` when the user already has one of that name. */
  async insert(subscription: Omit<SubscriptionRow, 'id'>): Promise<SubscriptionFields | 'taken'> {
    try {
      const [row] = await this.db(TABLE)
        .insert(subscription)
        .returning([...COLUMNS]);
      return row;
    } catch (err) {
      if (uniqueViolation(err) === undefined) throw err;
      return 'taken';
    }
  }

  /** Applies `change` to the user's subscription of this name if its status is `from`. */
  async changeByName(
    userId: number,
    topicName: string,
    from: SubscriptionStatus,
    change: SubscriptionChange,
  ): Promise<SubscriptionFields | undefined> {
    const [row] = await this.db(TABLE)
      .where({ user_id: userId, topic_name: topicName, status: from })
      .update(change)
      .returning([...COLUMNS]);
    return row;
  }

  /** Applies `change` to the user's subscription with this id if its status is `from`; whether it did. */
  async changeById(userId: number, id: number, from: SubscriptionStatus, change: SubscriptionChange): Promise<boolean> {
    return (await this.db(TABLE).where({ id, user_id: userId, status: from }).update(change)) === 1;
  }

  async statusByName(userId: number, topicName: string): Promise<SubscriptionStatus | undefined> {
    const row = await this.db(TABLE).where({ user_id: userId, topic_name: topicName }).first('status');
    return row?.status;
  }

  /** The subscription with this id, whoever's it is. */
  byId(id: number): Promise<SubscriptionFields | undefined> {
    return this.db(TABLE)
      .first(...COLUMNS)
      .where({ id });
  }

  /** Deletes the user's subscription with this id; whether there was one. */
  async deleteOwned(userId: number, id: number): Promise<boolean> {
    return (await this.db(TABLE).where({ id, user_id: userId }).delete()) === 1;
  }
}
