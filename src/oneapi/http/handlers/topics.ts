// The `topics` tag: the caller's topics and their messages, replies through the topic's channel
// (decisions O7–O9).
import type { OneApiHandlers } from '../types.ts';
import type { Topics } from '../../domain/topics.ts';
import { BUILTIN_CHANNEL_ID } from '../../../channelSettings.ts';
import type { ChannelRefusal, Channels } from '../../adapters/channels.ts';
import type { Logger } from '../../../logger.ts';
import { LlmError } from '../../../llm/index.ts';
import { fail, refusalAnswer } from '../envelope.ts';
import { pageOf } from '../paging.ts';
import * as wire from '../wire.ts';

export const TOPIC_MESSAGES = {
  created: '话题创建成功',
  deleted: '话题已删除',
  sent: '消息发送成功',
  notFound: '话题不存在',
  forbidden: '无权限操作此话题',
  unknownChannel: '渠道不存在',
  modelNotServed: (model: string) => `该渠道不支持模型 ${model}`,
  replyFailed: 'AI 回复失败，请稍后再试',
  replyTimedOut: 'AI 回复超时，请稍后再试',
} as const;

const TOPICS_PAGE_SIZE = 10;
const MESSAGES_PAGE_SIZE = 20;

export interface TopicDeps {
  topics: Topics;
  channels: Channels;
  /** How many earlier messages go with a new one as context (ONEAPI_TOPIC_HISTORY). */
  historySize: number;
  logger: Logger;
}

const refused = refusalAnswer(TOPIC_MESSAGES);

function channelRefused(refusal: ChannelRefusal) {
  return fail(
    400,
    refusal.refused === 'unknownChannel' ? TOPIC_MESSAGES.unknownChannel : TOPIC_MESSAGES.modelNotServed(refusal.model),
  );
}

export function topicHandlers({ topics, channels, historySize, logger }: TopicDeps) {
  return {
    listTopics: async ({ auth, query }) => {
      const page = pageOf(query, TOPICS_PAGE_SIZE);
      const { rows, total } = await topics.list(auth.user.id, page);
      const items = rows.map(wire.topicSummary);
      return {
        status: 200,
        body: { success: true, message: '', data: { topics: items, total, page: page.page, size: page.size } },
      };
    },

    createTopic: async ({ auth, body }) => {
      const channelId = body.channel_id ?? BUILTIN_CHANNEL_ID;
      // Without a model, the channel's first one (gpt-3.5-turbo on channel 1, as the original).
      const route = channels.route(channelId, body.model);
      if ('refused' in route) return channelRefused(route);
      const topic = await topics.create(auth.user.id, {
        topic_name: body.topic_name,
        model: route.model,
        channel_id: channelId,
      });
      return { status: 200, body: { success: true, message: TOPIC_MESSAGES.created, data: wire.topic(topic) } };
    },

    deleteTopic: async ({ auth, params }) => {
      const topic = await topics.owned(auth.user.id, params.id);
      if (typeof topic === 'string') return refused(topic);
      if (!(await topics.remove(topic.id))) return refused('notFound');
      return { status: 200, body: { success: true, message: TOPIC_MESSAGES.deleted } };
    },

    listTopicMessages: async ({ auth, params, query }) => {
      const topic = await topics.owned(auth.user.id, params.id);
      if (typeof topic === 'string') return refused(topic);
      const page = pageOf(query, MESSAGES_PAGE_SIZE);
      const { rows, total } = await topics.messages(topic.id, page);
      const items = rows.map(wire.message);
      return {
        status: 200,
        body: { success: true, message: '', data: { messages: items, total, page: page.page, size: page.size } },
      };
    },

    sendTopicMessage: async ({ auth, params, body, req, signal }) => {
      const topic = await topics.owned(auth.user.id, params.id);
      if (typeof topic === 'string') return refused(topic);
      const route = channels.route(topic.channel_id, topic.model);
      if ('refused' in route) return channelRefused(route);
      let stored;
      try {
        stored = await topics.exchange(topic.id, body.content, historySize, (conversation) =>
          route.reply(topic.topic_name, conversation, signal),
        );
      } catch (err) {
        if (!(err instanceof LlmError)) throw err;
        // The error names the channel and what failed; it never holds the channel's key.
        const log = req.log ?? logger;
        log[err.kind === 'cancelled' ? 'info' : 'warn'](
          {
            channelId: topic.channel_id,
            model: topic.model,
            kind: err.kind,
            upstreamStatus: err.status,
            error: err.message,
          },
          'topic reply failed',
        );
        return fail(502, err.kind === 'timeout' ? TOPIC_MESSAGES.replyTimedOut : TOPIC_MESSAGES.replyFailed);
      }
      if (stored === 'notFound') return refused('notFound');
      const data = { user_message: wire.message(stored.user_message), ai_message: wire.message(stored.ai_message) };
      return { status: 200, body: { success: true, message: TOPIC_MESSAGES.sent, data } };
    },
  } satisfies Partial<OneApiHandlers>;
}
