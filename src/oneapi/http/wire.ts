// The rows the domain answers, in the shapes of openapi/oneapi.yaml: times in ISO 8601,
// and only the fields the contract shows (no owner ids).
import type { components } from '../../../generated/oneapi.ts';
import { iso } from '../../time.ts';
import type { ArticleFields } from '../domain/articles.ts';
import type { SubscriptionFields } from '../domain/subscriptions.ts';
import type { MessageFields, TopicFields, TopicWithCount } from '../domain/topics.ts';

type Schemas = components['schemas'];

export function topic(row: TopicFields): Schemas['Topic'] {
  return {
    id: row.id,
    topic_name: row.topic_name,
    model: row.model,
    channel_id: row.channel_id,
    created_at: iso(row.created_at),
  };
}

export function topicSummary(row: TopicWithCount): Schemas['TopicSummary'] {
  return { ...topic(row), message_count: row.message_count };
}

export function message(row: MessageFields): Schemas['TopicMessage'] {
  return { id: row.id, role: row.role, content: row.content, created_at: iso(row.created_at) };
}

export function subscription(row: SubscriptionFields): Schemas['Subscription'] {
  return {
    id: row.id,
    topic_name: row.topic_name,
    topic_description: row.topic_description,
    status: row.status,
    created_at: iso(row.created_at),
  };
}

export function article(row: ArticleFields): Schemas['Article'] {
  return {
    id: row.id,
    title: row.title,
    content: row.content,
    author: row.author,
    published_at: row.published_at === null ? null : iso(row.published_at),
    article_url: row.article_url,
  };
}
