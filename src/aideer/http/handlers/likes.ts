// The `likes` tag (decision A13): the caller's favourite presets and chats. As the original, any
// existing preset or chat may be liked, whatever its owner or visibility.
import { detail } from '../errors.ts';
import type { AideerHandlers } from '../types.ts';
import type { LikeStore } from '../../store/likes.ts';
import { chatNotFound, presetNotFound } from '../replies.ts';

const LIKE_EXISTS = () => detail(400, 'Like already exists');
const LIKE_NOT_FOUND = () => detail(404, 'Like not found');
const LIKE_DELETED = { status: 200 as const, body: { message: 'Like deleted successfully' } };

export function likesHandlers({ likes }: { likes: LikeStore }) {
  return {
    readMyLikes: async ({ auth }) => {
      const { presetIds, chatIds } = await likes.of(auth.user.id);
      return { status: 200, body: { preset_ids: presetIds, chat_ids: chatIds } };
    },

    likePreset: async ({ auth, params }) => {
      const result = await likes.likePreset(auth.user.id, params.preset_id);
      if (result === 'notFound') return presetNotFound(404);
      if (result === 'exists') return LIKE_EXISTS();
      return { status: 200, body: { user_id: auth.user.id, preset_id: params.preset_id } };
    },

    unlikePreset: async ({ auth, params }) =>
      (await likes.unlikePreset(auth.user.id, params.preset_id)) ? LIKE_DELETED : LIKE_NOT_FOUND(),

    likeChat: async ({ auth, params }) => {
      const result = await likes.likeChat(auth.user.id, params.chat_id);
      if (result === 'notFound') return chatNotFound();
      if (result === 'exists') return LIKE_EXISTS();
      return { status: 200, body: { user_id: auth.user.id, chat_id: params.chat_id } };
    },

    unlikeChat: async ({ auth, params }) =>
      (await likes.unlikeChat(auth.user.id, params.chat_id)) ? LIKE_DELETED : LIKE_NOT_FOUND(),
  } satisfies Partial<AideerHandlers>;
}
