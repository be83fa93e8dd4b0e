// The rows every case reads or writes, on a fresh database of the bench's own: One-API and AIDeer
// users with their tokens, redeem codes, then (over HTTP, through the real server) a preset, the
// chats the list reads, and a topic.
import crypto from 'node:crypto';
import http from 'node:http';
import type { Knex } from 'knex';
import { sha256 } from '../src/oneapi/domain/accounts.ts';
import { Tokens } from '../src/aideer/domain/tokens.ts';

export const JWT_SECRET = 'bench-jwt-secret-0123456789abcdef0123456789';
export const ONEAPI_SECRET = 'bench-oneapi-secret-0123456789abcdef';

/** The environment of a server started cold: production, on a fresh SQLite folder, no Redis, quiet. */
export function coldStartEnv(dataDir: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    DATABASE_URL: '',
    REDIS_URL: '',
    JWT_SECRET,
    ONEAPI_SECRET,
    LOG_LEVEL: 'warn',
    FEED_SAMPLE: 'false',
    SMS_LOG_IN_PRODUCTION: 'true',
  };
}
const PHONE = '13800000001';

export interface Seed {
  oneapi: { token: string; userId: number };
  /** Reads (users/me, chats list). */
  reader: { id: number; jwt: string };
  /** Writes (chats, redeem). */
  writer: { id: number; jwt: string };
  /** Task streams. */
  streamers: { id: number; jwt: string }[];
  redeemCodes: number;
  /** How many of the seeded codes the bench has sent (a code redeems once). */
  codesUsed: number;
  /** Filled in by seedOverHttp. */
  presetId?: string;
  topicId?: number;
}

export async function seedRows(db: Knex, opts: { redeemCodes: number; streamers: number }): Promise<Seed> {
  const now = Date.now();
  const tokens = new Tokens({ secret: JWT_SECRET, accessMinutes: 24 * 60, refreshMinutes: 24 * 60 });
  const token = crypto.randomBytes(32).toString('base64url');
  const [{ id: oneapiId }] = await db('oneapi_users')
    .insert({
      username: 'user_0001',
      display_name: 'bench',
      role: 1,
      status: 1,
      group: 'default',
      school: 'Bench University',
      college: 'Computing',
      phone: PHONE,
      created_at: now,
      updated_at: now,
    })
    .returning('id');
  await db('oneapi_tokens').insert({
    user_id: oneapiId,
    token_hash: sha256(token),
    created_at: now,
    expires_at: now + 86_400_000,
  });

  const aideerUser = async (username: string, credits: number) => {
    const [{ id }] = await db('aideer_users')
      .insert({
        username,
        permission: 1,
        nickname: username,
        password_hash: null,
        avatar: '/static/avatars/default.webp',
        credits_left: credits,
        created_at: now,
      })
      .returning('id');
    return { id, jwt: tokens.issue(id, 'access') };
  };
  const reader = await aideerUser('bench_reader', 0);
  const writer = await aideerUser('bench_writer', 1_000_000_000);
  const streamers = [];
  for (let i = 0; i < opts.streamers; i++) streamers.push(await aideerUser(`bench_streamer_${i}`, 1_000_000_000));

  const codes = Array.from({ length: opts.redeemCodes }, (_, i) => ({
    code: redeemCode(i),
    value: 1,
    created_at: now,
  }));
  for (let i = 0; i < codes.length; i += 500) await db('aideer_redeem_codes').insert(codes.slice(i, i + 500));
  return {
    oneapi: { token, userId: oneapiId },
    reader,
    writer,
    streamers,
    redeemCodes: opts.redeemCodes,
    codesUsed: 0,
  };
}

export const redeemCode = (i: number) => `BENCH${String(i).padStart(7, '0')}`;

/** One request on a connection of its own (a burst of a thousand must not meet a closing keep-alive socket). */
export function call(
  port: number,
  method: string,
  path: string,
  auth: Record<string, string>,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: { ...auth, ...(payload === undefined ? {} : { 'Content-Type': 'application/json' }) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          const json: unknown = text ? JSON.parse(text) : undefined;
          resolve({ status: res.statusCode ?? 0, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function ok(
  port: number,
  method: string,
  path: string,
  auth: Record<string, string>,
  body?: unknown,
): Promise<unknown> {
  const r = await call(port, method, path, auth, body);
  if (r.status !== 200) throw new Error(`seeding: ${method} ${path} answered ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

/** `json[key]` when the JSON is an object with that field, else undefined. */
export function field(json: unknown, key: string): unknown {
  if (typeof json !== 'object' || json === null) return undefined;
  return Object.entries(json).find(([k]) => k === key)?.[1];
}

/** The string `json[key]` of an answer (an id); the bench cannot go on without it. */
export function stringField(json: unknown, key: string): string {
  const value = field(json, key);
  if (typeof value !== 'string') throw new Error(`expected a string ${key} in ${JSON.stringify(json)}`);
  return value;
}

export const bearer = (jwt: string) => ({ Authorization: `Bearer ${jwt}` });
export const oneapiAuth = (seed: Seed) => ({
  Authorization: `Bearer ${seed.oneapi.token}`,
  UserID: String(seed.oneapi.userId),
});

export const CHAT_MESSAGES = [
  { role: 'user', type: 'text', content: 'Plan a weekend in Hangzhou for two people who like tea.', visibility: true },
  {
    role: 'assistant',
    type: 'text',
    content: 'Day one: West Lake at dawn, then Longjing village for tea.',
    visibility: true,
  },
];

/** What the real API must create itself: a preset, the reader's chats, a topic. */
export async function seedOverHttp(port: number, seed: Seed, chats: number): Promise<void> {
  const preset = await ok(port, 'POST', '/api/v1/presets', bearer(seed.writer.jwt), {
    title: 'Bench preset',
    messages: [{ role: 'system', type: 'text', content: 'You are terse.', visibility: false }],
  });
  const presetId = stringField(preset, 'id');
  seed.presetId = presetId;
  for (let i = 0; i < chats; i++)
    await ok(port, 'POST', '/api/v1/chats', bearer(seed.reader.jwt), {
      preset_id: presetId,
      title: `Trip ${i}`,
      messages: CHAT_MESSAGES,
    });
  const topic = await ok(port, 'POST', '/api/topics', oneapiAuth(seed), { topic_name: 'bench' });
  const topicId = field(field(topic, 'data'), 'id');
  if (typeof topicId !== 'number') throw new Error(`expected a topic id in ${JSON.stringify(topic)}`);
  seed.topicId = topicId;
}
