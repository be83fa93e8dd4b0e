// One-API topics and their messages (decisions O7–O9): the only module that reads or writes
// oneapi_topics and oneapi_topic_messages. A deleted topic keeps its rows with `deleted_at` set and
// is "not found" from then on.
import type { Knex } from 'knex';
import type { components } from '../../generated/oneapi.ts';
import { isPostgres, prepare, transact, type Prepared } from '../db.ts';
import type { ChatMessage } from '../llm/index.ts';
import { iso } from '../time.ts';
import type { Refusal } from './envelope.ts';
import type { Page } from './paging.ts';

export type Topic = components['schemas']['Topic'];
export type TopicSummary = components['schemas']['TopicSummary'];
export type TopicMessage = components['schemas']['TopicMessage'];

interface TopicRow {
  id: number;
  user_id: number;
  topic_name: string;
  model: string;
  channel_id: number;
  created_at: number;
}

interface MessageRow {
  id: number;
  role: TopicMessage['role'];
  content: string;
  created_at: number;
}

const TOPICS = 'oneapi_topics';
const MESSAGES = 'oneapi_topic_messages';
const TOPIC_COLUMNS = ['id', 'user_id', 'topic_name', 'model', 'channel_id', 'created_at'];
const MESSAGE_COLUMNS = ['id', 'role', 'content', 'created_at'];

function toTopic(row: TopicRow): Topic {
  return { id: row.id, topic_name: row.topic_name, model: row.model, channel_id: row.channel_id, created_at: iso(row.created_at) };
}

function toMessage(row: MessageRow): TopicMessage {
  return { id: row.id, role: row.role, content: row.content, created_at: iso(row.created_at) };
}

// Sending a message is the hot write: its statements are prepared once (src/db.ts), not built by knex.
const OWNED_SQL = `SELECT ${TOPIC_COLUMNS.join(', ')} FROM ${TOPICS} WHERE id = ? AND deleted_at IS NULL`;
const HISTORY_SQL = `SELECT role, content FROM ${MESSAGES} WHERE topic_id = ? ORDER BY id DESC LIMIT ?`;
// Also the check that the topic is still there, in the same transaction as the inserts.
const TOUCH_SQL = `UPDATE ${TOPICS} SET updated_at = ? WHERE id = ? AND deleted_at IS NULL`;
// One statement for both; ids follow the VALUES order, so the user's message stays first.
const INSERT_PAIR_SQL = `INSERT INTO ${MESSAGES} (topic_id, role, content, created_at) VALUES (?, 'user', ?, ?), (?, 'assistant', ?, ?) RETURNING ${MESSAGE_COLUMNS.join(', ')}`;
// Postgres does both in one statement (one round trip, no BEGIN and COMMIT): when the UPDATE finds
// no live topic, the INSERT has no row to take its id from and writes nothing.
const EXCHANGE_PG_SQL = `WITH topic AS (${TOUCH_SQL} RETURNING id)
  INSERT INTO ${MESSAGES} (topic_id, role, content, created_at)
  SELECT topic.id, m.role, m.content, m.created_at
    FROM topic, (VALUES (1, 'user', ?::text, ?::bigint), (2, 'assistant', ?::text, ?::bigint)) AS m(n, role, content, created_at)
    ORDER BY m.n
  RETURNING ${MESSAGE_COLUMNS.join(', ')}`;

export class Topics {
  private readonly ownedRow: Prepared<TopicRow>;
  private readonly history: Prepared<ChatMessage>;
  private readonly touch: Prepared<never>;
  private readonly insertPair: Prepared<MessageRow>;
  private readonly exchangePg?: Prepared<MessageRow>;

  constructor(
    private readonly db: Knex,
    private readonly now: () => number = Date.now,
  ) {
    this.ownedRow = prepare(db, OWNED_SQL);
    this.history = prepare(db, HISTORY_SQL);
    this.touch = prepare(db, TOUCH_SQL);
    this.insertPair = prepare(db, INSERT_PAIR_SQL);
    if (isPostgres(db)) this.exchangePg = prepare(db, EXCHANGE_PG_SQL);
  }

  private live(db: Knex = this.db) {
    return db(TOPICS).whereNull('deleted_at');
  }

  /** The user's live topics, newest first, each with its number of messages. */
  async list(userId: number, page: Page): Promise<{ items: TopicSummary[]; total: number }> {
    const messageCount = this.db(MESSAGES).count('*').where('topic_id', this.db.ref(`${TOPICS}.id`)).as('message_count');
    const [rows, counted] = await Promise.all([
      this.live()
        .select([...TOPIC_COLUMNS.map((c) => `${TOPICS}.${c}`), messageCount])
        .where({ user_id: userId })
        .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }])
        .limit(page.size)
        .offset(page.offset),
      this.live().where({ user_id: userId }).count({ total: '*' }),
    ]);
    return {
      items: (rows as (TopicRow & { message_count: number | string })[]).map((r) => ({ ...toTopic(r), message_count: Number(r.message_count) })),
      total: Number(counted[0].total),
    };
  }

  async create(userId: number, fields: { topic_name: string; model: string; channel_id: number }): Promise<Topic> {
    const now = this.now();
    const [row] = await this.db(TOPICS)
      .insert({ user_id: userId, ...fields, created_at: now, updated_at: now })
      .returning(TOPIC_COLUMNS);
    return toTopic(row as TopicRow);
  }

  /** The live topic if it is the user's (O8: deleted or missing → notFound, another's → forbidden). */
  async owned(userId: number, topicId: number): Promise<Topic | Refusal> {
    const row = await this.ownedRow.first(topicId);
    if (!row) return 'notFound';
    if (row.user_id !== userId) return 'forbidden';
    return toTopic(row);
  }

  /** Soft-deletes the topic; false when it was already gone (a concurrent delete). */
  async remove(topicId: number): Promise<boolean> {
    const now = this.now();
    return (await this.live().where({ id: topicId }).update({ deleted_at: now, updated_at: now })) === 1;
  }

  /** One page of the topic's messages, oldest first. */
  async messages(topicId: number, page: Page): Promise<{ items: TopicMessage[]; total: number }> {
    const [rows, counted] = await Promise.all([
      this.db(MESSAGES).select(MESSAGE_COLUMNS).where({ topic_id: topicId }).orderBy('id', 'asc').limit(page.size).offset(page.offset),
      this.db(MESSAGES).where({ topic_id: topicId }).count({ total: '*' }),
    ]);
    return { items: (rows as MessageRow[]).map(toMessage), total: Number(counted[0].total) };
  }

  /**
   * One exchange on a topic: the new message, after the topic's last `historySize` messages, goes
   * to `answer`; once the reply exists, both are stored together in one transaction, the user's
   * message with the time it arrived. Nothing is stored when `answer` throws (that is thrown), nor
   * when the topic was deleted meanwhile (`notFound`).
   */
  async exchange(
    topicId: number,
    content: string,
    historySize: number,
    answer: (conversation: ChatMessage[]) => Promise<string>,
  ): Promise<{ user_message: TopicMessage; ai_message: TopicMessage } | 'notFound'> {
    const sentAt = this.now();
    const history = await this.history.all(topicId, historySize);
    const reply = await answer([...history.reverse(), { role: 'user', content }]);
    const repliedAt = this.now();
    const rows = this.exchangePg
      ? await this.exchangePg.all(repliedAt, topicId, content, sentAt, reply, repliedAt)
      : await transact(this.db, async (tx) => {
          if ((await this.touch.in(tx).run(repliedAt, topicId)) !== 1) return [];
          return this.insertPair.in(tx).all(topicId, content, sentAt, topicId, reply, repliedAt);
        });
    if (!rows.length) return 'notFound';
    const byRole = (role: string) => rows.find((r) => r.role === role)!;
    return { user_message: toMessage(byRole('user')), ai_message: toMessage(byRole('assistant')) };
  }
}
