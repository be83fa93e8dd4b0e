// AIDeer presets, chats, their messages and likes: the only module that reads or writes those
// tables. Messages live in SQL with their chat or preset (A4), in `position` order; everything
// hangs off its user, preset or chat with ON DELETE CASCADE, so one DELETE removes it all at once.
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { components, operations } from '../../generated/aideer.ts';
import { forUpdate, isPostgres, prepare, transact, type Prepared } from '../db.ts';
import { foreignKeyViolation, uniqueViolation } from '../dbErrors.ts';
import { loadSpec } from '../spec.ts';
import { iso, parseSendableTime } from '../time.ts';

type Schemas = components['schemas'];
/** A preset's complete model parameters, as stored and as sent to the provider. */
type PresetParameters = Schemas['PresetParametersRead'];
type MessageRead = Schemas['MessageRead'];
type ChatRead = Schemas['ChatRead'];
type PresetRead = Schemas['PresetRead'];
type ChatVisibility = Schemas['ChatVisibility'];
type PresetVisibility = Schemas['PresetVisibility'];
type LikesRead = Schemas['LikesRead'];
/** The query of both lists, as handlers receive it. */
type ListQuery = NonNullable<operations['listChats']['parameters']['query']>;

interface GenerationContext {
  chat: { id: string; owner_id: number; title: string; preset_id: string };
  /** The complete stored object. */
  parameters: PresetParameters;
  /** Preset messages, then chat messages, in order. */
  messages: { role: 'user' | 'assistant' | 'system'; content: string }[];
}

interface ChatRow {
  id: string;
  owner_id: number;
  preset_id: string;
  title: string;
  visibility: ChatVisibility;
  create_time: number;
  update_time: number;
}

interface PresetRow {
  id: string;
  owner_id: number;
  title: string;
  description: string | null;
  type: Schemas['PresetType'];
  visibility: PresetVisibility;
  parameters: string;
  create_time: number;
  update_time: number;
}

interface MessageRow {
  chat_id: string | null;
  preset_id: string | null;
  position: number;
  role: MessageRead['role'];
  type: MessageRead['type'];
  content: string;
  visibility: boolean | number;
  create_time: number;
}

/** A message ready to store (see messagesToStore). */
interface NewMessage {
  role: MessageRead['role'];
  type: MessageRead['type'];
  content: string;
  visibility: boolean;
  /** Epoch ms; undefined for the time of saving. */
  create_time: number | undefined;
}

interface ChatFields {
  preset_id: string;
  title: string;
  /** On replace, undefined keeps the current visibility. */
  visibility?: ChatVisibility;
  messages: NewMessage[];
}

/** A preset body as handlers receive it, its messages ready to store. */
type PresetFields = Omit<Schemas['PresetCreate'], 'messages'> & { messages: NewMessage[] };

/** The chat's preset does not exist (or was deleted while the chat was being saved). */
export class PresetNotFound extends Error {}

// The original picks one seed when the process starts and gives it to every preset saved without one.
const PROCESS_SEED = Number(crypto.randomBytes(8).readBigUInt64BE() >> 11n);

// The spec's parameter names, read once: the validator keeps keys it does not know, which are not stored.
const PARAMETER_NAMES = Object.keys((loadSpec('aideer').components as { schemas: Record<string, { properties: object }> }).schemas.PresetParameters.properties);

/**
 * The parameters as stored: the spec's keys only. The validator filled in every default the spec
 * declares; the seed has none there (it is the process's).
 */
function storedParameters(given: Schemas['PresetParameters']): PresetParameters {
  const out: Record<string, unknown> = Object.fromEntries(PARAMETER_NAMES.map((name) => [name, (given as Record<string, unknown>)[name]]));
  out.seed ??= PROCESS_SEED;
  return out as PresetParameters;
}

// Statements stay well under SQLite's and Postgres' bound-parameter limits.
const INSERT_CHUNK = 500;

const newId = () => crypto.randomUUID();

function messageRead(m: MessageRow): MessageRead {
  return { role: m.role, type: m.type, content: m.content, visibility: Boolean(m.visibility), create_time: iso(m.create_time) };
}

function chatRead(c: ChatRow, messages: MessageRow[]): ChatRead {
  return {
    preset_id: c.preset_id,
    title: c.title,
    visibility: c.visibility,
    id: c.id,
    owner_id: c.owner_id,
    messages: messages.map(messageRead),
    create_time: iso(c.create_time),
    update_time: iso(c.update_time),
  };
}

function presetRead(p: PresetRow, messages: MessageRow[]): PresetRead {
  return {
    title: p.title,
    description: p.description,
    type: p.type,
    visibility: p.visibility,
    id: p.id,
    owner_id: p.owner_id,
    messages: messages.map(messageRead),
    parameters: JSON.parse(p.parameters) as PresetParameters,
    create_time: iso(p.create_time),
    update_time: iso(p.update_time),
  };
}

type Owner = { chat_id: string } | { preset_id: string };

/**
 * A body's messages ready to store, each `create_time` parsed here once; or the index of the first
 * one whose time passes the format check but names none the API can send back (a leap second, or an
 * offset that moves it outside the years 0000–9999 in UTC).
 */
export function messagesToStore(messages: Schemas['Message'][]): NewMessage[] | { invalidAt: number } {
  const out: NewMessage[] = [];
  for (const [index, m] of messages.entries()) {
    const createTime = m.create_time === undefined ? undefined : parseSendableTime(m.create_time);
    if (m.create_time !== undefined && createTime === undefined) return { invalidAt: index };
    out.push({ role: m.role, type: m.type, content: m.content, visibility: m.visibility, create_time: createTime });
  }
  return out;
}

/**
 * Replaces the messages of a chat or preset, in the caller's transaction; answers the rows written.
 * `created`: the owner was inserted in this transaction, so it has none to delete.
 */
async function writeMessages(trx: Knex, owner: Owner, messages: NewMessage[], now: number, { created = false } = {}): Promise<MessageRow[]> {
  const rows: MessageRow[] = messages.map((m, position) => ({ chat_id: null, preset_id: null, ...owner, position, role: m.role, type: m.type, content: m.content, visibility: m.visibility, create_time: m.create_time ?? now }));
  if (!created) await trx('aideer_messages').where(owner).delete();
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) await trx('aideer_messages').insert(rows.slice(i, i + INSERT_CHUNK));
  return rows;
}

/** Messages of several chats or presets, grouped by owner id, each in order. */
async function messagesOf(db: Knex, column: 'chat_id' | 'preset_id', ids: string[]): Promise<Map<string, MessageRow[]>> {
  const byOwner = new Map<string, MessageRow[]>(ids.map((id) => [id, []]));
  if (!ids.length) return byOwner;
  const rows: MessageRow[] = await db('aideer_messages').whereIn(column, ids).orderBy([column, 'position']);
  for (const row of rows) byOwner.get(row[column]!)!.push(row);
  return byOwner;
}

/**
 * Paging and ordering shared by both lists; ties are broken by id so pages never overlap. Titles
 * compare by code point on both databases (the migration declares them so on Postgres).
 */
function ordered<T extends object>(query: Knex.QueryBuilder<T>, listQuery: ListQuery): Knex.QueryBuilder<T> {
  // Each list parameter has a default in the spec, which the validator filled in.
  const { offset, limit, order_by: orderBy, order } = listQuery as Required<ListQuery>;
  query.orderBy(orderBy, order);
  if (orderBy !== 'id') query.orderBy('id', order);
  return query.offset(offset).limit(limit);
}

/** A chat of a page with one of its messages (all `m_` fields null for a chat without any). */
/** A row of the chat page, as an array in the select list's order (`chatPageSql`). */
type ChatPageRow = [
  id: string,
  ownerId: number,
  presetId: string,
  title: string,
  visibility: ChatRow['visibility'],
  createTime: number,
  updateTime: number,
  position: number | null,
  role: MessageRead['role'] | null,
  type: MessageRead['type'] | null,
  content: string | null,
  messageVisibility: boolean | number | null,
  messageCreateTime: number | null,
];

/**
 * A page of the owner's chats joined to their messages: one round trip, and the page and its
 * messages read from one snapshot. `orderBy` and `order` are the spec's enums, checked by the validator.
 */
function chatPageSql(orderBy: string, order: string): string {
  // Never text from a request into SQL, even if validation were bypassed.
  if (!['id', 'title', 'create_time', 'update_time'].includes(orderBy) || !['asc', 'desc'].includes(order)) throw new Error(`unknown sort ${orderBy} ${order}`);
  const sort = (t: string) => `${t}${orderBy} ${order}${orderBy === 'id' ? '' : `, ${t}id ${order}`}`;
  return `SELECT c.id, c.owner_id, c.preset_id, c.title, c.visibility, c.create_time, c.update_time,
      m.position, m.role, m.type, m.content, m.visibility, m.create_time
    FROM (SELECT * FROM aideer_chats WHERE owner_id = ? ORDER BY ${sort('')} LIMIT ? OFFSET ?) c
    LEFT JOIN aideer_messages m ON m.chat_id = c.id
    ORDER BY ${sort('c.')}, m.position`;
}

/** Takes the chat's row lock (Postgres) so message writers on one chat run one after another. */
async function lockChat(trx: Knex, chatId: string): Promise<ChatRow | undefined> {
  return forUpdate(trx, trx('aideer_chats').where({ id: chatId })).first() as Promise<ChatRow | undefined>;
}

// Creating a chat is a hot write: its statements are prepared once (src/db.ts), not built by knex.
const CHAT_COLUMNS = 'id, owner_id, preset_id, title, visibility, create_time, update_time';
const INSERT_CHAT_SQL = `INSERT INTO aideer_chats (${CHAT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`;
const INSERT_CHAT_MESSAGE_SQL = 'INSERT INTO aideer_messages (chat_id, preset_id, position, role, type, content, visibility, create_time) VALUES (?, NULL, ?, ?, ?, ?, ?, ?)';
// Postgres writes the chat and all its messages in one statement (one round trip, no BEGIN and
// COMMIT), the messages as arrays, whatever their number.
const CREATE_CHAT_PG_SQL = `WITH chat AS (${INSERT_CHAT_SQL} RETURNING id)
  INSERT INTO aideer_messages (chat_id, preset_id, position, role, type, content, visibility, create_time)
  SELECT chat.id, NULL, m.position, m.role, m.type, m.content, m.visibility, m.create_time
    FROM chat, unnest(?::int[], ?::text[], ?::text[], ?::text[], ?::boolean[], ?::bigint[]) AS m(position, role, type, content, visibility, create_time)`;

export class Chats {
  /** The list's statement for each sort, prepared on first use. */
  private readonly pages = new Map<string, Prepared<ChatPageRow>>();
  private readonly insertChat: Prepared<never>;
  private readonly insertMessage: Prepared<never>;
  private readonly createPg?: Prepared<never>;

  constructor(
    private readonly db: Knex,
    private readonly now: () => number = Date.now,
  ) {
    this.insertChat = prepare(db, INSERT_CHAT_SQL);
    this.insertMessage = prepare(db, INSERT_CHAT_MESSAGE_SQL);
    if (isPostgres(db)) this.createPg = prepare(db, CREATE_CHAT_PG_SQL);
  }

  /** The chat's row, without its messages (enough for access checks). */
  byId(chatId: string): Promise<ChatRow | undefined> {
    return this.db('aideer_chats').where({ id: chatId }).first();
  }

  /** The chat with its messages, as sent. */
  async read(chat: ChatRow, db: Knex = this.db): Promise<ChatRead> {
    return chatRead(chat, (await messagesOf(db, 'chat_id', [chat.id])).get(chat.id)!);
  }

  async list(ownerId: number, query: ListQuery): Promise<ChatRead[]> {
    const { offset, limit, order_by: orderBy, order } = query as Required<ListQuery>;
    const key = `${orderBy} ${order}`;
    let page = this.pages.get(key);
    // Array rows: 20 rows of 13 columns made into objects cost a third of the statement.
    if (!page) this.pages.set(key, (page = prepare<ChatPageRow>(this.db, chatPageSql(orderBy, order), { rows: 'array' })));
    const out: ChatRead[] = [];
    let chat: ChatRead | undefined;
    for (const [id, ownerIdOf, presetId, title, visibility, createTime, updateTime, position, role, type, content, messageVisibility, messageCreateTime] of await page.all(ownerId, limit, offset)) {
      if (chat?.id !== id) {
        chat = { preset_id: presetId, title, visibility, id, owner_id: ownerIdOf, messages: [], create_time: iso(createTime), update_time: iso(updateTime) };
        out.push(chat);
      }
      if (position !== null) chat.messages.push({ role: role!, type: type!, content: content!, visibility: Boolean(messageVisibility), create_time: iso(messageCreateTime!) });
    }
    return out;
  }

  /** Throws PresetNotFound. */
  async create(ownerId: number, fields: ChatFields): Promise<ChatRead> {
    const now = this.now();
    // The spec has no default for it on purpose (a replacement without one keeps the chat's).
    const chat: ChatRow = { id: newId(), owner_id: ownerId, preset_id: fields.preset_id, title: fields.title, visibility: fields.visibility ?? 'private', create_time: now, update_time: now };
    const rows: MessageRow[] = fields.messages.map((m, position) => ({ chat_id: chat.id, preset_id: null, position, role: m.role, type: m.type, content: m.content, visibility: m.visibility, create_time: m.create_time ?? now }));
    const values = [chat.id, chat.owner_id, chat.preset_id, chat.title, chat.visibility, chat.create_time, chat.update_time];
    try {
      if (this.createPg) {
        const column = <K extends keyof MessageRow>(k: K) => rows.map((r) => r[k]);
        await this.createPg.run(...values, column('position'), column('role'), column('type'), column('content'), column('visibility'), column('create_time'));
      } else {
        await transact(this.db, async (tx) => {
          await this.insertChat.in(tx).run(...values);
          for (const r of rows) await this.insertMessage.in(tx).run(r.chat_id, r.position, r.role, r.type, r.content, r.visibility, r.create_time);
        });
      }
    } catch (err) {
      // The only foreign key the caller chooses is the preset: it was deleted meanwhile.
      if (foreignKeyViolation(err)) throw new PresetNotFound();
      throw err;
    }
    return chatRead(chat, rows);
  }

  /** Full replacement; undefined when the chat is gone. Throws PresetNotFound. */
  async replace(chatId: string, fields: ChatFields): Promise<ChatRead | undefined> {
    const now = this.now();
    return this.saving(async (trx) => {
      const patch = { preset_id: fields.preset_id, title: fields.title, update_time: now, ...(fields.visibility ? { visibility: fields.visibility } : {}) };
      if ((await trx('aideer_chats').where({ id: chatId }).update(patch)) !== 1) return undefined;
      const messages = await writeMessages(trx, { chat_id: chatId }, fields.messages, now);
      return chatRead(await trx('aideer_chats').where({ id: chatId }).first(), messages);
    });
  }

  /**
   * The original's "fork on read" of a shared chat: a new private chat of the reader with the same
   * preset, title and messages. Undefined when the source is gone by then.
   */
  async fork(chatId: string, readerId: number): Promise<ChatRead | undefined> {
    const now = this.now();
    try {
      return await this.db.transaction(async (trx) => {
        const source: ChatRow | undefined = await trx('aideer_chats').where({ id: chatId }).first();
        if (!source) return undefined;
        const copy: ChatRow = { id: newId(), owner_id: readerId, preset_id: source.preset_id, title: source.title, visibility: 'private', create_time: now, update_time: now };
        await trx('aideer_chats').insert(copy);
        await trx.raw(
          `INSERT INTO aideer_messages (chat_id, preset_id, position, role, type, content, visibility, create_time)
           SELECT ?, NULL, position, role, type, content, visibility, create_time FROM aideer_messages WHERE chat_id = ?`,
          [copy.id, source.id],
        );
        return this.read(copy, trx);
      });
    } catch (err) {
      // The preset (and so the source chat) was deleted meanwhile.
      if (foreignKeyViolation(err)) return undefined;
      throw err;
    }
  }

  /** Deletes the chat with its messages and likes. */
  async delete(chatId: string): Promise<boolean> {
    return (await this.db('aideer_chats').where({ id: chatId }).delete()) === 1;
  }

  /** The chat's owner and what a generation needs, or undefined when the chat does not exist. */
  async generationContext(chatId: string): Promise<GenerationContext | undefined> {
    const chat = await this.byId(chatId);
    if (!chat) return undefined;
    const preset: PresetRow | undefined = await this.db('aideer_presets').where({ id: chat.preset_id }).first();
    if (!preset) return undefined;
    const rows: MessageRow[] = await this.db('aideer_messages')
      .select('role', 'content')
      .where({ preset_id: preset.id })
      .orWhere({ chat_id: chat.id })
      // Preset messages (chat_id null) first: a CASE keeps it the same on both databases.
      .orderByRaw('CASE WHEN chat_id IS NULL THEN 0 ELSE 1 END, position');
    return {
      chat: { id: chat.id, owner_id: chat.owner_id, title: chat.title, preset_id: chat.preset_id },
      parameters: JSON.parse(preset.parameters) as PresetParameters,
      messages: rows.map((m) => ({ role: m.role, content: m.content })),
    };
  }

  /** Appends an assistant text message (visibility true, create_time now) at the end, in the caller's transaction; false if the chat is gone. */
  async appendAssistantMessage(trx: Knex, chatId: string, content: string): Promise<boolean> {
    const chat = await lockChat(trx, chatId);
    if (!chat) return false;
    const last = await trx('aideer_messages').where({ chat_id: chat.id }).max({ position: 'position' }).first();
    const position = last?.position == null ? 0 : Number(last.position) + 1;
    await trx('aideer_messages').insert({ chat_id: chat.id, preset_id: null, position, role: 'assistant', type: 'text', content, visibility: true, create_time: this.now() });
    return true;
  }

  /**
   * Sets the chat's title (cut to 50 characters), in the caller's transaction; false if the chat is
   * gone. Surrounding white space is dropped, and a title left empty keeps the current one (a
   * chat title has at least one character).
   */
  async setTitle(trx: Knex, chatId: string, title: string): Promise<boolean> {
    const chat = await lockChat(trx, chatId);
    if (!chat) return false;
    const cut = Array.from(title.trim()).slice(0, 50).join('').trim();
    if (cut) await trx('aideer_chats').where({ id: chat.id }).update({ title: cut });
    return true;
  }

  private async saving<T>(work: (trx: Knex) => Promise<T>): Promise<T> {
    try {
      return await this.db.transaction(work);
    } catch (err) {
      // The only foreign key the caller chooses is the preset: it was deleted meanwhile.
      if (foreignKeyViolation(err)) throw new PresetNotFound();
      throw err;
    }
  }
}

export class Presets {
  constructor(
    private readonly db: Knex,
    private readonly now: () => number = Date.now,
  ) {}

  /** The preset's row, without its messages (enough for access checks). */
  byId(presetId: string): Promise<PresetRow | undefined> {
    return this.db('aideer_presets').where({ id: presetId }).first();
  }

  /** The preset with its messages, as sent. */
  async read(preset: PresetRow): Promise<PresetRead> {
    return presetRead(preset, (await messagesOf(this.db, 'preset_id', [preset.id])).get(preset.id)!);
  }

  /** The caller's own presets, every public one, and (for admins) every unlisted one. */
  async list(userId: number, isAdmin: boolean, query: ListQuery): Promise<PresetRead[]> {
    const visible = this.db('aideer_presets').where((q) => {
      q.where({ owner_id: userId }).orWhere({ visibility: 'public' });
      if (isAdmin) q.orWhere({ visibility: 'unlisted' });
    });
    const presets: PresetRow[] = await ordered(visible, query);
    const messages = await messagesOf(this.db, 'preset_id', presets.map((p) => p.id));
    return presets.map((p) => presetRead(p, messages.get(p.id)!));
  }

  async create(ownerId: number, fields: PresetFields): Promise<PresetRead> {
    const now = this.now();
    const preset: PresetRow = { id: newId(), owner_id: ownerId, ...presetColumns(fields), create_time: now, update_time: now };
    return this.db.transaction(async (trx) => {
      await trx('aideer_presets').insert(preset);
      return presetRead(preset, await writeMessages(trx, { preset_id: preset.id }, fields.messages, now, { created: true }));
    });
  }

  /**
   * Full replacement (omitted fields took their defaults). With `unlessPublic`, a preset that is
   * public when written is left alone, so a check made on an earlier read cannot be raced.
   */
  async replace(presetId: string, fields: PresetFields, { unlessPublic = false } = {}): Promise<PresetRead | 'notFound' | 'public'> {
    const now = this.now();
    return this.db.transaction(async (trx) => {
      const updated = await writable(trx, presetId, unlessPublic).update({ ...presetColumns(fields), update_time: now });
      if (updated !== 1) return untouched(trx, presetId, unlessPublic);
      const messages = await writeMessages(trx, { preset_id: presetId }, fields.messages, now);
      return presetRead(await trx('aideer_presets').where({ id: presetId }).first(), messages);
    });
  }

  /**
   * Deletes the preset with its messages and likes, and every chat (of any user) built on it with
   * theirs. `unlessPublic` as for replace.
   */
  async delete(presetId: string, { unlessPublic = false } = {}): Promise<'deleted' | 'notFound' | 'public'> {
    if ((await writable(this.db, presetId, unlessPublic).delete()) === 1) return 'deleted';
    return untouched(this.db, presetId, unlessPublic);
  }
}

/** The preset's own columns from a body. */
function presetColumns(fields: PresetFields) {
  const { title, description, type, visibility, parameters } = fields;
  return { title, description, type, visibility, parameters: JSON.stringify(storedParameters(parameters)) };
}

/** The preset's row for a write; not a public one when `unlessPublic`. */
function writable(db: Knex, presetId: string, unlessPublic: boolean): Knex.QueryBuilder {
  const row = db('aideer_presets').where({ id: presetId });
  return unlessPublic ? row.whereNot({ visibility: 'public' }) : row;
}

/** Why a write on the preset touched no row: it is gone, or (only possible when guarded) public by now. */
async function untouched(db: Knex, presetId: string, unlessPublic: boolean): Promise<'notFound' | 'public'> {
  if (!unlessPublic) return 'notFound';
  return (await db('aideer_presets').select('id').where({ id: presetId }).first()) ? 'public' : 'notFound';
}

type LikeResult = 'liked' | 'not_found' | 'exists';

/** Likes (favourites) of presets and chats; as the original, liking checks no visibility. */
export class Likes {
  constructor(private readonly db: Knex) {}

  async of(userId: number): Promise<LikesRead> {
    const [presets, chats] = await Promise.all([
      this.db('aideer_preset_likes').select('preset_id').where({ user_id: userId }).orderBy('preset_id'),
      this.db('aideer_chat_likes').select('chat_id').where({ user_id: userId }).orderBy('chat_id'),
    ]);
    return { preset_ids: presets.map((r: { preset_id: string }) => r.preset_id), chat_ids: chats.map((r: { chat_id: string }) => r.chat_id) };
  }

  likePreset(userId: number, presetId: string): Promise<LikeResult> {
    return this.like('aideer_preset_likes', { user_id: userId, preset_id: presetId });
  }

  likeChat(userId: number, chatId: string): Promise<LikeResult> {
    return this.like('aideer_chat_likes', { user_id: userId, chat_id: chatId });
  }

  async unlikePreset(userId: number, presetId: string): Promise<boolean> {
    return (await this.db('aideer_preset_likes').where({ user_id: userId, preset_id: presetId }).delete()) === 1;
  }

  async unlikeChat(userId: number, chatId: string): Promise<boolean> {
    return (await this.db('aideer_chat_likes').where({ user_id: userId, chat_id: chatId }).delete()) === 1;
  }

  private async like(table: string, row: Record<string, unknown>): Promise<LikeResult> {
    try {
      await this.db(table).insert(row);
      return 'liked';
    } catch (err) {
      // A like that exists has its preset or chat, so "not found" still comes before "already exists", as the original.
      if (uniqueViolation(err) !== undefined) return 'exists';
      // No such preset or chat (or the caller was deleted meanwhile): nothing to like either way.
      if (foreignKeyViolation(err)) return 'not_found';
      throw err;
    }
  }
}
