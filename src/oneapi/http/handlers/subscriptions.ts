// The `subscriptions` tag: the caller's subscriptions and the articles matching them (decisions
// O7, O8, O10, O11).
import type { OneApiHandlers } from '../types.ts';
import type { Articles } from '../../domain/articles.ts';
import type { Subscriptions } from '../../domain/subscriptions.ts';
import { fail, refusalAnswer } from '../envelope.ts';
import { pageOf } from '../paging.ts';
import * as wire from '../wire.ts';

export const SUBSCRIPTION_MESSAGES = {
  created: '订阅创建成功',
  reactivated: '订阅已重新激活',
  cancelled: '订阅已取消',
  deleted: '订阅已删除',
  alreadySubscribed: '您已经订阅了该主题',
  alreadyCancelled: '订阅已取消，无需重复操作',
  alreadyActive: '订阅已处于激活状态',
  notFound: '订阅不存在',
  forbidden: '无权限操作此订阅',
} as const;

const DEFAULT_SIZE = 10;

const refused = refusalAnswer(SUBSCRIPTION_MESSAGES);

function done(message: string) {
  return { status: 200 as const, body: { success: true as const, message } };
}

export function subscriptionHandlers({
  subscriptions,
  articles,
}: {
  subscriptions: Subscriptions;
  articles: Articles;
}) {
  return {
    listSubscriptions: async ({ auth, query }) => {
      const page = pageOf(query, DEFAULT_SIZE);
      const { rows, total } = await subscriptions.list(auth.user.id, page);
      const items = rows.map(wire.subscription);
      return {
        status: 200,
        body: { success: true, message: '', data: { subscriptions: items, total, page: page.page, size: page.size } },
      };
    },

    createSubscription: async ({ auth, body }) => {
      const outcome = await subscriptions.create(auth.user.id, body.topic_name, body.topic_description);
      if (outcome === 'alreadyActive') return fail(400, SUBSCRIPTION_MESSAGES.alreadySubscribed);
      const message = outcome.reactivated ? SUBSCRIPTION_MESSAGES.reactivated : SUBSCRIPTION_MESSAGES.created;
      return { status: 200, body: { success: true, message, data: wire.subscription(outcome.subscription) } };
    },

    cancelSubscription: async ({ auth, params }) => {
      const outcome = await subscriptions.cancel(auth.user.id, params.id);
      if (outcome === 'unchanged') return fail(400, SUBSCRIPTION_MESSAGES.alreadyCancelled);
      return outcome === 'done' ? done(SUBSCRIPTION_MESSAGES.cancelled) : refused(outcome);
    },

    reactivateSubscription: async ({ auth, params }) => {
      const outcome = await subscriptions.reactivate(auth.user.id, params.id);
      if (outcome === 'unchanged') return fail(400, SUBSCRIPTION_MESSAGES.alreadyActive);
      return outcome === 'done' ? done(SUBSCRIPTION_MESSAGES.reactivated) : refused(outcome);
    },

    deleteSubscription: async ({ auth, params }) => {
      const outcome = await subscriptions.delete(auth.user.id, params.id);
      return outcome === 'done' ? done(SUBSCRIPTION_MESSAGES.deleted) : refused(outcome);
    },

    listSubscriptionArticles: async ({ auth, params, query }) => {
      const subscription = await subscriptions.owned(auth.user.id, params.id);
      if (typeof subscription === 'string') return refused(subscription);
      const page = pageOf(query, DEFAULT_SIZE);
      const { rows, total } = await articles.matching(subscription.topic_name, page);
      const items = rows.map(wire.article);
      return {
        status: 200,
        body: { success: true, message: '', data: { articles: items, total, page: page.page, size: page.size } },
      };
    },
  } satisfies Partial<OneApiHandlers>;
}
