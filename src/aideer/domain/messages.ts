// Messages and model parameters as a body gives them, made ready to store (A4, A14).
import crypto from 'node:crypto';
import type { components } from '../../../generated/aideer.ts';
import { parseSendableTime } from '../../time.ts';
import type { NewMessage } from '../store/messages.ts';

type Schemas = components['schemas'];
/** A preset's complete model parameters, as stored and as sent to the provider. */
export type PresetParameters = Schemas['PresetParametersRead'];

/**
 * A body's messages ready to store, each `create_time` parsed here once; or the index of the first
 * one whose time passes the format check but names none the API can send back (a leap second, or an
 * offset that moves it outside the years 0000–9999 in UTC).
 */
export function messagesToStore(messages: Schemas['Message'][]): NewMessage[] | { invalidAt: number } {
  const out: NewMessage[] = [];
  for (const [index, m] of messages.entries()) {
    const createTime = m.create_time === undefined ? undefined : parseSendableTime(m.create_time);
    if (m.create_time !== undefined && createTime === undefined) return { invalidAt: index };
    out.push({ role: m.role, type: m.type, content: m.content, visibility: m.visibility, create_time: createTime });
  }
  return out;
}

// The original picks one seed when the process starts and gives it to every preset saved without one.
const PROCESS_SEED = Number(crypto.randomBytes(8).readBigUInt64BE() >> 11n);

/**
 * The parameters as stored: the spec's keys only (`names`, read from the document at start-up; the
 * validator keeps keys it does not know). The validator filled in every default the spec declares;
 * the seed has none there (it is the process's).
 */
export function storedParameters(names: readonly string[], given: Schemas['PresetParameters']): PresetParameters {
  const known = new Map<string, unknown>(Object.entries(given));
  const out = { ...Object.fromEntries(names.map((name) => [name, known.get(name)])), seed: given.seed ?? PROCESS_SEED };
  // Every name is a key of PresetParametersRead, and each value passed the spec's validation.
  return out as PresetParameters;
}

/** A preset's stored parameters (written by the store from storedParameters). */
export function parametersOf(stored: string): PresetParameters {
  // JSON.parse is typed `any`; the text is one this server wrote from a validated object.
  return JSON.parse(stored) as PresetParameters;
}
