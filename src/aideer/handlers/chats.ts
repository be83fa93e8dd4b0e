// The `chats` tag: the caller's conversations, with the original's access rules (decision A15).
import { detail } from '../errors.ts';
import type { AideerHandlers } from '../types.ts';
import { ADMIN } from '../users.ts';
import { PresetNotFound, type Chats, type Presets } from '../chats.ts';
import { chatNotFound, presetNotFound, storableMessages } from '../replies.ts';

/** Runs a save, answering 400 when the preset does not exist (or disappeared meanwhile). */
async function unlessPresetGone<T>(save: () => Promise<T>): Promise<T | ReturnType<typeof presetNotFound<400>>> {
  try {
    return await save();
  } catch (err) {
    if (err instanceof PresetNotFound) return presetNotFound(400);
    throw err;
  }
}

export function chatsHandlers({ chats, presets }: { chats: Chats; presets: Presets }) {
  return {
    listChats: async ({ auth, query }) => ({ status: 200, body: await chats.list(auth.user.id, query) }),

    createChat: async ({ auth, body }) => {
      const messages = storableMessages(body.messages);
      if (!Array.isArray(messages)) return messages;
      // The preset's foreign key tells whether it exists.
      return unlessPresetGone(async () => ({ status: 200 as const, body: await chats.create(auth.user.id, { ...body, messages }) }));
    },

    readChat: async ({ auth, params }) => {
      const chat = await chats.byId(params.chat_id);
      if (!chat) return chatNotFound();
      if (chat.owner_id === auth.user.id) return { status: 200, body: await chats.read(chat) };
      // Admins included: the original has no admin bypass for reading.
      if (chat.visibility !== 'shared') return detail(403, 'Insufficient permissions: You do not have access to this chat');
      const copy = await chats.fork(chat.id, auth.user.id);
      return copy ? { status: 200, body: copy } : chatNotFound();
    },

    updateChat: async ({ auth, params, body }) => {
      const messages = storableMessages(body.messages);
      if (!Array.isArray(messages)) return messages;
      // The original checks the preset before the chat.
      if (!(await presets.byId(body.preset_id))) return presetNotFound(400);
      const chat = await chats.byId(params.chat_id);
      if (!chat) return chatNotFound();
      if (chat.owner_id !== auth.user.id && auth.user.permission < ADMIN) return detail(403, "Insufficient permissions: You cannot update other user's chat");
      return unlessPresetGone(async () => {
        const updated = await chats.replace(chat.id, { ...body, messages });
        return updated ? { status: 200 as const, body: updated } : chatNotFound();
      });
    },

    deleteChat: async ({ auth, params }) => {
      const chat = await chats.byId(params.chat_id);
      if (!chat) return chatNotFound();
      if (chat.owner_id !== auth.user.id && auth.user.permission < ADMIN) return detail(403, "Insufficient permissions: You cannot delete other user's chat");
      if (!(await chats.delete(chat.id))) return chatNotFound();
      return { status: 200, body: { message: 'Chat deleted successfully' } };
    },
  } satisfies Partial<AideerHandlers>;
}
