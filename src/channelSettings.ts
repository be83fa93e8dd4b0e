// The ONEAPI_CHANNELS setting (decision O9): the channels One-API's topics may use, read and
// checked with the other settings (src/config.ts) so a mistake stops start-up with its name. Channel
// 1 is always the built-in offline one. It knows no One-API code: src/oneapi/adapters/channels.ts
// builds the providers from what it returns.
import { ECHO_MODEL } from './llm/index.ts';
import { urlProblem } from './urls.ts';

export type ChannelKind = 'builtin' | 'openai-compatible';

export interface ChannelConfig {
  id: number;
  name: string;
  kind: ChannelKind;
  /** openai-compatible only. */
  base_url?: string;
  /** openai-compatible only; unset for servers that take no key. */
  api_key?: string;
  /** The first one is a new topic's model when none is given. */
  models: string[];
  /** openai-compatible only: longest silence from the upstream (see OpenAICompatibleOptions). */
  timeout_ms: number;
}

export const BUILTIN_CHANNEL_ID = 1;
const DEFAULT_TIMEOUT_MS = 60_000;
const BUILTIN_DEFAULT: ChannelConfig = {
  id: BUILTIN_CHANNEL_ID,
  name: '内置离线渠道',
  kind: 'builtin',
  models: ['gpt-3.5-turbo', ECHO_MODEL],
  timeout_ms: DEFAULT_TIMEOUT_MS,
};
const KEYS = new Set(['id', 'name', 'kind', 'base_url', 'api_key', 'models', 'timeout_ms']);
const MODEL_MAX = 100; // ModelName in openapi/oneapi.yaml
const INT32_MAX = 2_147_483_647;

/**
 * Reads the ONEAPI_CHANNELS JSON: an array of channel objects. Channel 1 is added when absent, and
 * may only be redefined as `builtin` (to rename it or change its models). Throws an Error naming
 * the entry and field at fault, never quoting a key.
 */
export function parseChannels(raw: string | undefined): ChannelConfig[] {
  const text = raw?.trim() ?? '';
  if (text === '') return [BUILTIN_DEFAULT];
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    throw new Error('expected a JSON array of channels, and this is not valid JSON');
  }
  if (!Array.isArray(list)) throw new Error('expected a JSON array of channels');
  const channels = list.map((entry, i) => parseChannel(entry, `channel #${i + 1}`));
  const seen = new Set<number>();
  for (const c of channels) {
    if (seen.has(c.id)) throw new Error(`channel id ${c.id} appears more than once`);
    seen.add(c.id);
  }
  const builtin = channels.find((c) => c.id === BUILTIN_CHANNEL_ID);
  if (builtin && builtin.kind !== 'builtin')
    throw new Error(`channel ${BUILTIN_CHANNEL_ID} is the built-in offline channel: its kind must be "builtin"`);
  return builtin ? channels : [BUILTIN_DEFAULT, ...channels];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseChannel(entry: unknown, where: string): ChannelConfig {
  if (!isPlainObject(entry)) throw new Error(`${where}: expected an object`);
  const e = entry;
  const unknown = Object.keys(e).filter((k) => !KEYS.has(k));
  if (unknown.length)
    throw new Error(`${where}: unknown field(s) ${unknown.join(', ')} (expected ${[...KEYS].join(', ')})`);
  const { id, name, kind, base_url, api_key, models, timeout_ms } = e;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > INT32_MAX) {
    throw new Error(`${where}: id must be an integer from 1 to ${INT32_MAX}`);
  }
  where = `channel ${id}`;
  if (kind !== 'builtin' && kind !== 'openai-compatible')
    throw new Error(`${where}: kind must be "builtin" or "openai-compatible"`);
  if (name !== undefined && (typeof name !== 'string' || name.trim() === '' || name.length > 100))
    throw new Error(`${where}: name must be a string of 1 to 100 characters`);
  if (!Array.isArray(models) || models.length === 0)
    throw new Error(`${where}: models must be a non-empty array of model names`);
  const modelNames: string[] = [];
  for (const m of models) {
    if (typeof m !== 'string' || m.trim() === '' || m.length > MODEL_MAX) {
      throw new Error(`${where}: each model must be a string of 1 to ${MODEL_MAX} characters`);
    }
    modelNames.push(m);
  }
  if (new Set(modelNames).size !== modelNames.length) throw new Error(`${where}: models must not repeat`);
  const badTimeout =
    typeof timeout_ms !== 'number' || !Number.isInteger(timeout_ms) || timeout_ms < 1 || timeout_ms > 600_000;
  if (timeout_ms !== undefined && badTimeout) {
    throw new Error(`${where}: timeout_ms must be an integer from 1 to 600000`);
  }
  let upstream: Pick<ChannelConfig, 'base_url' | 'api_key'> = {};
  if (kind === 'builtin') {
    for (const k of ['base_url', 'api_key'] as const)
      if (e[k] !== undefined) throw new Error(`${where}: ${k} is only for "openai-compatible" channels`);
  } else {
    if (typeof base_url !== 'string' || urlProblem(base_url, ['http:', 'https:']))
      throw new Error(`${where}: base_url must be an http or https URL`);
    if (api_key !== undefined && (typeof api_key !== 'string' || api_key.trim() === ''))
      throw new Error(`${where}: api_key must be a non-empty string when given`);
    const trimmedUrl = base_url.trim().replace(/\/+$/, '');
    upstream = { base_url: trimmedUrl, ...(api_key !== undefined ? { api_key: api_key.trim() } : {}) };
  }
  return {
    id,
    name: name?.trim() ?? `channel ${id}`,
    kind,
    ...upstream,
    models: modelNames,
    timeout_ms: timeout_ms ?? DEFAULT_TIMEOUT_MS,
  };
}
