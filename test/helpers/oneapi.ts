// Factories for One-API tests: unique phones, registered users, logged-in sessions.
import crypto from 'node:crypto';
import { expect } from 'chai';
import type { Client } from './http.ts';

export const API = '/api';

/** A phone no other test uses: 1 + 10 random digits. */
export function uniquePhone(): string {
  return `1${String(crypto.randomInt(0, 1e10)).padStart(10, '0')}`;
}

export function authHeaders(session: { token: string; id: number }): Record<string, string> {
  return { Authorization: session.token, UserID: String(session.id) };
}

export async function requestCode(api: Client, phone: string, purpose: 'register' | 'login'): Promise<string> {
  const res = await api.get(`${API}/phone_verification`).query({ phone, purpose }).expect(200);
  return res.body.data as string;
}

export async function registerUser(api: Client, phone = uniquePhone(), profile: Record<string, string> = {}): Promise<string> {
  const code = await requestCode(api, phone, 'register');
  await api.post(`${API}/user/register`).send({ phone, phone_verification_code: code, ...profile }).expect(200);
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
  expect(res.body.data.phone).to.equal(phone);
  return { id: res.body.data.id, token: res.body.data.access_token, phone, username: res.body.data.username };
}

export async function newSession(api: Client, profile: Record<string, string> = {}): Promise<Session> {
  return login(api, await registerUser(api, uniquePhone(), profile));
}
