// Rows as the API sends them (the spec's *Read schemas): key order as the original's, times as
// ISO 8601 strings.
import type { components } from '../../../generated/aideer.ts';
import { iso } from '../../time.ts';
import type { ChatWithMessages } from '../store/chats.ts';
import type { PresetWithMessages } from '../store/presets.ts';
import type { MessageRow, UserRow } from '../store/rows.ts';
import { parametersOf } from '../domain/messages.ts';

type Schemas = components['schemas'];

export function messageRead(m: MessageRow): Schemas['MessageRead'] {
  return {
    role: m.role,
    type: m.type,
    content: m.content,
    visibility: Boolean(m.visibility),
    create_time: iso(m.create_time),
  };
}

export function chatRead({ chat: c, messages }: ChatWithMessages): Schemas['ChatRead'] {
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

export function presetRead({ preset: p, messages }: PresetWithMessages): Schemas['PresetRead'] {
  return {
    title: p.title,
    description: p.description,
    type: p.type,
    visibility: p.visibility,
    id: p.id,
    owner_id: p.owner_id,
    messages: messages.map(messageRead),
    parameters: parametersOf(p.parameters),
    create_time: iso(p.create_time),
    update_time: iso(p.update_time),
  };
}

export function userRead(u: UserRow): Schemas['UserRead'] {
  return {
    username: u.username,
    permission: u.permission,
    nickname: u.nickname,
    id: u.id,
    avatar: u.avatar,
    credits_left: u.credits_left,
  };
}
