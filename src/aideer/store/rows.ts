// One row type per AIDeer table (db/migrations/0002, 0005–0007), as the store reads and writes it.
// Times are epoch milliseconds (bigints come back as numbers: src/db.ts). Knex's table map below
// types every `db('aideer_…')` query from these, so the store needs no casts on its rows.
import type { Knex } from 'knex';
import type { components, operations } from '../../../generated/aideer.ts';

type Schemas = components['schemas'];

export interface UserRow {
  id: number;
  username: string;
  permission: number;
  nickname: string | null;
  password_hash: string | null;
  wechat_openid: string | null;
  wechat_session_key: string | null;
  avatar: string;
  credits_left: number;
  created_at: number;
}

export interface CreditRecordRow {
  id: number;
  user_id: number;
  amount: number;
  description: string;
  create_time: number;
  /** The task that was charged; null for a redeemed code. */
  task_id: string | null;
}

export interface RedeemCodeRow {
  /** Upper-cased. */
  code: string;
  value: number;
  created_at: number;
  redeemed_by: number | null;
  redeemed_at: number | null;
}

/** Small shared values with an expiry (the WeChat access token). */
export interface KvRow {
  key: string;
  value: string;
  expires_at: number;
}

export interface PresetRow {
  id: string;
  owner_id: number;
  title: string;
  description: string | null;
  type: Schemas['PresetType'];
  visibility: Schemas['PresetVisibility'];
  /** JSON of the complete PresetParametersRead. */
  parameters: string;
  create_time: number;
  update_time: number;
}

export interface ChatRow {
  id: string;
  owner_id: number;
  preset_id: string;
  title: string;
  visibility: Schemas['ChatVisibility'];
  create_time: number;
  update_time: number;
}

/** A message of a chat or of a preset: exactly one of `chat_id` and `preset_id` is set. */
export interface MessageRow {
  chat_id: string | null;
  preset_id: string | null;
  position: number;
  role: Schemas['MessageRead']['role'];
  type: Schemas['MessageRead']['type'];
  content: string;
  /** SQLite gives booleans back as 0 or 1. */
  visibility: boolean | number;
  create_time: number;
}

export interface PresetLikeRow {
  user_id: number;
  preset_id: string;
}

export interface ChatLikeRow {
  user_id: number;
  chat_id: string;
}

export type TaskStatus = Schemas['TaskStatus'];
/** The task types that run (image_generation is refused before a task exists). */
export type TaskType = Exclude<Schemas['TaskType'], 'image_generation'>;

export interface TaskRow {
  id: string;
  user_id: number;
  chat_id: string;
  type: TaskType;
  status: TaskStatus;
  content: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
  ended_at: number | null;
  runner_lease_until: number | null;
  stream_holder: string | null;
  stream_lease_until: number | null;
  event_seq: number;
  run_first_seq: number;
  /** JSON array: the text's length at each running event of the current run. */
  event_marks: string | null;
  attempts: number;
  runner_id: string | null;
}

/** A row as inserted: the columns with database defaults may be left out. */
type Insert<Row, Defaulted extends keyof Row> = Omit<Row, Defaulted> & Partial<Pick<Row, Defaulted>>;
/** An update: any columns, each a value or SQL such as `attempts + 1`. */
type Patch<Row> = { [K in keyof Row]?: Row[K] | Knex.Raw };

declare module 'knex/types/tables.js' {
  interface Tables {
    aideer_users: Knex.CompositeTableType<
      UserRow,
      Insert<
        UserRow,
        'id' | 'permission' | 'credits_left' | 'nickname' | 'password_hash' | 'wechat_openid' | 'wechat_session_key'
      >,
      Patch<UserRow>
    >;
    aideer_credit_records: Knex.CompositeTableType<CreditRecordRow, Insert<CreditRecordRow, 'id' | 'task_id'>>;
    aideer_redeem_codes: RedeemCodeRow;
    aideer_kv: KvRow;
    aideer_presets: PresetRow;
    aideer_chats: ChatRow;
    aideer_messages: MessageRow;
    aideer_preset_likes: PresetLikeRow;
    aideer_chat_likes: ChatLikeRow;
    aideer_tasks: Knex.CompositeTableType<
      TaskRow,
      Insert<
        TaskRow,
        | 'content'
        | 'error'
        | 'ended_at'
        | 'runner_lease_until'
        | 'stream_holder'
        | 'stream_lease_until'
        | 'event_seq'
        | 'run_first_seq'
        | 'event_marks'
        | 'attempts'
        | 'runner_id'
      >,
      Patch<TaskRow>
    >;
  }
}

/** A page of a list in the order asked for; every field has a default in the spec. */
export type ListPage = Required<NonNullable<operations['listChats']['parameters']['query']>>;
