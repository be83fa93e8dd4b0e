// One-API topics and their messages (decisions O7–O9): who may use a topic, and how an exchange
// with its channel is stored. A deleted topic is "not found" from then on. The rows are read and
// written by store/topics.ts.
import type { ChatMessage } from '../../llm/index.ts';
import type { Slice, Listed } from '../store/listing.ts';
import type { MessageFields, TopicFields, TopicStore, TopicWithCount } from '../store/topics.ts';
import { owned, type Refusal } from './refusal.ts';

export type { MessageFields, TopicFields, TopicWithCount };

export class Topics {
  constructor(
    private readonly store: TopicStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** The user's live topics, newest first, each with its number of messages. */
  list(userId: number, page: Slice): Promise<Listed<TopicWithCount>> {
    return this.store.listLive(userId, page);
  }

  create(userId: number, fields: { topic_name: string; model: string; channel_id: number }): Promise<TopicFields> {
    const now = this.now();
    return this.store.insert({ user_id: userId, ...fields, created_at: now, updated_at: now });
  }

  /** The live topic if it is the user's (O8: deleted or missing → notFound, another's → forbidden). */
  async owned(userId: number, topicId: number): Promise<TopicFields | Refusal> {
    return owned(await this.store.liveById(topicId), userId);
  }

  /** Soft-deletes the topic; false when it was already gone (a concurrent delete). */
  remove(topicId: number): Promise<boolean> {
    return this.store.softDelete(topicId, this.now());
  }

  /** One page of the topic's messages, oldest first. */
  messages(topicId: number, page: Slice): Promise<Listed<MessageFields>> {
    return this.store.messages(topicId, page);
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
  ): Promise<{ user_message: MessageFields; ai_message: MessageFields } | 'notFound'> {
    const sentAt = this.now();
    const history = await this.store.recentMessages(topicId, historySize);
    const reply = await answer([...history.reverse(), { role: 'user', content }]);
    const rows = await this.store.addExchange(topicId, content, sentAt, reply, this.now());
    const userMessage = rows.find((r) => r.role === 'user');
    const aiMessage = rows.find((r) => r.role === 'assistant');
    if (!userMessage || !aiMessage) return 'notFound';
    return { user_message: userMessage, ai_message: aiMessage };
  }
}
