// Factories for AIDeer tests: unique users, tokens through the real log-in, admins.
import crypto from 'node:crypto';
import jwt from 'jsonwebtoken';
import { expect } from 'chai';
import { bodyOf, type Client, type Ok } from './http.ts';
import type { components, operations } from '../../generated/aideer.ts';
import { TEST_JWT_SECRET, type TestServer } from './server.ts';

export const V1 = '/api/v1';

/** AIDeer's refusal body: `{ detail }` with a message. */
export type Detail = components['schemas']['ExceptionDetail'];
/** AIDeer's 422 body: `{ detail: [...] }`, one entry per invalid field. */
export type Invalid = components['schemas']['HTTPValidationError'];

export function uniqueName(prefix = 'u'): string {
  return `${prefix}_${crypto.randomBytes(6).toString('hex')}`;
}

export interface AideerUser {
  id: number;
  username: string;
  password: string;
  token: string;
  bearer: { Authorization: string };
}

/** Signs up through POST /users and logs in through the OAuth2 password form. */
export async function signUp(
  api: Client,
  fields: { username?: string; password?: string; nickname?: string } = {},
): Promise<AideerUser> {
  const username = fields.username ?? uniqueName();
  const password = fields.password ?? 'pass-word-1';
  const created = await api
    .post(`${V1}/users`)
    .send({ username, password, ...(fields.nickname ? { nickname: fields.nickname } : {}) })
    .expect(200);
  const token = await logIn(api, username, password);
  return {
    id: bodyOf<Ok<operations['createUser']>>(created).id,
    username,
    password,
    token,
    bearer: { Authorization: `Bearer ${token}` },
  };
}

export async function logIn(api: Client, username: string, password: string): Promise<string> {
  const res = await api.post(`${V1}/session/oauth2/token`).type('form').send({ username, password }).expect(200);
  const token = bodyOf<Ok<operations['loginForAccessToken']>>(res);
  expect(token.token_type).to.equal('bearer');
  return token.access_token;
}

/** An admin: signed up, then promoted in the database (there is no API to become one). */
export async function signUpAdmin(api: Client, server: TestServer): Promise<AideerUser> {
  const user = await signUp(api);
  await server.db('aideer_users').where({ id: user.id }).update({ permission: 2 });
  return user;
}

/** A token with arbitrary claims, signed with the test servers' key. */
export function mintToken(
  claims: Record<string, unknown>,
  opts: jwt.SignOptions = { expiresIn: 600 },
  secret = TEST_JWT_SECRET,
): string {
  return jwt.sign(claims, secret, { algorithm: 'HS256', ...opts });
}

export async function giveCredits(server: TestServer, userId: number, amount: number): Promise<void> {
  await server.app.aideer!.credits.change(server.db, userId, amount, 'Add: test grant');
}

/** A chat holding one user message, on a new preset of `model`, and a chat_generation task for it: the task id. */
export async function createChatTask(
  api: Client,
  user: AideerUser,
  question: string,
  model = 'deepseek-chat',
): Promise<string> {
  const preset = await api
    .post(`${V1}/presets`)
    .set(user.bearer)
    .send({ title: 'Preset', messages: [], parameters: { model } })
    .expect(200);
  const presetId = bodyOf<Ok<operations['createPreset']>>(preset).id;
  const chat = await api
    .post(`${V1}/chats`)
    .set(user.bearer)
    .send({ preset_id: presetId, title: 'Chat', messages: [{ role: 'user', type: 'text', content: question }] })
    .expect(200);
  const task = await api
    .post(`${V1}/tasks`)
    .set(user.bearer)
    .send({ chat_id: bodyOf<Ok<operations['createChat']>>(chat).id, type: 'chat_generation' })
    .expect(200);
  return bodyOf<Ok<operations['createTask']>>(task).task_id;
}
