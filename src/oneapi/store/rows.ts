// One row type per One-API table, as db/migrations/0001, 0003 and 0004 create them. Times are epoch
// milliseconds; Postgres answers bigint columns as numbers too (src/db.ts sets the parser). Where a
// column only ever holds a few values, its type names them.
import type { Knex } from 'knex';

/** 1 common user, 10 admin, 100 root (decision O6). */
export type Role = 1 | 10 | 100;
/** 1 enabled, 2 banned. */
export type UserStatus = 1 | 2;
export type CodePurpose = 'register' | 'login';
/** 0 cancelled, 1 active (decision O10). */
export type SubscriptionStatus = 0 | 1;
export type MessageRole = 'user' | 'assistant';

export interface UserRow {
  id: number;
  username: string;
  display_name: string;
  role: Role;
  status: UserStatus;
  group: string;
  school: string;
  college: string;
  phone: string;
  created_at: number;
  updated_at: number;
}

/** An access token, kept as its SHA-256; a user has one per device (decision O5). */
export interface TokenRow {
  id: number;
  user_id: number;
  token_hash: string;
  created_at: number;
  expires_at: number;
}

/** The live verification code of a phone, kept as its HMAC. */
export interface PhoneCodeRow {
  phone: string;
  purpose: CodePurpose;
  code_hash: string;
  attempts: number;
  sent_at: number;
  expires_at: number;
}

export interface TopicRow {
  id: number;
  user_id: number;
  topic_name: string;
  model: string;
  channel_id: number;
  created_at: number;
  updated_at: number;
  /** Set when the topic is deleted (a soft delete, decision O8). */
  deleted_at: number | null;
}

export interface TopicMessageRow {
  id: number;
  topic_id: number;
  role: MessageRole;
  content: string;
  created_at: number;
}

export interface SubscriptionRow {
  id: number;
  user_id: number;
  topic_name: string;
  topic_description: string;
  status: SubscriptionStatus;
  created_at: number;
  updated_at: number;
}

export interface ArticleRow {
  id: number;
  title: string;
  content: string;
  author: string;
  published_at: number | null;
  article_url: string;
  /** `title` and `content` in the form matching compares (matchKey of domain/articles.ts). */
  title_key: string;
  content_key: string;
  /** The feed it came from (credentials and query left out) or `admin:<user id>`. */
  source: string;
  created_at: number;
}

/** A table whose id the database assigns: inserted without it (and without `Defaulted`), id never updated. */
type Keyed<Row extends { id: number }, Defaulted extends keyof Row = never> = Knex.CompositeTableType<
  Row,
  Omit<Row, 'id' | Defaulted> & Partial<Pick<Row, Defaulted>>,
  Partial<Omit<Row, 'id'>>
>;

// Knex's table typing: `db('oneapi_topics')` builds queries over TopicRow, so what they select,
// insert, update and return is checked against the row, without casts.
declare module 'knex/types/tables.js' {
  interface Tables {
    oneapi_users: Keyed<UserRow>;
    oneapi_tokens: Keyed<TokenRow>;
    oneapi_phone_codes: PhoneCodeRow;
    oneapi_topics: Keyed<TopicRow, 'deleted_at'>;
    oneapi_topic_messages: Keyed<TopicMessageRow>;
    oneapi_subscriptions: Keyed<SubscriptionRow>;
    oneapi_articles: Keyed<ArticleRow>;
  }
}
