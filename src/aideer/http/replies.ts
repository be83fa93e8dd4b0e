// Answers that several AIDeer handler files give alike, in the original's words.
import type { components } from '../../../generated/aideer.ts';
import { detail } from './errors.ts';
import { messagesToStore } from '../domain/messages.ts';

export const chatNotFound = () => detail(404, 'Chat not found');

/** 404 where the path names the preset, 400 where a chat body does (as the original). */
export const presetNotFound = <S extends 400 | 404>(status: S) => detail(status, 'Preset not found');

/** A body's messages ready to store, or FastAPI's 422 at the first time that cannot be stored (see messagesToStore). */
export function storableMessages(messages: components['schemas']['Message'][]) {
  const stored = messagesToStore(messages);
  if (Array.isArray(stored)) return stored;
  const index = stored.invalidAt;
  const item = {
    type: 'datetime_parsing',
    loc: ['body', 'messages', index, 'create_time'],
    msg: 'Input should be a valid datetime, out of range',
    input: messages[index].create_time ?? null,
  };
  return { status: 422 as const, body: { detail: [item] } };
}
