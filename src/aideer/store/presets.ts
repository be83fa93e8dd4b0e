// AIDeer presets: the only module that reads or writes `aideer_presets` (their messages through
// messages.ts). Deleting a preset removes its messages and likes, and every chat built on it.
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { messagesOf, writeMessages, type NewMessage } from './messages.ts';
import type { ListPage, MessageRow, PresetRow } from './rows.ts';

export interface PresetWithMessages {
  preset: PresetRow;
  messages: MessageRow[];
}

/** A preset's own columns as written, `parameters` the complete object as JSON. */
export type PresetFields = Pick<PresetRow, 'title' | 'description' | 'type' | 'visibility' | 'parameters'> & {
  messages: NewMessage[];
};

/** The preset's row for a write; not a public one when `unlessPublic`. */
function writable(db: Knex, presetId: string, unlessPublic: boolean) {
  const row = db('aideer_presets').where({ id: presetId });
  return unlessPublic ? row.whereNot({ visibility: 'public' }) : row;
}

/** Why a write touched no row: the preset is gone, or (only possible when guarded) public by now. */
async function untouched(db: Knex, presetId: string, unlessPublic: boolean): Promise<'notFound' | 'public'> {
  if (!unlessPublic) return 'notFound';
  return (await db('aideer_presets').select('id').where({ id: presetId }).first()) ? 'public' : 'notFound';
}

const columnsOf = ({ title, description, type, visibility, parameters }: PresetFields) => ({
  title,
  description,
  type,
  visibility,
  parameters,
});

export class PresetStore {
  constructor(
    private readonly db: Knex,
    private readonly now: () => number = Date.now,
  ) {}

  /** The preset's row, without its messages (enough for access checks). */
  byId(presetId: string): Promise<PresetRow | undefined> {
    return this.db('aideer_presets').where({ id: presetId }).first();
  }

  async withMessages(preset: PresetRow): Promise<PresetWithMessages> {
    return { preset, messages: (await messagesOf(this.db, 'preset_id', [preset.id])).get(preset.id) ?? [] };
  }

  /** A page of the presets the user owns or that are public (and, with `unlisted`, every unlisted one). */
  async page(
    userId: number,
    unlisted: boolean,
    { offset, limit, order_by: orderBy, order }: ListPage,
  ): Promise<PresetWithMessages[]> {
    const query = this.db('aideer_presets').where((q) => {
      void q.where({ owner_id: userId }).orWhere({ visibility: 'public' });
      if (unlisted) void q.orWhere({ visibility: 'unlisted' });
    });
    // Ties are broken by id so pages never overlap; titles compare by code point on both databases.
    void query.orderBy(orderBy, order);
    if (orderBy !== 'id') void query.orderBy('id', order);
    const presets = await query.offset(offset).limit(limit);
    const messages = await messagesOf(
      this.db,
      'preset_id',
      presets.map((p) => p.id),
    );
    return presets.map((preset) => ({ preset, messages: messages.get(preset.id) ?? [] }));
  }

  async insert(ownerId: number, fields: PresetFields): Promise<PresetWithMessages> {
    const now = this.now();
    const preset: PresetRow = {
      id: crypto.randomUUID(),
      owner_id: ownerId,
      ...columnsOf(fields),
      create_time: now,
      update_time: now,
    };
    return this.db.transaction(async (trx) => {
      await trx('aideer_presets').insert(preset);
      const messages = await writeMessages(trx, { preset_id: preset.id }, fields.messages, now, { created: true });
      return { preset, messages };
    });
  }

  /**
   * Full replacement. With `unlessPublic`, a preset that is public when written is left alone, so a
   * check made on an earlier read cannot be raced.
   */
  async replace(
    presetId: string,
    fields: PresetFields,
    { unlessPublic = false } = {},
  ): Promise<PresetWithMessages | 'notFound' | 'public'> {
    const now = this.now();
    return this.db.transaction(async (trx) => {
      const updated = await writable(trx, presetId, unlessPublic).update({ ...columnsOf(fields), update_time: now });
      if (updated !== 1) return untouched(trx, presetId, unlessPublic);
      const messages = await writeMessages(trx, { preset_id: presetId }, fields.messages, now);
      const preset = await trx('aideer_presets').where({ id: presetId }).first();
      return preset ? { preset, messages } : 'notFound';
    });
  }

  /** Deletes the preset with everything built on it. `unlessPublic` as for replace. */
  async delete(presetId: string, { unlessPublic = false } = {}): Promise<'deleted' | 'notFound' | 'public'> {
    if ((await writable(this.db, presetId, unlessPublic).delete()) === 1) return 'deleted';
    return untouched(this.db, presetId, unlessPublic);
  }
}
