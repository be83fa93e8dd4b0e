// The `chats` tag: the caller's conversations, with the original's access rules (reference §3.7, §4.3).
import { detail } from '../errors.ts';
import type { AideerHandlers } from '../types.ts';
import { ADMIN } from '../users.ts';
import { firstInvalidMessageTime, listOptions, PresetNotFound, type Chats, type MessageInput, type Presets } from '../chats.ts';

const CHAT_NOT_FOUND = () => detail(404, 'Chat not found');
const PRESET_NOT_FOUND = () => detail(400, 'Preset not found');

/** 422 for a message time the format check lets through but that cannot be stored (see firstInvalidMessageTime). */
export function invalidMessageTime(messages: MessageInput[]) {
  const index = firstInvalidMessageTime(messages);
  if (index === undefined) return undefined;
  const item = { type: 'datetime_parsing', loc: ['body', 'messages', index, 'create_time'], msg: 'Input should be a valid datetime, out of range', input: messages[index].create_time ?? null };
  return { status: 422 as const, body: { detail: [item] } };
}

/** Runs a save, answering 400 when the preset disappeared meanwhile. */
async function unlessPresetGone<T>(save: () => Promise<T>): Promise<T | ReturnType<typeof PRESET_NOT_FOUND>> {
  try {
    return await save();
  } catch (err) {
    if (err instanceof PresetNotFound) return PRESET_NOT_FOUND();
    throw err;
  }
}

export function chatsHandlers({ chats, presets }: { chats: Chats; presets: Presets }) {
  return {
    listChats: async ({ auth, query }) => ({ status: 200, body: await chats.list(auth.user.id, listOptions(query)) }),

    createChat: async ({ auth, body }) => {
      const invalid = invalidMessageTime(body.messages);
      if (invalid) return invalid;
      if (!(await presets.exists(body.preset_id))) return PRESET_NOT_FOUND();
      return unlessPresetGone(async () => ({ status: 200 as const, body: await chats.create(auth.user.id, body) }));
    },

    readChat: async ({ auth, params }) => {
      const chat = await chats.read(params.chat_id);
      if (!chat) return CHAT_NOT_FOUND();
      if (chat.owner_id === auth.user.id) return { status: 200, body: chat };
      // Admins included: the original has no admin bypass for reading.
      if (chat.visibility !== 'shared') return detail(403, 'Insufficient permissions: You do not have access to this chat');
      const copy = await chats.fork(chat.id, auth.user.id);
      return copy ? { status: 200, body: copy } : CHAT_NOT_FOUND();
    },

    updateChat: async ({ auth, params, body }) => {
      const invalid = invalidMessageTime(body.messages);
      if (invalid) return invalid;
      // The original checks the preset before the chat.
      if (!(await presets.exists(body.preset_id))) return PRESET_NOT_FOUND();
      const chat = await chats.byId(params.chat_id);
      if (!chat) return CHAT_NOT_FOUND();
      if (chat.owner_id !== auth.user.id && auth.user.permission < ADMIN) return detail(403, "Insufficient permissions: You cannot update other user's chat");
      return unlessPresetGone(async () => {
        const updated = await chats.replace(chat.id, body);
        return updated ? { status: 200 as const, body: updated } : CHAT_NOT_FOUND();
      });
    },

    deleteChat: async ({ auth, params }) => {
      const chat = await chats.byId(params.chat_id);
      if (!chat) return CHAT_NOT_FOUND();
      if (chat.owner_id !== auth.user.id && auth.user.permission < ADMIN) return detail(403, "Insufficient permissions: You cannot delete other user's chat");
      if (!(await chats.delete(chat.id))) return CHAT_NOT_FOUND();
      return { status: 200, body: { message: 'Chat deleted successfully' } };
    },
  } satisfies Partial<AideerHandlers>;
}
