// A fake WeChat server API on loopback, scriptable per test: code-to-session, the server token and
// checksession (which verifies the HMAC-SHA256 signature a real WeChat would check).
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeWeChat {
  url: string;
  /** code → what jscode2session answers. */
  sessions: Map<
    string,
    { openid: string; session_key: string } | { errcode: number; errmsg: string } | { httpStatus: number }
  >;
  /** openid → the errcode checksession answers (0 when absent and the signature is right). */
  checkErrcode: Map<string, number>;
  /** Server tokens handed out, and checksession calls received. */
  tokensIssued: number;
  checks: { openid: string; signature: string; access_token: string }[];
  /** The next checksession answers 40001 (token revoked) once. */
  revokeTokenOnce: boolean;
  close(): Promise<void>;
}

export async function startFakeWeChat(appId = 'wx-test-app', secret = 'wx-test-secret'): Promise<FakeWeChat> {
  const state = {
    sessions: new Map(),
    checkErrcode: new Map(),
    tokensIssued: 0,
    checks: [],
    revokeTokenOnce: false,
  } as unknown as FakeWeChat;
  const keys = new Map<string, string>(); // openid → session_key
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    const reply = (body: unknown, status = 200) =>
      res.writeHead(status, { 'content-type': 'text/plain' }).end(JSON.stringify(body));
    if (url.pathname === '/sns/jscode2session') {
      if (q.get('appid') !== appId || q.get('secret') !== secret || q.get('grant_type') !== 'authorization_code')
        return reply({ errcode: 40013, errmsg: 'invalid appid' });
      const scripted = state.sessions.get(q.get('js_code') ?? '');
      if (!scripted) return reply({ errcode: 40029, errmsg: 'invalid code' });
      if ('httpStatus' in scripted) return reply({}, scripted.httpStatus);
      if ('openid' in scripted) keys.set(scripted.openid, scripted.session_key);
      return reply(scripted);
    }
    if (url.pathname === '/cgi-bin/token') {
      if (q.get('appid') !== appId || q.get('secret') !== secret)
        return reply({ errcode: 40013, errmsg: 'invalid appid' });
      state.tokensIssued += 1;
      return reply({ access_token: `server-token-${state.tokensIssued}`, expires_in: 7200 });
    }
    if (url.pathname === '/wxa/checksession') {
      const openid = q.get('openid') ?? '';
      state.checks.push({ openid, signature: q.get('signature') ?? '', access_token: q.get('access_token') ?? '' });
      if (state.revokeTokenOnce) {
        state.revokeTokenOnce = false;
        return reply({ errcode: 40001, errmsg: 'invalid credential' });
      }
      const key = keys.get(openid);
      const expected = key ? crypto.createHmac('sha256', key).update('').digest('hex') : '';
      if (q.get('sig_method') !== 'hmac_sha256' || q.get('signature') !== expected)
        return reply({ errcode: 87009, errmsg: 'invalid signature' });
      const code = state.checkErrcode.get(openid) ?? 0;
      return reply({ errcode: code, errmsg: code ? 'error' : 'ok' });
    }
    reply({ errcode: -1, errmsg: 'not found' }, 404);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () => new Promise((r) => server.close(() => r()));
  return state;
}
