// Messages of chats and presets (A4): kept in SQL with their owner, in `position` order. Only the
// chat and preset stores use this module.
import type { Knex } from 'knex';
import type { MessageRow } from './rows.ts';

/** A message ready to store (the domain's messagesToStore makes them from a body). */
export interface NewMessage {
  role: MessageRow['role'];
  type: MessageRow['type'];
  content: string;
  visibility: boolean;
  /** Epoch ms; undefined for the time of saving. */
  create_time: number | undefined;
}

export type MessageOwner = { chat_id: string } | { preset_id: string };

// Statements stay well under SQLite's and Postgres' bound-parameter limits.
const INSERT_CHUNK = 500;

/** The rows that `messages` become under `owner`, each without a time taking `now`. */
export function messageRows(owner: MessageOwner, messages: NewMessage[], now: number): MessageRow[] {
  return messages.map((m, position) => ({
    chat_id: null,
    preset_id: null,
    ...owner,
    position,
    role: m.role,
    type: m.type,
    content: m.content,
    visibility: m.visibility,
    create_time: m.create_time ?? now,
  }));
}

/**
 * Replaces the messages of a chat or preset, in the caller's transaction; answers the rows written.
 * `created`: the owner was inserted in this transaction, so it has none to delete.
 */
export async function writeMessages(
  trx: Knex,
  owner: MessageOwner,
  messages: NewMessage[],
  now: number,
  { created = false } = {},
): Promise<MessageRow[]> {
  const rows = messageRows(owner, messages, now);
  if (!created) await trx('aideer_messages').where(owner).delete();
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await trx('aideer_messages').insert(rows.slice(i, i + INSERT_CHUNK));
  }
  return rows;
}

/** Messages of several chats or presets, grouped by owner id, each in order. */
export async function messagesOf(
  db: Knex,
  column: 'chat_id' | 'preset_id',
  ids: string[],
): Promise<Map<string, MessageRow[]>> {
  const byOwner = new Map<string, MessageRow[]>(ids.map((id) => [id, []]));
  if (!ids.length) return byOwner;
  const rows = await db('aideer_messages').whereIn(column, ids).orderBy([column, 'position']);
  for (const row of rows) {
    const owner = row[column];
    if (owner !== null) byOwner.get(owner)?.push(row);
  }
  return byOwner;
}
