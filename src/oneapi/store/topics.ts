// The topic tables (oneapi_topics, oneapi_topic_messages): the only code that reads or writes them.
// A deleted topic keeps its rows with `deleted_at` set; every read here skips it.
import type { Knex } from 'knex';
import { isPostgres, prepare, transact, type Prepared } from '../../db.ts';
import { counted, newestFirst, type Listed, type Slice } from './listing.ts';
import type { TopicMessageRow, TopicRow } from './rows.ts';

const TOPICS = 'oneapi_topics';
const MESSAGES = 'oneapi_topic_messages';
const TOPIC_COLUMNS = ['id', 'user_id', 'topic_name', 'model', 'channel_id', 'created_at'] as const;
const MESSAGE_COLUMNS = ['id', 'role', 'content', 'created_at'] as const;

/** A live topic as reads give it. */
export type TopicFields = Pick<TopicRow, (typeof TOPIC_COLUMNS)[number]>;
export type TopicWithCount = TopicFields & { message_count: number };
export type MessageFields = Pick<TopicMessageRow, (typeof MESSAGE_COLUMNS)[number]>;
export type HistoryMessage = Pick<TopicMessageRow, 'role' | 'content'>;

// Sending a message is the hot write: its statements are prepared once (src/db.ts), not built by knex.
const OWNED_SQL = `SELECT ${TOPIC_COLUMNS.join(', ')} FROM ${TOPICS} WHERE id = ? AND deleted_at IS NULL`;
const HISTORY_SQL = `SELECT role, content FROM ${MESSAGES} WHERE topic_id = ? ORDER BY id DESC LIMIT ?`;
// Also the check that the topic is still there, in the same transaction as the inserts.
const TOUCH_SQL = `UPDATE ${TOPICS} SET updated_at = ? WHERE id = ? AND deleted_at IS NULL`;
// One statement for both; ids follow the VALUES order, so the user's message stays first.
const INSERT_PAIR_SQL = `INSERT INTO ${MESSAGES} (topic_id, role, content, created_at)
  VALUES (?, 'user', ?, ?), (?, 'assistant', ?, ?) RETURNING ${MESSAGE_COLUMNS.join(', ')}`;
// Postgres does both in one statement (one round trip, no BEGIN and COMMIT): when the UPDATE finds
// no live topic, the INSERT has no row to take its id from and writes nothing.
const EXCHANGE_PG_SQL = `WITH topic AS (${TOUCH_SQL} RETURNING id)
  INSERT INTO ${MESSAGES} (topic_id, role, content, created_at)
  SELECT topic.id, m.role, m.content, m.created_at
    FROM topic, (VALUES (1, 'user', ?::text, ?::bigint), (2, 'assistant', ?::text, ?::bigint))
      AS m(n, role, content, created_at)
    ORDER BY m.n
  RETURNING ${MESSAGE_COLUMNS.join(', ')}`;

export class TopicStore {
  private readonly liveRow: Prepared<TopicFields>;
  private readonly history: Prepared<HistoryMessage>;
  private readonly touch: Prepared<never>;
  private readonly insertPair: Prepared<MessageFields>;
  private readonly exchangePg?: Prepared<MessageFields>;

  constructor(private readonly db: Knex) {
    this.liveRow = prepare(db, OWNED_SQL);
    this.history = prepare(db, HISTORY_SQL);
    this.touch = prepare(db, TOUCH_SQL);
    this.insertPair = prepare(db, INSERT_PAIR_SQL);
    if (isPostgres(db)) this.exchangePg = prepare(db, EXCHANGE_PG_SQL);
  }

  private live() {
    return this.db(TOPICS).whereNull('deleted_at');
  }

  /** The user's live topics, newest first, each with its number of messages. */
  async listLive(userId: number, slice: Slice): Promise<Listed<TopicWithCount>> {
    const messageCount = this.db(MESSAGES)
      .count('*')
      .where('topic_id', this.db.ref(`${TOPICS}.id`))
      .as('message_count');
    const [rows, total] = await Promise.all([
      newestFirst(
        this.live()
          .select(...TOPIC_COLUMNS.map((c) => `${TOPICS}.${c}`), messageCount)
          .where({ user_id: userId }),
        slice,
      ),
      this.live().where({ user_id: userId }).count({ total: '*' }),
    ]);
    // Knex types no column of a subquery: the select list above gives these rows.
    const read = rows as (TopicFields & { message_count: number | string })[];
    return { rows: read.map((r) => ({ ...r, message_count: Number(r.message_count) })), total: counted(total) };
  }

  async insert(topic: Omit<TopicRow, 'id' | 'deleted_at'>): Promise<TopicFields> {
    const [row] = await this.db(TOPICS)
      .insert(topic)
      .returning([...TOPIC_COLUMNS]);
    return row;
  }

  /** The topic if it is live (not deleted), whoever's it is. */
  liveById(topicId: number): Promise<TopicFields | undefined> {
    return this.liveRow.first(topicId);
  }

  /** Marks the topic deleted at `now`; false when it was already gone. */
  async softDelete(topicId: number, now: number): Promise<boolean> {
    return (await this.live().where({ id: topicId }).update({ deleted_at: now, updated_at: now })) === 1;
  }

  /** One window of the topic's messages, oldest first. */
  async messages(topicId: number, slice: Slice): Promise<Listed<MessageFields>> {
    const [rows, total] = await Promise.all([
      this.db(MESSAGES)
        .select(...MESSAGE_COLUMNS)
        .where({ topic_id: topicId })
        .orderBy('id', 'asc')
        .limit(slice.size)
        .offset(slice.offset),
      this.db(MESSAGES).where({ topic_id: topicId }).count({ total: '*' }),
    ]);
    return { rows, total: counted(total) };
  }

  /** The topic's last `count` messages, newest first. */
  recentMessages(topicId: number, count: number): Promise<HistoryMessage[]> {
    return this.history.all(topicId, count);
  }

  /**
   * Stores a user's message and the reply to it together, in one transaction that also marks the
   * topic updated; none of it when the topic is no longer live (then no rows come back).
   */
  addExchange(
    topicId: number,
    content: string,
    sentAt: number,
    reply: string,
    repliedAt: number,
  ): Promise<MessageFields[]> {
    if (this.exchangePg) return this.exchangePg.all(repliedAt, topicId, content, sentAt, reply, repliedAt);
    return transact(this.db, async (tx) => {
      if ((await this.touch.in(tx).run(repliedAt, topicId)) !== 1) return [];
      return this.insertPair.in(tx).all(topicId, content, sentAt, topicId, reply, repliedAt);
    });
  }
}
