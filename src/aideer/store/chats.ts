// AIDeer chats: the only module that reads or writes `aideer_chats` (their messages through
// messages.ts). Everything hangs off its user or preset with ON DELETE CASCADE, so one DELETE
// removes a chat with its messages and likes.
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { forUpdate, isPostgres, prepare, transact, type Prepared } from '../../db.ts';
import { foreignKeyViolation } from '../../dbErrors.ts';
import { messageRows, messagesOf, writeMessages, type NewMessage } from './messages.ts';
import type { ChatRow, ListPage, MessageRow, PresetRow } from './rows.ts';

export interface ChatWithMessages {
  chat: ChatRow;
  messages: MessageRow[];
}

export interface ChatFields {
  preset_id: string;
  title: string;
  /** On replace, undefined keeps the current visibility. */
  visibility?: ChatRow['visibility'];
  messages: NewMessage[];
}

export interface GenerationContext {
  chat: ChatRow;
  /** The complete stored object, as JSON. */
  parameters: PresetRow['parameters'];
  /** Preset messages, then chat messages, in order. */
  messages: Pick<MessageRow, 'role' | 'content'>[];
}

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
  role: MessageRow['role'] | null,
  type: MessageRow['type'] | null,
  content: string | null,
  messageVisibility: boolean | number | null,
  messageCreateTime: number | null,
];

const SORTS = new Set(['id', 'title', 'create_time', 'update_time']);

/**
 * A page of the owner's chats joined to their messages: one round trip, and the page and its
 * messages read from one snapshot. Ties are broken by id so pages never overlap; titles compare by
 * code point on both databases (the migration declares them so on Postgres).
 */
function chatPageSql(orderBy: string, order: string): string {
  // Never text from a request into SQL, even if validation were bypassed.
  if (!SORTS.has(orderBy) || !['asc', 'desc'].includes(order)) throw new Error(`unknown sort ${orderBy} ${order}`);
  const sort = (t: string) => `${t}${orderBy} ${order}${orderBy === 'id' ? '' : `, ${t}id ${order}`}`;
  return `SELECT c.id, c.owner_id, c.preset_id, c.title, c.visibility, c.create_time, c.update_time,
      m.position, m.role, m.type, m.content, m.visibility, m.create_time
    FROM (SELECT * FROM aideer_chats WHERE owner_id = ? ORDER BY ${sort('')} LIMIT ? OFFSET ?) c
    LEFT JOIN aideer_messages m ON m.chat_id = c.id
    ORDER BY ${sort('c.')}, m.position`;
}

// Creating a chat is a hot write: its statements are prepared once (src/db.ts), not built by knex.
const CHAT_COLUMNS = 'id, owner_id, preset_id, title, visibility, create_time, update_time';
const MESSAGE_COLUMNS = 'chat_id, preset_id, position, role, type, content, visibility, create_time';
const INSERT_CHAT_SQL = `INSERT INTO aideer_chats (${CHAT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`;
const INSERT_CHAT_MESSAGE_SQL = `INSERT INTO aideer_messages (${MESSAGE_COLUMNS}) VALUES (?, NULL, ?, ?, ?, ?, ?, ?)`;
// Postgres writes the chat and all its messages in one statement (one round trip, no BEGIN and
// COMMIT), the messages as arrays, whatever their number.
const CREATE_CHAT_PG_SQL = `WITH chat AS (${INSERT_CHAT_SQL} RETURNING id)
  INSERT INTO aideer_messages (${MESSAGE_COLUMNS})
  SELECT chat.id, NULL, m.position, m.role, m.type, m.content, m.visibility, m.create_time
    FROM chat, unnest(?::int[], ?::text[], ?::text[], ?::text[], ?::boolean[], ?::bigint[])
      AS m(position, role, type, content, visibility, create_time)`;
const FORK_MESSAGES_SQL = `INSERT INTO aideer_messages (${MESSAGE_COLUMNS})
  SELECT ?, NULL, position, role, type, content, visibility, create_time FROM aideer_messages WHERE chat_id = ?`;

const newId = () => crypto.randomUUID();

/** The chat's row lock (Postgres), so message writers on one chat run one after another. */
function lockChat(trx: Knex, chatId: string): Promise<ChatRow | undefined> {
  return forUpdate(trx, trx('aideer_chats').where({ id: chatId })).first();
}

export class ChatStore {
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

  async withMessages(chat: ChatRow, db: Knex = this.db): Promise<ChatWithMessages> {
    return { chat, messages: (await messagesOf(db, 'chat_id', [chat.id])).get(chat.id) ?? [] };
  }

  /** A page of the owner's chats with their messages. */
  async page(ownerId: number, { offset, limit, order_by: orderBy, order }: ListPage): Promise<ChatWithMessages[]> {
    const key = `${orderBy} ${order}`;
    let page = this.pages.get(key);
    // Array rows: 20 rows of 13 columns made into objects by the driver cost a third of the statement.
    if (!page)
      this.pages.set(key, (page = prepare<ChatPageRow>(this.db, chatPageSql(orderBy, order), { rows: 'array' })));
    const out: ChatWithMessages[] = [];
    let current: ChatWithMessages | undefined;
    for (const row of await page.all(ownerId, limit, offset)) {
      const [id, owner_id, preset_id, title, visibility, create_time, update_time] = row;
      if (current?.chat.id !== id) {
        current = { chat: { id, owner_id, preset_id, title, visibility, create_time, update_time }, messages: [] };
        out.push(current);
      }
      const [, , , , , , , position, role, type, content, messageVisibility, messageCreateTime] = row;
      // A chat without messages has one row, its message columns null (LEFT JOIN).
      if (position === null || role === null || type === null || content === null || messageCreateTime === null)
        continue;
      current.messages.push({
        chat_id: id,
        preset_id: null,
        position,
        role,
        type,
        content,
        visibility: Boolean(messageVisibility),
        create_time: messageCreateTime,
      });
    }
    return out;
  }

  /** A new chat of the owner; 'presetNotFound' when its preset does not exist (or was just deleted). */
  async insert(ownerId: number, fields: ChatFields): Promise<ChatWithMessages | 'presetNotFound'> {
    const now = this.now();
    // The spec has no default for it on purpose (a replacement without one keeps the chat's).
    const chat: ChatRow = {
      id: newId(),
      owner_id: ownerId,
      preset_id: fields.preset_id,
      title: fields.title,
      visibility: fields.visibility ?? 'private',
      create_time: now,
      update_time: now,
    };
    const rows = messageRows({ chat_id: chat.id }, fields.messages, now);
    const values = [
      chat.id,
      chat.owner_id,
      chat.preset_id,
      chat.title,
      chat.visibility,
      chat.create_time,
      chat.update_time,
    ];
    try {
      if (this.createPg) {
        const column = <K extends keyof MessageRow>(k: K) => rows.map((r) => r[k]);
        const arrays = [column('position'), column('role'), column('type'), column('content')];
        await this.createPg.run(...values, ...arrays, column('visibility'), column('create_time'));
      } else {
        await transact(this.db, async (tx) => {
          await this.insertChat.in(tx).run(...values);
          for (const r of rows) {
            await this.insertMessage
              .in(tx)
              .run(r.chat_id, r.position, r.role, r.type, r.content, r.visibility, r.create_time);
          }
        });
      }
    } catch (err) {
      // The only foreign key the caller chooses is the preset.
      if (foreignKeyViolation(err)) return 'presetNotFound';
      throw err;
    }
    return { chat, messages: rows };
  }

  /** Full replacement of the chat and its messages. */
  async replace(chatId: string, fields: ChatFields): Promise<ChatWithMessages | 'notFound' | 'presetNotFound'> {
    const now = this.now();
    try {
      return await this.db.transaction(async (trx) => {
        const patch = { preset_id: fields.preset_id, title: fields.title, update_time: now };
        const updated = await trx('aideer_chats')
          .where({ id: chatId })
          .update(fields.visibility ? { ...patch, visibility: fields.visibility } : patch);
        if (updated !== 1) return 'notFound';
        const messages = await writeMessages(trx, { chat_id: chatId }, fields.messages, now);
        const chat = await trx('aideer_chats').where({ id: chatId }).first();
        return chat ? { chat, messages } : 'notFound';
      });
    } catch (err) {
      // The only foreign key the caller chooses is the preset: it was deleted meanwhile.
      if (foreignKeyViolation(err)) return 'presetNotFound';
      throw err;
    }
  }

  /**
   * A new private chat of `ownerId` with the source's preset, title and messages. Undefined when
   * the source is gone by then (its preset may have been deleted meanwhile).
   */
  async copy(chatId: string, ownerId: number): Promise<ChatWithMessages | undefined> {
    const now = this.now();
    try {
      return await this.db.transaction(async (trx) => {
        const source = await trx('aideer_chats').where({ id: chatId }).first();
        if (!source) return undefined;
        const copy: ChatRow = {
          ...source,
          id: newId(),
          owner_id: ownerId,
          visibility: 'private',
          create_time: now,
          update_time: now,
        };
        await trx('aideer_chats').insert(copy);
        await trx.raw(FORK_MESSAGES_SQL, [copy.id, source.id]);
        return this.withMessages(copy, trx);
      });
    } catch (err) {
      if (foreignKeyViolation(err)) return undefined;
      throw err;
    }
  }

  /** Deletes the chat with its messages and likes; false when it was gone. */
  async delete(chatId: string): Promise<boolean> {
    return (await this.db('aideer_chats').where({ id: chatId }).delete()) === 1;
  }

  /** What a generation needs: the chat, its preset's parameters and all messages; undefined when gone. */
  async generationContext(chatId: string): Promise<GenerationContext | undefined> {
    const chat = await this.byId(chatId);
    if (!chat) return undefined;
    const preset = await this.db('aideer_presets').where({ id: chat.preset_id }).first();
    if (!preset) return undefined;
    const messages = await this.db('aideer_messages')
      .select('role', 'content')
      .where({ preset_id: preset.id })
      .orWhere({ chat_id: chat.id })
      // Preset messages (chat_id null) first: a CASE keeps it the same on both databases.
      .orderByRaw('CASE WHEN chat_id IS NULL THEN 0 ELSE 1 END, position');
    return { chat, parameters: preset.parameters, messages };
  }

  /**
   * Appends an assistant text message (visible, created now) at the end, in the caller's
   * transaction; false if the chat is gone.
   */
  async appendAssistantMessage(trx: Knex, chatId: string, content: string): Promise<boolean> {
    const chat = await lockChat(trx, chatId);
    if (!chat) return false;
    const last = await trx('aideer_messages').where({ chat_id: chat.id }).max({ position: 'position' }).first();
    const position = last?.position == null ? 0 : Number(last.position) + 1;
    const row: MessageRow = {
      chat_id: chat.id,
      preset_id: null,
      position,
      role: 'assistant',
      type: 'text',
      content,
      visibility: true,
      create_time: this.now(),
    };
    await trx('aideer_messages').insert(row);
    return true;
  }

  /** Sets the chat's title (undefined keeps it), in the caller's transaction; false if the chat is gone. */
  async setTitle(trx: Knex, chatId: string, title: string | undefined): Promise<boolean> {
    const chat = await lockChat(trx, chatId);
    if (!chat) return false;
    if (title !== undefined) await trx('aideer_chats').where({ id: chat.id }).update({ title });
    return true;
  }
}
