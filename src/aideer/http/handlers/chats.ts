// The `chats` tag: the caller's conversations (decision A15); the rules are in domain/chats.ts.
import { detail } from '../errors.ts';
import type { AideerHandlers } from '../types.ts';
import type { Chats } from '../../domain/chats.ts';
import type { ListPage } from '../../store/rows.ts';
import { chatNotFound, presetNotFound, storableMessages } from '../replies.ts';
import { chatRead } from '../wire.ts';

const refusals = {
  notFound: chatNotFound,
  // The chat body names the preset: 400, as the original.
  presetNotFound: () => presetNotFound(400),
  forbiddenRead: () => detail(403, 'Insufficient permissions: You do not have access to this chat'),
  forbiddenUpdate: () => detail(403, "Insufficient permissions: You cannot update other user's chat"),
  forbiddenDelete: () => detail(403, "Insufficient permissions: You cannot delete other user's chat"),
};

export function chatsHandlers({ chats }: { chats: Chats }) {
  return {
    listChats: async ({ auth, query }) => {
      // Each list parameter has a default in the spec, which the validator filled in.
      const page = await chats.list(auth.user, query as ListPage);
      return { status: 200, body: page.map(chatRead) };
    },

    createChat: async ({ auth, body }) => {
      const messages = storableMessages(body.messages);
      if (!Array.isArray(messages)) return messages;
      const created = await chats.create(auth.user, { ...body, messages });
      return created === 'presetNotFound' ? refusals.presetNotFound() : { status: 200, body: chatRead(created) };
    },

    readChat: async ({ auth, params }) => {
      const chat = await chats.read(auth.user, params.chat_id);
      if (chat === 'notFound') return refusals.notFound();
      if (chat === 'forbidden') return refusals.forbiddenRead();
      return { status: 200, body: chatRead(chat) };
    },

    updateChat: async ({ auth, params, body }) => {
      const messages = storableMessages(body.messages);
      if (!Array.isArray(messages)) return messages;
      const chat = await chats.replace(auth.user, params.chat_id, { ...body, messages });
      if (chat === 'notFound' || chat === 'presetNotFound') return refusals[chat]();
      if (chat === 'forbidden') return refusals.forbiddenUpdate();
      return { status: 200, body: chatRead(chat) };
    },

    deleteChat: async ({ auth, params }) => {
      const outcome = await chats.delete(auth.user, params.chat_id);
      if (outcome === 'notFound') return refusals.notFound();
      if (outcome === 'forbidden') return refusals.forbiddenDelete();
      return { status: 200, body: { message: 'Chat deleted successfully' } };
    },
  } satisfies Partial<AideerHandlers>;
}
