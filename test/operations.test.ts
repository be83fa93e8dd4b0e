// What operators rely on: request logs, shared rate limits through Redis, development secrets that
// survive a restart, CORS, and unparseable bodies answered in each API's shape.
import crypto from 'node:crypto';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { bodyOf, client } from './helpers/http.ts';
import { createTestDatabase, sharedServer, startServer, testConfig } from './helpers/server.ts';
import { V1, logIn, signUp, type Invalid } from './helpers/aideer.ts';
import { API, authHeaders, newSession, uniquePhone } from './helpers/oneapi.ts';
import { createApp } from '../src/app.ts';
import { createLogger } from '../src/logger.ts';
import http from 'node:http';
import net from 'node:net';
import { Redis } from 'ioredis';
import type { AddressInfo } from 'node:net';
import { CHECK_HEADER } from './helpers/server.ts';

describe('request logs', () => {
  it('when requests are served, then each has one JSON line with its request id, and no query string, token or code', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        // The logger writes each record as one JSON object on a line of its own.
        for (const line of String(chunk).split('\n').filter(Boolean))
          lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const database = await createTestDatabase();
    const config = testConfig(database.dataDir, { LOG_LEVEL: 'info' });
    const app = await createApp({ config, db: database.db, logger: createLogger('info', sink) });
    const server = http.createServer((req, res) => {
      req.headers[CHECK_HEADER] = '1';
      app.app(req, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const api = client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      const phone = uniquePhone();
      await api
        .get(`${API}/phone_verification`)
        .query({ phone, purpose: 'register' })
        .set('X-Request-Id', 'req-log-1')
        .expect(200);
      const session = await newSession(api);
      await api.get(`${API}/user/self`).set(authHeaders(session)).set('X-Request-Id', 'req-log-2').expect(200);
      await new Promise((r) => setImmediate(r));
      const first = lines.find((l) => l.reqId === 'req-log-1' && l.msg === 'request');
      expect(first).to.include({
        method: 'GET',
        path: '/api/phone_verification',
        status: 200,
        operationId: 'sendPhoneVerification',
      });
      expect(lines.find((l) => l.reqId === 'req-log-2' && l.msg === 'request')).to.include({
        status: 200,
        operationId: 'getSelf',
      });
      const all = JSON.stringify(lines);
      expect(all).to.not.include(session.token);
      expect(all).to.not.include(`phone=${phone}`);
      // fixed-mode codes are in the response already: the log sender keeps them out of the log
      expect(lines.find((l) => l.msg === 'verification code issued')).to.not.have.property('verification_code');
    } finally {
      server.close();
      await app.close();
      await database.drop();
    }
  });
});

describe('rate limits shared through Redis', () => {
  it('when two instances share REDIS_URL, then one address is limited across both', async () => {
    const env = { REDIS_URL: 'redis://127.0.0.1:6379', SIGNIN_RATE_LIMIT: '3', TRUST_PROXY: 'true' };
    const database = await createTestDatabase();
    const a = await startServer(env, { database });
    const b = await startServer(env, { database });
    try {
      // An address no other run uses (runs share the Redis): 96 random bits in 2001:db8::/32.
      const ip = { 'X-Forwarded-For': `2001:db8:${crypto.randomBytes(12).toString('hex').match(/.{4}/g)!.join(':')}` };
      const ask = (url: string) =>
        client(url).get(`${API}/phone_verification`).set(ip).query({ phone: uniquePhone(), purpose: 'register' });
      await ask(a.url).expect(200);
      await ask(b.url).expect(200);
      await ask(a.url).expect(200);
      const res = await ask(b.url).expect(429);
      expect(res.body).to.deep.equal({ success: false, message: '请求过于频繁，请稍后再试' });
    } finally {
      await a.close();
      await b.close();
      await database.drop();
    }
  });
});

describe('start-up with Redis', () => {
  it('when Redis answers late, then the server starts only once it is connected, so the first request is counted in Redis', async () => {
    // A loopback relay to the real Redis that holds every connection until the test lets it on.
    const held: (() => void)[] = [];
    let connected!: () => void;
    const firstConnection = new Promise<void>((resolve) => (connected = resolve));
    const relay = net.createServer((inbound) => {
      inbound.pause();
      held.push(() => {
        const outbound = net.connect(6379, '127.0.0.1');
        inbound.pipe(outbound).pipe(inbound);
        inbound.resume();
        const drop = () => (inbound.destroy(), outbound.destroy());
        inbound.on('error', drop).on('close', drop);
        outbound.on('error', drop).on('close', drop);
      });
      connected();
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const redis = new Redis('redis://127.0.0.1:6379');
    const ip = `2001:db8:${crypto.randomBytes(12).toString('hex').match(/.{4}/g)!.join(':')}`;
    let server: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      const starting = startServer({
        REDIS_URL: `redis://127.0.0.1:${(relay.address() as AddressInfo).port}`,
        TRUST_PROXY: 'true',
      });
      await firstConnection;
      const ask = (s: NonNullable<typeof server>) =>
        client(s.url)
          .get(`${API}/phone_verification`)
          .set('X-Forwarded-For', ip)
          .query({ phone: uniquePhone(), purpose: 'register' })
          .expect(200);
      const letAllOn = () => {
        for (const letOn of held.splice(0)) letOn();
        relay.on('connection', () => held.splice(0).forEach((letOn) => letOn()));
      };
      // A server that started while Redis is held is asked at once (and must not have); one that
      // waits is let on to Redis after a while, and asked once it has started.
      let timer: NodeJS.Timeout | undefined;
      const first = await Promise.race([
        starting,
        new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), 3000))),
      ]);
      clearTimeout(timer);
      if (first) {
        server = first;
        await ask(server);
        letAllOn();
      } else {
        letAllOn();
        server = await starting;
        await ask(server);
      }
      expect(await redis.get(`rl:oneapi-signin:${ip}`)).to.equal('1');
    } finally {
      await server?.close();
      redis.disconnect();
      relay.close();
    }
  });
});

describe('development secrets', () => {
  it('when JWT_SECRET is unset, then a secret is generated once in DATA_DIR, so tokens survive a restart', async () => {
    const database = await createTestDatabase();
    const first = await startServer({ JWT_SECRET: '' }, { database });
    let token: string;
    try {
      const user = await signUp(client(first.url));
      token = user.token;
    } finally {
      await first.close();
    }
    const second = await startServer({ JWT_SECRET: '' }, { database });
    try {
      await client(second.url).get(`${V1}/users/me`).set('Authorization', `Bearer ${token}`).expect(200);
    } finally {
      await second.close();
      await database.drop();
    }
  });
});

describe('CORS', () => {
  it('when a browser preflights a call with the One-API headers, then it is allowed; CORS_ORIGINS restricts origins', async () => {
    const open = await sharedServer();
    const pre = await client(open.url)
      .options(`${API}/user/self`)
      .set({
        Origin: 'https://app.example',
        'Access-Control-Request-Method': 'GET',
        'Access-Control-Request-Headers': 'authorization,userid',
      })
      .expect(204);
    // Any origin is the wildcard itself, never an echo of the caller, and never with credentials.
    expect(pre.headers['access-control-allow-origin']).to.equal('*');
    expect(pre.headers['access-control-allow-credentials']).to.equal(undefined);
    expect(pre.headers['access-control-allow-headers']).to.equal('authorization,userid');
    const strict = await startServer({ CORS_ORIGINS: 'https://ok.example, https://also.example' });
    try {
      const ok = await client(strict.url).get(`${API}/user/self`).set('Origin', 'https://ok.example').expect(401);
      expect(ok.headers['access-control-allow-origin']).to.equal('https://ok.example');
      expect(ok.headers['access-control-allow-credentials']).to.equal('true');
      expect(ok.headers['access-control-expose-headers']).to.include('X-Request-Id');
      expect(ok.headers.vary).to.include('Origin');
      const also = await client(strict.url)
        .options(`${V1}/users/me`)
        .set({ Origin: 'https://also.example', 'Access-Control-Request-Method': 'GET' })
        .expect(204);
      expect(also.headers['access-control-allow-origin']).to.equal('https://also.example');
      for (const origin of ['https://evil.example', 'https://ok.example.evil.example', 'null']) {
        const other = await client(strict.url).get(`${API}/user/self`).set('Origin', origin).expect(401);
        expect(other.headers['access-control-allow-origin'], origin).to.equal(undefined);
        expect(other.headers['access-control-allow-credentials'], origin).to.equal(undefined);
        const preflight = await client(strict.url)
          .options(`${V1}/users/me`)
          .set({ Origin: origin, 'Access-Control-Request-Method': 'GET' });
        expect(preflight.headers['access-control-allow-origin'], origin).to.equal(undefined);
      }
    } finally {
      await strict.close();
    }
  });
});

describe('bodies that cannot be parsed', () => {
  it('when a multipart body is cut off, then AIDeer answers 422 and One-API 400, never 500', async () => {
    const server = await sharedServer();
    const api = client(server.url);
    const user = await signUp(api);
    const broken = '--xyz\r\nContent-Disposition: form-data; name="avatar_file"; filename="a.png"\r\n\r\nnot finished';
    const aideer = bodyOf<Invalid>(
      await api
        .post(`${V1}/users/me/avatar`)
        .set(user.bearer)
        .set('Content-Type', 'multipart/form-data; boundary=xyz')
        .send(broken)
        .expect(422),
    );
    expect(aideer.detail[0]).to.include({ type: 'value_error' });
    expect(aideer.detail[0].loc).to.deep.equal(['body']);
    const form = await api
      .post(`${V1}/session/oauth2/token`)
      .set('Content-Type', 'application/x-www-form-urlencoded; charset=klingon')
      .send('username=a&password=b')
      .expect(422);
    expect(bodyOf<Invalid>(form).detail[0].loc).to.deep.equal(['body']);
    await logIn(api, user.username, user.password);
    const session = await newSession(api);
    // One-API takes no multipart body: it is left unread, and the operation sees none.
    const oneapi = await api
      .put(`${API}/user/self`)
      .set(authHeaders(session))
      .set('Content-Type', 'multipart/form-data; boundary=xyz')
      .send(broken)
      .expect(400);
    expect(oneapi.body).to.deep.equal({ success: false, message: '请求参数错误: 缺少请求体' });
  });
});
