// The rules of AIDeer chats (A15), as outcomes the handlers map to answers: owners read and
// change their chats; a shared chat read by another user is forked into a private copy of theirs
// (no admin bypass for reading, as the original); admins may change or delete any chat.
import type { ChatFields, ChatStore, ChatWithMessages } from '../store/chats.ts';
import type { PresetStore } from '../store/presets.ts';
import type { ListPage, UserRow } from '../store/rows.ts';
import { ownsOrAdmin } from './access.ts';

type Caller = Pick<UserRow, 'id' | 'permission'>;

export class Chats {
  constructor(private readonly store: { chats: ChatStore; presets: PresetStore }) {}

  list(caller: Caller, page: ListPage): Promise<ChatWithMessages[]> {
    return this.store.chats.page(caller.id, page);
  }

  /** The preset's foreign key tells whether it exists. */
  create(caller: Caller, fields: ChatFields): Promise<ChatWithMessages | 'presetNotFound'> {
    return this.store.chats.insert(caller.id, fields);
  }

  async read(caller: Caller, chatId: string): Promise<ChatWithMessages | 'notFound' | 'forbidden'> {
    const chat = await this.store.chats.byId(chatId);
    if (!chat) return 'notFound';
    if (chat.owner_id === caller.id) return this.store.chats.withMessages(chat);
    if (chat.visibility !== 'shared') return 'forbidden';
    return (await this.store.chats.copy(chat.id, caller.id)) ?? 'notFound';
  }

  /** The original checks the preset before the chat. */
  async replace(
    caller: Caller,
    chatId: string,
    fields: ChatFields,
  ): Promise<ChatWithMessages | 'presetNotFound' | 'notFound' | 'forbidden'> {
    if (!(await this.store.presets.byId(fields.preset_id))) return 'presetNotFound';
    const chat = await this.store.chats.byId(chatId);
    if (!chat) return 'notFound';
    if (!ownsOrAdmin(caller, chat.owner_id)) return 'forbidden';
    return this.store.chats.replace(chat.id, fields);
  }

  async delete(caller: Caller, chatId: string): Promise<'deleted' | 'notFound' | 'forbidden'> {
    const chat = await this.store.chats.byId(chatId);
    if (!chat) return 'notFound';
    if (!ownsOrAdmin(caller, chat.owner_id)) return 'forbidden';
    return (await this.store.chats.delete(chat.id)) ? 'deleted' : 'notFound';
  }
}

/**
 * The title a generated one sets: cut to 50 characters, surrounding white space dropped;
 * undefined (keep the current one) when nothing is left, since a chat title has a character at least.
 */
export function keptTitle(title: string): string | undefined {
  return Array.from(title.trim()).slice(0, 50).join('').trim() || undefined;
}
