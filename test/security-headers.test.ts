// Headers and leaks (SECURITY.md): security headers on every answer, the docs pages' own policy,
// and no stack trace, SQL or file path in any answer, even when the database fails underneath.
import crypto from 'node:crypto';
import { expect } from 'chai';
import { client, type Client } from './helpers/http.ts';
import { sharedServer, startServer, type TestServer } from './helpers/server.ts';
import { V1, signUp } from './helpers/aideer.ts';
import { API, authHeaders, newSession } from './helpers/oneapi.ts';

/** What a stack trace, SQL, a driver message or a file path looks like in a body. */
const LEAK =
  /\bat [\w.<>]+ \(|node:internal|\/work\/|\/tmp\/|\/home\/|node_modules|\.ts:\d+|\bselect\b.+\bfrom\b|\binsert into\b|\bdelete from\b|\bupdate\b.+\bset\b|sqlite|knex|postgres|relation "|SQLITE_|ECONNREFUSED/i;

function expectSecurityHeaders(res: { headers: Record<string, string> }, where: string) {
  expect(res.headers['x-content-type-options'], where).to.equal('nosniff');
  expect(res.headers['x-frame-options'], where).to.equal('DENY');
  expect(res.headers['referrer-policy'], where).to.equal('no-referrer');
  expect(res.headers['strict-transport-security'], where).to.match(/max-age=\d+/);
  // Plain http: browsers would ignore it and log an error (see the https case below).
  expect(res.headers['cross-origin-opener-policy'], where).to.equal(undefined);
  expect(res.headers['content-security-policy'], where).to.include("frame-ancestors 'none'");
  expect(res.headers['x-powered-by'], where).to.equal(undefined);
}

describe('security headers', () => {
  let server: TestServer;
  let api: Client;

  before(async () => {
    server = await sharedServer();
    api = client(server.url);
  });

  it('when any API answers, whatever the status, then it carries the security headers and a policy that allows nothing', async () => {
    const user = await signUp(api);
    const session = await newSession(api);
    const answers = {
      'AIDeer 200': await api.get(`${V1}/users/me`).set(user.bearer).expect(200),
      'AIDeer 401': await api.get(`${V1}/users/me`).expect(401),
      'AIDeer 422': await api.post(`${V1}/users`).send({}).expect(422),
      'AIDeer 404': await api.get(`${V1}/no-such-operation`).expect(404),
      'One-API 200': await api.get(`${API}/user/self`).set(authHeaders(session)).expect(200),
      'One-API 400': await api.post(`${API}/user/login`).send({}).expect(400),
      'outside both APIs 404': await api.get('/nothing-here').expect(404),
      'served document': await api.get(`${V1}/openapi.json`).expect(200),
    };
    for (const [where, res] of Object.entries(answers)) {
      expectSecurityHeaders(res, where);
      expect(res.headers['content-security-policy'], where).to.equal(
        "default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'",
      );
    }
  });

  it('when a request came over https (through a trusted proxy), then it also gets Cross-Origin-Opener-Policy', async () => {
    const proxied = await startServer({ TRUST_PROXY: 'true' });
    try {
      const via = client(proxied.url);
      for (const page of ['/docs/', `${V1}/openapi.json`]) {
        const secure = await via.get(page).set('X-Forwarded-Proto', 'https').expect(200);
        expect(secure.headers['cross-origin-opener-policy'], page).to.equal('same-origin');
        const plain = await via.get(page).expect(200);
        expect(plain.headers['cross-origin-opener-policy'], page).to.equal(undefined);
      }
    } finally {
      await proxied.close();
    }
  });

  it('when a docs page is served, then its policy allows its own inline scripts by hash and every asset from this server only', async () => {
    for (const page of ['/docs/', '/redoc/', '/redoc/aideer', '/redoc/oneapi']) {
      const res = await api.get(page).expect(200);
      expectSecurityHeaders(res, page);
      const policy = Object.fromEntries(
        res.headers['content-security-policy']
          .split(/;\s*/)
          .map((d: string) => [d.split(' ')[0], d.split(' ').slice(1)]),
      );
      expect(policy['default-src'], page).to.deep.equal(["'none'"]);
      const inline = [...res.text.matchAll(/<script>([\s\S]*?)<\/script>/g)].map(
        (m) => `'sha256-${crypto.createHash('sha256').update(m[1]).digest('base64')}'`,
      );
      expect(policy['script-src'], page).to.deep.equal(["'self'", ...inline]);
      for (const sources of Object.values<string[]>(policy))
        expect(
          sources.filter((s) => /^https?:|^\*$/.test(s)),
          page,
        ).to.deep.equal([]);
    }
    const asset = await api.get('/docs/swagger-ui-bundle.js').expect(200);
    expectSecurityHeaders(asset, 'a docs asset');
  });

  it('when an avatar file is served, then other origins may show it', async () => {
    const res = await api.get('/static/avatars/default.webp').expect(200);
    expect(res.headers['cross-origin-resource-policy']).to.equal('cross-origin');
    expectSecurityHeaders(res, 'static');
  });
});

describe('no internals in any answer', () => {
  it('when the database fails under a request, then each API answers its plain 500, with no stack trace, SQL, driver message or path', async () => {
    const server = await startServer();
    try {
      const api = client(server.url);
      const user = await signUp(api);
      const session = await newSession(api);
      await server.db.schema.dropTable('oneapi_tokens');
      await server.db.schema.dropTable('aideer_chats_likes').catch(() => undefined);
      await server.db.schema.renameTable('aideer_users', 'aideer_users_gone');
      const aideer = await api.get(`${V1}/users/me`).set(user.bearer).expect(500);
      expect(aideer.body).to.deep.equal({ detail: 'Internal Server Error' });
      const oneapi = await api.get(`${API}/user/self`).set(authHeaders(session)).expect(500);
      expect(oneapi.body).to.deep.equal({ success: false, message: '服务器内部错误' });
      for (const res of [aideer, oneapi]) {
        expect(res.text).to.not.match(LEAK);
        expect(JSON.stringify(res.headers)).to.not.match(LEAK);
        expectSecurityHeaders(res, `500 ${res.text}`);
      }
    } finally {
      await server.close();
    }
  });

  it('when requests are malformed in ways a parser rejects, then no answer names a file, a stack frame or a query', async () => {
    const server = await sharedServer();
    const api = client(server.url);
    const answers = [
      await api.get(`${V1}/users/%E0%A4%A`),
      await api.get(`${API}/topics/%ZZ`),
      await api.post(`${V1}/users`).type('json').send('{"username": "a", '),
      await api.post(`${API}/user/login`).type('json').send('{"phone": [}'),
      await api.get(`${V1}/tasks/..%2F..%2Fetc%2Fpasswd`),
      await api.get('/static/..%2F..%2Fpackage.json'),
      await api.get('/docs/..%2F..%2Fpackage.json'),
    ];
    for (const res of answers) {
      expect(res.status, res.text).to.be.within(400, 499);
      expect(res.text).to.not.match(LEAK);
    }
  });
});
