// Factories for One-API tests: unique phones, registered users, logged-in sessions.
import crypto from 'node:crypto';
import { expect } from 'chai';
import { bodyOf, type Client, type Ok } from './http.ts';
import type { components, operations } from '../../generated/oneapi.ts';

export const API = '/api';

/** One-API's error envelope: `{ success: false, message }`. */
export type OneApiError = components['schemas']['ErrorResponse'];

/** A phone no other test uses: 1 + 10 random digits. */
export function uniquePhone(): string {
  return `1${String(crypto.randomInt(0, 1e10)).padStart(10, '0')}`;
}

export function authHeaders(session: { token: string; id: number }): Record<string, string> {
  return { Authorization: session.token, UserID: String(session.id) };
}

export async function requestCode(api: Client, phone: string, purpose: 'register' | 'login'): Promise<string> {
  const res = await api.get(`${API}/phone_verification`).query({ phone, purpose }).expect(200);
  const { data } = bodyOf<Ok<operations['sendPhoneVerification']>>(res);
  // The test servers run in fixed-code mode, which answers the code (production sends it by SMS).
  if (data === undefined) throw new Error('the server did not answer the verification code');
  return data;
}

export async function registerUser(
  api: Client,
  phone = uniquePhone(),
  profile: Record<string, string> = {},
): Promise<string> {
  const code = await requestCode(api, phone, 'register');
  await api
    .post(`${API}/user/register`)
    .send({ phone, phone_verification_code: code, ...profile })
    .expect(200);
  return phone;
}

export interface Session {
  id: number;
  token: string;
  phone: string;
  username: string;
}

export async function login(api: Client, phone: string): Promise<Session> {
  const code = await requestCode(api, phone, 'login');
  const res = await api.post(`${API}/user/login`).send({ phone, phone_verification_code: code }).expect(200);
  const { data } = bodyOf<Ok<operations['loginUser']>>(res);
  expect(data.phone).to.equal(phone);
  return { id: data.id, token: data.access_token, phone, username: data.username };
}

export async function newSession(api: Client, profile: Record<string, string> = {}): Promise<Session> {
  return login(api, await registerUser(api, uniquePhone(), profile));
}
