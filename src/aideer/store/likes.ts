// Likes (favourites) of presets and chats (A13): the only module that reads or writes
// `aideer_preset_likes` and `aideer_chat_likes`.
import type { Knex } from 'knex';
import { foreignKeyViolation, uniqueViolation } from '../../dbErrors.ts';

export type LikeOutcome = 'liked' | 'notFound' | 'exists';

export class LikeStore {
  constructor(private readonly db: Knex) {}

  /** The ids the user liked, each list in id order. */
  async of(userId: number): Promise<{ presetIds: string[]; chatIds: string[] }> {
    const [presets, chats] = await Promise.all([
      this.db('aideer_preset_likes').select('preset_id').where({ user_id: userId }).orderBy('preset_id'),
      this.db('aideer_chat_likes').select('chat_id').where({ user_id: userId }).orderBy('chat_id'),
    ]);
    return { presetIds: presets.map((r) => r.preset_id), chatIds: chats.map((r) => r.chat_id) };
  }

  likePreset(userId: number, presetId: string): Promise<LikeOutcome> {
    return this.like(() => this.db('aideer_preset_likes').insert({ user_id: userId, preset_id: presetId }));
  }

  likeChat(userId: number, chatId: string): Promise<LikeOutcome> {
    return this.like(() => this.db('aideer_chat_likes').insert({ user_id: userId, chat_id: chatId }));
  }

  /** False when there was no such like. */
  async unlikePreset(userId: number, presetId: string): Promise<boolean> {
    return (await this.db('aideer_preset_likes').where({ user_id: userId, preset_id: presetId }).delete()) === 1;
  }

  async unlikeChat(userId: number, chatId: string): Promise<boolean> {
    return (await this.db('aideer_chat_likes').where({ user_id: userId, chat_id: chatId }).delete()) === 1;
  }

  private async like(insert: () => Promise<unknown>): Promise<LikeOutcome> {
    try {
      await insert();
      return 'liked';
    } catch (err) {
      // A like that exists has its preset or chat, so "not found" still comes before "already exists", as the original.
      if (uniqueViolation(err) !== undefined) return 'exists';
      // No such preset or chat (or the caller was deleted meanwhile): nothing to like either way.
      if (foreignKeyViolation(err)) return 'notFound';
      throw err;
    }
  }
}
