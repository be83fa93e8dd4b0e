// AIDeer presets, chats, their messages and likes: the only module that reads or writes those
// tables. Messages live in SQL with their chat or preset (A4), in `position` order; everything
// hangs off its user, preset or chat with ON DELETE CASCADE, so one DELETE removes it all at once.
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { components } from '../../generated/aideer.ts';
import { forUpdate, isPostgres } from '../db.ts';
import { foreignKeyViolation, uniqueViolation } from '../dbErrors.ts';
import { loadSpec } from '../spec.ts';

type Schemas = components['schemas'];
/** A preset's complete model parameters, as stored and as sent to the provider. */
export type PresetParameters = Schemas['PresetParametersRead'];
export type MessageInput = Schemas['Message'];
export type MessageRead = Schemas['MessageRead'];
export type ChatRead = Schemas['ChatRead'];
export type PresetRead = Schemas['PresetRead'];
export type ChatVisibility = Schemas['ChatVisibility'];
export type PresetVisibility = Schemas['PresetVisibility'];
export type LikesRead = Schemas['LikesRead'];

export interface GenerationContext {
  chat: { id: string; owner_id: number; title: string; preset_id: string };
  /** The complete stored object. */
  parameters: PresetParameters;
  /** Preset messages, then chat messages, in order. */
  messages: { role: 'user' | 'assistant' | 'system'; content: string }[];
}

export interface ListOptions {
  offset: number;
  limit: number;
  orderBy: Schemas['OrderBy'];
  order: Schemas['Order'];
}

/** List options from the query, with the spec's defaults (the validator fills them in too). */
export function listOptions(query: { offset?: number; limit?: number; order_by?: Schemas['OrderBy']; order?: Schemas['Order'] }): ListOptions {
  return { offset: query.offset ?? 0, limit: query.limit ?? 10, orderBy: query.order_by ?? 'create_time', order: query.order ?? 'desc' };
}

export interface ChatRow {
  id: string;
  owner_id: number;
  preset_id: string;
  title: string;
  visibility: ChatVisibility;
  create_time: number;
  update_time: number;
}

export interface PresetRow {
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

export interface ChatFields {
  preset_id: string;
  title: string;
  /** On replace, undefined keeps the current visibility. */
  visibility?: ChatVisibility;
  messages: MessageInput[];
}

export interface PresetFields {
  title: string;
  description?: string | null;
  type?: Schemas['PresetType'];
  visibility?: PresetVisibility;
  messages: MessageInput[];
  parameters?: Partial<Schemas['PresetParameters']>;
}

/** The chat's preset does not exist (or was deleted while the chat was being saved). */
export class PresetNotFound extends Error {}

/** See firstInvalidMessageTime: callers check first, so this is a programming error. */
export class InvalidMessageTime extends Error {
  constructor(readonly index: number) {
    super(`messages[${index}].create_time`);
  }
}

// The original picks one seed when the process starts and gives it to every preset saved without one.
export const PROCESS_SEED = Number(crypto.randomBytes(8).readBigUInt64BE() >> 11n);

// The other defaults are the spec's (PresetParameters), read once so the two cannot drift.
const PARAMETER_DEFAULTS: Record<string, unknown> = (() => {
  const schema = (loadSpec('aideer').components as { schemas: Record<string, { properties: Record<string, { default?: unknown }> }> }).schemas.PresetParameters;
  return Object.fromEntries(Object.entries(schema.properties).map(([name, prop]) => [name, name === 'seed' ? PROCESS_SEED : prop.default]));
})();

/** The given parameters completed with the defaults; unknown keys are dropped. */
export function completeParameters(given: Partial<Schemas['PresetParameters']> = {}): PresetParameters {
  const out: Record<string, unknown> = {};
  for (const [name, fallback] of Object.entries(PARAMETER_DEFAULTS)) {
    const value = (given as Record<string, unknown>)[name];
    out[name] = value === undefined ? fallback : value;
  }
  return out as PresetParameters;
}

// Statements stay well under SQLite's and Postgres' bound-parameter limits.
const INSERT_CHUNK = 500;
const MAX_ISO_MS = Date.parse('9999-12-31T23:59:59.999Z');
const MIN_ISO_MS = Date.parse('0000-01-01T00:00:00.000Z');

const iso = (ms: number) => new Date(ms).toISOString();
const newId = () => crypto.randomUUID();
// Clients may send upper-case UUIDs; ids are stored lower-case.
const normalId = (id: string) => id.toLowerCase();

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

/** The message's time in epoch ms (`now` when omitted), or NaN when it cannot be stored and sent back. */
function messageTime(m: MessageInput, now: number): number {
  if (m.create_time === undefined) return now;
  const ms = Date.parse(m.create_time);
  return ms >= MIN_ISO_MS && ms <= MAX_ISO_MS ? ms : NaN;
}

/**
 * The index of the first message whose `create_time` passes the format check but is no storable
 * instant: a leap second, or an offset that moves it outside the years 0000–9999 in UTC.
 */
export function firstInvalidMessageTime(messages: MessageInput[]): number | undefined {
  const index = messages.findIndex((m) => Number.isNaN(messageTime(m, 0)));
  return index < 0 ? undefined : index;
}

/** Replaces the messages of a chat or preset, in the caller's transaction. */
async function writeMessages(trx: Knex, owner: Owner, messages: MessageInput[], now: number): Promise<void> {
  const rows = messages.map((m, position) => {
    const createTime = messageTime(m, now);
    if (Number.isNaN(createTime)) throw new InvalidMessageTime(position);
    return { chat_id: null, preset_id: null, ...owner, position, role: m.role, type: m.type, content: m.content, visibility: m.visibility ?? true, create_time: createTime };
  });
  await trx('aideer_messages').where(owner).delete();
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) await trx('aideer_messages').insert(rows.slice(i, i + INSERT_CHUNK));
}

/** Messages of several chats or presets, grouped by owner id, each in order. */
async function messagesOf(db: Knex, column: 'chat_id' | 'preset_id', ids: string[]): Promise<Map<string, MessageRow[]>> {
  const byOwner = new Map<string, MessageRow[]>(ids.map((id) => [id, []]));
  if (!ids.length) return byOwner;
  const rows: MessageRow[] = await db('aideer_messages').whereIn(column, ids).orderBy([column, 'position']);
  for (const row of rows) byOwner.get(row[column]!)!.push(row);
  return byOwner;
}

/** Paging and ordering shared by both lists; ties are broken by id so pages never overlap. */
function ordered<T extends object>(db: Knex, query: Knex.QueryBuilder<T>, { offset, limit, orderBy, order }: ListOptions): Knex.QueryBuilder<T> {
  const direction = order === 'asc' ? 'asc' : 'desc';
  // Byte order on both databases, whatever the Postgres collation is.
  if (orderBy === 'title' && isPostgres(db)) query.orderByRaw(`title COLLATE "C" ${direction}`);
  else query.orderBy(orderBy, direction);
  if (orderBy !== 'id') query.orderBy('id', direction);
  return query.offset(offset).limit(limit);
}

/** Takes the chat's row lock (Postgres) so message writers on one chat run one after another. */
async function lockChat(trx: Knex, chatId: string): Promise<ChatRow | undefined> {
  return forUpdate(trx, trx('aideer_chats').where({ id: chatId })).first() as Promise<ChatRow | undefined>;
}

export class Chats {
  constructor(
    private readonly db: Knex,
    private readonly now: () => number = Date.now,
  ) {}

  byId(chatId: string): Promise<ChatRow | undefined> {
    return this.db('aideer_chats').where({ id: normalId(chatId) }).first();
  }

  async chatOwner(chatId: string): Promise<number | undefined> {
    const row = await this.db('aideer_chats').select('owner_id').where({ id: normalId(chatId) }).first();
    return row?.owner_id;
  }

  async read(chatId: string, db: Knex = this.db): Promise<ChatRead | undefined> {
    const id = normalId(chatId);
    const chat: ChatRow | undefined = await db('aideer_chats').where({ id }).first();
    if (!chat) return undefined;
    return chatRead(chat, (await messagesOf(db, 'chat_id', [id])).get(id)!);
  }

  async list(ownerId: number, options: ListOptions): Promise<ChatRead[]> {
    const chats: ChatRow[] = await ordered(this.db, this.db('aideer_chats').where({ owner_id: ownerId }), options);
    const messages = await messagesOf(this.db, 'chat_id', chats.map((c) => c.id));
    return chats.map((c) => chatRead(c, messages.get(c.id)!));
  }

  /** Throws PresetNotFound or InvalidMessageTime. */
  async create(ownerId: number, fields: ChatFields): Promise<ChatRead> {
    const now = this.now();
    const id = newId();
    return this.saving(async (trx) => {
      await trx('aideer_chats').insert({ id, owner_id: ownerId, preset_id: normalId(fields.preset_id), title: fields.title, visibility: fields.visibility ?? 'private', create_time: now, update_time: now });
      await writeMessages(trx, { chat_id: id }, fields.messages, now);
      return (await this.read(id, trx))!;
    });
  }

  /** Full replacement; undefined when the chat is gone. Throws PresetNotFound or InvalidMessageTime. */
  async replace(chatId: string, fields: ChatFields): Promise<ChatRead | undefined> {
    const id = normalId(chatId);
    const now = this.now();
    return this.saving(async (trx) => {
      const patch = { preset_id: normalId(fields.preset_id), title: fields.title, update_time: now, ...(fields.visibility ? { visibility: fields.visibility } : {}) };
      if ((await trx('aideer_chats').where({ id }).update(patch)) !== 1) return undefined;
      await writeMessages(trx, { chat_id: id }, fields.messages, now);
      return this.read(id, trx);
    });
  }

  /**
   * The original's "fork on read" of a shared chat: a new private chat of the reader with the same
   * preset, title and messages. Undefined when the source is gone by then.
   */
  async fork(chatId: string, readerId: number): Promise<ChatRead | undefined> {
    const now = this.now();
    const id = newId();
    try {
      return await this.db.transaction(async (trx) => {
        const source: ChatRow | undefined = await trx('aideer_chats').where({ id: normalId(chatId) }).first();
        if (!source) return undefined;
        await trx('aideer_chats').insert({ id, owner_id: readerId, preset_id: source.preset_id, title: source.title, visibility: 'private', create_time: now, update_time: now });
        await trx.raw(
          `INSERT INTO aideer_messages (chat_id, preset_id, position, role, type, content, visibility, create_time)
           SELECT ?, NULL, position, role, type, content, visibility, create_time FROM aideer_messages WHERE chat_id = ?`,
          [id, source.id],
        );
        return this.read(id, trx);
      });
    } catch (err) {
      // The preset (and so the source chat) was deleted meanwhile.
      if (foreignKeyViolation(err)) return undefined;
      throw err;
    }
  }

  /** Deletes the chat with its messages and likes. */
  async delete(chatId: string): Promise<boolean> {
    return (await this.db('aideer_chats').where({ id: normalId(chatId) }).delete()) === 1;
  }

  /** The chat's owner and what a generation needs, or undefined when the chat does not exist. */
  async generationContext(chatId: string, db: Knex = this.db): Promise<GenerationContext | undefined> {
    const chat: ChatRow | undefined = await db('aideer_chats').where({ id: normalId(chatId) }).first();
    if (!chat) return undefined;
    const preset: PresetRow | undefined = await db('aideer_presets').where({ id: chat.preset_id }).first();
    if (!preset) return undefined;
    const rows: MessageRow[] = await db('aideer_messages')
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
    const chat = await lockChat(trx, normalId(chatId));
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
    const chat = await lockChat(trx, normalId(chatId));
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

  byId(presetId: string): Promise<PresetRow | undefined> {
    return this.db('aideer_presets').where({ id: normalId(presetId) }).first();
  }

  async exists(presetId: string): Promise<boolean> {
    return Boolean(await this.db('aideer_presets').select('id').where({ id: normalId(presetId) }).first());
  }

  async read(presetId: string, db: Knex = this.db): Promise<PresetRead | undefined> {
    const id = normalId(presetId);
    const preset: PresetRow | undefined = await db('aideer_presets').where({ id }).first();
    if (!preset) return undefined;
    return presetRead(preset, (await messagesOf(db, 'preset_id', [id])).get(id)!);
  }

  /** The caller's own presets, every public one, and (for admins) every unlisted one. */
  async list(userId: number, isAdmin: boolean, options: ListOptions): Promise<PresetRead[]> {
    const visible = this.db('aideer_presets').where((q) => {
      q.where({ owner_id: userId }).orWhere({ visibility: 'public' });
      if (isAdmin) q.orWhere({ visibility: 'unlisted' });
    });
    const presets: PresetRow[] = await ordered(this.db, visible, options);
    const messages = await messagesOf(this.db, 'preset_id', presets.map((p) => p.id));
    return presets.map((p) => presetRead(p, messages.get(p.id)!));
  }

  /** Throws InvalidMessageTime. */
  async create(ownerId: number, fields: PresetFields): Promise<PresetRead> {
    const now = this.now();
    const id = newId();
    return this.db.transaction(async (trx) => {
      await trx('aideer_presets').insert({ id, owner_id: ownerId, ...this.columns(fields), create_time: now, update_time: now });
      await writeMessages(trx, { preset_id: id }, fields.messages, now);
      return (await this.read(id, trx))!;
    });
  }

  /** Full replacement: omitted fields take their defaults. Undefined when the preset is gone. Throws InvalidMessageTime. */
  async replace(presetId: string, fields: PresetFields): Promise<PresetRead | undefined> {
    const id = normalId(presetId);
    const now = this.now();
    return this.db.transaction(async (trx) => {
      if ((await trx('aideer_presets').where({ id }).update({ ...this.columns(fields), update_time: now })) !== 1) return undefined;
      await writeMessages(trx, { preset_id: id }, fields.messages, now);
      return this.read(id, trx);
    });
  }

  /** Deletes the preset with its messages and likes, and every chat (of any user) built on it with theirs. */
  async delete(presetId: string): Promise<boolean> {
    return (await this.db('aideer_presets').where({ id: normalId(presetId) }).delete()) === 1;
  }

  private columns(fields: PresetFields) {
    return {
      title: fields.title,
      description: fields.description ?? null,
      type: fields.type ?? 'chat_generation',
      visibility: fields.visibility ?? 'private',
      parameters: JSON.stringify(completeParameters(fields.parameters)),
    };
  }
}

export type LikeResult = 'liked' | 'not_found' | 'exists';

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
    return this.like('aideer_preset_likes', 'aideer_presets', { user_id: userId, preset_id: normalId(presetId) }, normalId(presetId));
  }

  likeChat(userId: number, chatId: string): Promise<LikeResult> {
    return this.like('aideer_chat_likes', 'aideer_chats', { user_id: userId, chat_id: normalId(chatId) }, normalId(chatId));
  }

  async unlikePreset(userId: number, presetId: string): Promise<boolean> {
    return (await this.db('aideer_preset_likes').where({ user_id: userId, preset_id: normalId(presetId) }).delete()) === 1;
  }

  async unlikeChat(userId: number, chatId: string): Promise<boolean> {
    return (await this.db('aideer_chat_likes').where({ user_id: userId, chat_id: normalId(chatId) }).delete()) === 1;
  }

  private async like(table: string, target: string, row: Record<string, unknown>, targetId: string): Promise<LikeResult> {
    // The original answers "not found" before "already exists".
    if (!(await this.db(target).select('id').where({ id: targetId }).first())) return 'not_found';
    try {
      await this.db(table).insert(row);
      return 'liked';
    } catch (err) {
      if (uniqueViolation(err) !== undefined) return 'exists';
      // The preset or chat was deleted since the check (or the caller was): nothing to like either way.
      if (foreignKeyViolation(err)) return 'not_found';
      throw err;
    }
  }
}
