// One-API accounts (decisions O1–O6, O12): verification codes, sign-up, login, header auth,
// profile and logout, with every documented message and status.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { bodyOf, client, type Client, type Ok } from './helpers/http.ts';
import type { operations } from '../generated/oneapi.ts';
import { createTestDatabase, sharedServer, startServer, type TestServer } from './helpers/server.ts';
import {
  API,
  authHeaders,
  login,
  newSession,
  registerUser,
  requestCode,
  uniquePhone,
  type OneApiError,
} from './helpers/oneapi.ts';
import { MESSAGES } from '../src/oneapi/http/envelope.ts';
import { Accounts, sha256 } from '../src/oneapi/domain/accounts.ts';
import { AccountStore } from '../src/oneapi/store/accounts.ts';

type Self = Ok<operations['getSelf']>;
type Login = Ok<operations['loginUser']>;

describe('One-API accounts', () => {
  let server: TestServer;
  let api: Client;

  before(async () => {
    server = await sharedServer();
    api = client(server.url);
  });

  describe('sendPhoneVerification — GET /phone_verification', () => {
    it('when the phone is new and the purpose is register, then the test-mode code 1111 is returned', async () => {
      const res = await api
        .get(`${API}/phone_verification`)
        .query({ phone: uniquePhone(), purpose: 'register' })
        .expect(200);
      expect(res.body).to.deep.equal({ success: true, message: '验证码已发送', data: '1111' });
    });

    for (const phone of ['1380013800', '138001380001', '1380013800a', '+8613800138', '１３８００１３８０００']) {
      it(`when the phone is "${phone}", then 400 手机号格式错误`, async () => {
        const res = await api.get(`${API}/phone_verification`).query({ phone, purpose: 'register' }).expect(400);
        expect(res.body).to.deep.equal({ success: false, message: MESSAGES.badPhone });
      });
    }

    it('when the phone is missing, then 400 手机号格式错误', async () => {
      const res = await api.get(`${API}/phone_verification`).query({ purpose: 'register' }).expect(400);
      expect(bodyOf<OneApiError>(res).message).to.equal(MESSAGES.badPhone);
    });

    it('when the purpose is neither register nor login, then 400 请求参数错误', async () => {
      const res = await api
        .get(`${API}/phone_verification`)
        .query({ phone: uniquePhone(), purpose: 'reset' })
        .expect(400);
      expect(bodyOf<OneApiError>(res).message).to.match(/^请求参数错误: purpose/);
    });

    it('when the purpose is login and the phone is not registered, then 400 手机号未注册', async () => {
      const res = await api
        .get(`${API}/phone_verification`)
        .query({ phone: uniquePhone(), purpose: 'login' })
        .expect(400);
      expect(res.body).to.deep.equal({ success: false, message: MESSAGES.phoneNotRegistered });
    });

    it('when the purpose is register and the phone is taken, then 400 手机号已被占用', async () => {
      const phone = await registerUser(api);
      const res = await api.get(`${API}/phone_verification`).query({ phone, purpose: 'register' }).expect(400);
      expect(res.body).to.deep.equal({ success: false, message: MESSAGES.phoneTaken });
    });

    it('when a code is issued, then only its keyed hash is stored', async () => {
      const phone = uniquePhone();
      await requestCode(api, phone, 'register');
      const row = (await server.db('oneapi_phone_codes').where({ phone }).first())!;
      expect(row.code_hash).to.match(/^[0-9a-f]{64}$/);
      expect(row.code_hash).to.not.equal(sha256('1111'));
      expect(JSON.stringify(row)).to.not.include('1111');
    });
  });

  describe('registerUser — POST /user/register', () => {
    it('when the code is right, then 注册成功 and the user gets username user_ + the last 4 digits', async () => {
      const phone = uniquePhone();
      const code = await requestCode(api, phone, 'register');
      const res = await api
        .post(`${API}/user/register`)
        .send({
          phone,
          phone_verification_code: code,
          display_name: '测试用户',
          school: '测试大学',
          college: '计算机学院',
        })
        .expect(200);
      expect(res.body).to.deep.equal({ success: true, message: '注册成功' });
      const session = await login(api, phone);
      const user = bodyOf<Self>(await api.get(`${API}/user/self`).set(authHeaders(session)).expect(200)).data;
      expect(user.username).to.match(new RegExp(`^user_${phone.slice(-4)}(_\\d+)?$`));
      expect(user).to.include({
        display_name: '测试用户',
        school: '测试大学',
        college: '计算机学院',
        role: 1,
        status: 1,
        group: 'default',
      });
    });

    it('when another user already has the same last 4 digits, then a numeric suffix is added', async () => {
      const first = uniquePhone();
      const second = `1${String(Number(first.slice(1, 7)) + 1)
        .padStart(6, '0')
        .slice(-6)}${first.slice(-4)}`;
      await registerUser(api, first);
      await registerUser(api, second);
      const names = [(await login(api, first)).username, (await login(api, second)).username];
      expect(names[0]).to.match(new RegExp(`^user_${first.slice(-4)}(_\\d+)?$`));
      expect(names[1]).to.match(new RegExp(`^user_${first.slice(-4)}_\\d+$`));
      expect(names[0]).to.not.equal(names[1]);
    });

    it('when the code is wrong, then 400 手机验证码错误或已过期 and no user is created', async () => {
      const phone = uniquePhone();
      await requestCode(api, phone, 'register');
      const res = await api.post(`${API}/user/register`).send({ phone, phone_verification_code: '2222' }).expect(400);
      expect(res.body).to.deep.equal({ success: false, message: MESSAGES.badCode });
      // No user has the phone: a log-in code for it is refused as unregistered.
      expect(
        bodyOf<OneApiError>(await api.get(`${API}/phone_verification`).query({ phone, purpose: 'login' }).expect(400))
          .message,
      ).to.equal(MESSAGES.phoneNotRegistered);
    });

    it('when no code was ever requested, then 400 手机验证码错误或已过期', async () => {
      const res = await api
        .post(`${API}/user/register`)
        .send({ phone: uniquePhone(), phone_verification_code: '1111' })
        .expect(400);
      expect(bodyOf<OneApiError>(res).message).to.equal(MESSAGES.badCode);
    });

    it('when the code has expired, then 400 手机验证码错误或已过期', async () => {
      const phone = uniquePhone();
      await requestCode(api, phone, 'register');
      await server
        .db('oneapi_phone_codes')
        .where({ phone })
        .update({ expires_at: Date.now() - 1000 });
      const res = await api.post(`${API}/user/register`).send({ phone, phone_verification_code: '1111' }).expect(400);
      expect(bodyOf<OneApiError>(res).message).to.equal(MESSAGES.badCode);
    });

    it('when the code was asked for login, then it does not register', async () => {
      const phone = await registerUser(api);
      await requestCode(api, phone, 'login');
      // a fresh phone cannot use someone else's code either
      const res = await api
        .post(`${API}/user/register`)
        .send({ phone: uniquePhone(), phone_verification_code: '1111' })
        .expect(400);
      expect(bodyOf<OneApiError>(res).message).to.equal(MESSAGES.badCode);
    });

    it('when 5 wrong codes were tried, then even the right code is refused', async () => {
      const phone = uniquePhone();
      await requestCode(api, phone, 'register');
      for (let i = 0; i < 5; i++)
        await api.post(`${API}/user/register`).send({ phone, phone_verification_code: '9999' }).expect(400);
      const res = await api.post(`${API}/user/register`).send({ phone, phone_verification_code: '1111' }).expect(400);
      expect(bodyOf<OneApiError>(res).message).to.equal(MESSAGES.badCode);
    });

    it('when 4 wrong codes were tried, then the right one still works', async () => {
      const phone = uniquePhone();
      await requestCode(api, phone, 'register');
      for (let i = 0; i < 4; i++)
        await api.post(`${API}/user/register`).send({ phone, phone_verification_code: '9999' }).expect(400);
      await api.post(`${API}/user/register`).send({ phone, phone_verification_code: '1111' }).expect(200);
    });

    it('when the phone is already registered, then 400 手机号已被占用', async () => {
      const phone = await registerUser(api);
      const res = await api.post(`${API}/user/register`).send({ phone, phone_verification_code: '1111' }).expect(400);
      expect(res.body).to.deep.equal({ success: false, message: MESSAGES.phoneTaken });
    });

    it('when the same code is sent by two concurrent registrations, then exactly one succeeds', async () => {
      const phone = uniquePhone();
      await requestCode(api, phone, 'register');
      const results = await Promise.all(
        [1, 2, 3, 4].map(() => api.post(`${API}/user/register`).send({ phone, phone_verification_code: '1111' })),
      );
      expect(results.filter((r) => r.status === 200)).to.have.length(1);
      for (const r of results.filter((r) => r.status !== 200))
        expect([MESSAGES.phoneTaken, MESSAGES.badCode]).to.include(bodyOf<OneApiError>(r).message);
      expect(await server.db('oneapi_users').where({ phone }).count({ n: '*' }).first()).to.deep.equal({ n: 1 });
    });

    it('when the phone is malformed, then 400 手机号格式错误', async () => {
      const res = await api
        .post(`${API}/user/register`)
        .send({ phone: '12345', phone_verification_code: '1111' })
        .expect(400);
      expect(bodyOf<OneApiError>(res).message).to.equal(MESSAGES.badPhone);
    });

    it('when the code field is missing, then 400 请求参数错误 naming it', async () => {
      const res = await api.post(`${API}/user/register`).send({ phone: uniquePhone() }).expect(400);
      expect(bodyOf<OneApiError>(res).message).to.equal('请求参数错误: 缺少字段 phone_verification_code');
    });

    it('when display_name is longer than 20 characters, then 400 请求参数错误', async () => {
      const res = await api
        .post(`${API}/user/register`)
        .send({ phone: uniquePhone(), phone_verification_code: '1111', display_name: '名'.repeat(21) })
        .expect(400);
      expect(bodyOf<OneApiError>(res).message).to.equal('请求参数错误: display_name 长度不能超过 20');
    });

    it('when the body is not JSON, then 400 in the envelope', async () => {
      const res = await api
        .post(`${API}/user/register`)
        .set('content-type', 'application/json')
        .send('{"phone": ')
        .expect(400);
      expect(res.body).to.deep.equal({ success: false, message: '请求参数错误: 请求体不是合法的 JSON' });
    });

    it('when there is no body, then 400 请求参数错误', async () => {
      const res = await api.post(`${API}/user/register`).expect(400);
      expect(bodyOf<OneApiError>(res).message).to.match(/^请求参数错误: /);
    });
  });

  describe('loginUser — POST /user/login', () => {
    it('when the code is right, then 登录成功 with the user and a new access token', async () => {
      const phone = await registerUser(api, uniquePhone(), { display_name: '小明' });
      await requestCode(api, phone, 'login');
      const res = bodyOf<Login>(
        await api.post(`${API}/user/login`).send({ phone, phone_verification_code: '1111' }).expect(200),
      );
      expect(res.success).to.equal(true);
      expect(res.message).to.equal('登录成功');
      expect(res.data).to.include({
        phone,
        display_name: '小明',
        role: 1,
        status: 1,
        group: 'default',
        school: '',
        college: '',
      });
      expect(res.data.username).to.match(new RegExp(`^user_${phone.slice(-4)}(_\\d+)?$`));
      expect(res.data.access_token).to.match(/^[A-Za-z0-9_-]{43}$/);
    });

    it('when a token is issued, then only its hash is stored', async () => {
      const session = await newSession(api);
      const rows = await server.db('oneapi_tokens').where({ user_id: session.id });
      expect(rows.map((r: { token_hash: string }) => r.token_hash)).to.deep.equal([sha256(session.token)]);
    });

    it('when the phone is not registered, then 400 手机号未注册', async () => {
      const res = await api
        .post(`${API}/user/login`)
        .send({ phone: uniquePhone(), phone_verification_code: '1111' })
        .expect(400);
      expect(res.body).to.deep.equal({ success: false, message: MESSAGES.phoneNotRegistered });
    });

    it('when the code is wrong, then 400 手机验证码错误或已过期', async () => {
      const phone = await registerUser(api);
      await requestCode(api, phone, 'login');
      const res = await api.post(`${API}/user/login`).send({ phone, phone_verification_code: '0000' }).expect(400);
      expect(bodyOf<OneApiError>(res).message).to.equal(MESSAGES.badCode);
    });

    it('when the code was already used, then it cannot log in again', async () => {
      const phone = await registerUser(api);
      await requestCode(api, phone, 'login');
      await api.post(`${API}/user/login`).send({ phone, phone_verification_code: '1111' }).expect(200);
      const res = await api.post(`${API}/user/login`).send({ phone, phone_verification_code: '1111' }).expect(400);
      expect(bodyOf<OneApiError>(res).message).to.equal(MESSAGES.badCode);
    });

    it('when the registration code is reused to log in, then it is refused (codes are single-use and per purpose)', async () => {
      const phone = uniquePhone();
      await requestCode(api, phone, 'register');
      await api.post(`${API}/user/register`).send({ phone, phone_verification_code: '1111' }).expect(200);
      const res = await api.post(`${API}/user/login`).send({ phone, phone_verification_code: '1111' }).expect(400);
      expect(bodyOf<OneApiError>(res).message).to.equal(MESSAGES.badCode);
    });

    it('when the user is banned, then 403 用户已被封禁 and no token is issued', async () => {
      const phone = await registerUser(api);
      await server.db('oneapi_users').where({ phone }).update({ status: 2 });
      await requestCode(api, phone, 'login');
      const res = await api.post(`${API}/user/login`).send({ phone, phone_verification_code: '1111' }).expect(403);
      expect(res.body).to.deep.equal({ success: false, message: MESSAGES.banned });
      const user = (await server.db('oneapi_users').where({ phone }).first())!;
      expect(await server.db('oneapi_tokens').where({ user_id: user.id })).to.have.length(0);
    });

    it('when the phone is malformed, then 400 手机号格式错误', async () => {
      const res = await api
        .post(`${API}/user/login`)
        .send({ phone: 'abc', phone_verification_code: '1111' })
        .expect(400);
      expect(bodyOf<OneApiError>(res).message).to.equal(MESSAGES.badPhone);
    });
  });

  describe('getSelf — GET /user/self: header authentication', () => {
    let session: Awaited<ReturnType<typeof newSession>>;
    before(async () => {
      session = await newSession(api, { display_name: '小红', school: '清华', college: '计算机' });
    });

    it('when the token and UserID are right, then the caller is returned with its own token', async () => {
      const res = await api.get(`${API}/user/self`).set(authHeaders(session)).expect(200);
      expect(res.body).to.deep.equal({
        success: true,
        message: '',
        data: {
          id: session.id,
          username: session.username,
          display_name: '小红',
          role: 1,
          status: 1,
          group: 'default',
          school: '清华',
          college: '计算机',
          phone: session.phone,
          access_token: session.token,
        },
      });
    });

    it('when the token is sent as "Bearer <token>", then it is accepted too', async () => {
      await api
        .get(`${API}/user/self`)
        .set({ Authorization: `Bearer ${session.token}`, UserID: String(session.id) })
        .expect(200);
    });

    const cases: [string, (s: typeof session) => Record<string, string>, string][] = [
      ['Authorization is missing', (s) => ({ UserID: String(s.id) }), MESSAGES.noToken],
      ['Authorization is empty', (s) => ({ Authorization: '', UserID: String(s.id) }), MESSAGES.noToken],
      [
        'Authorization is "Bearer " alone',
        (s) => ({ Authorization: 'Bearer ', UserID: String(s.id) }),
        MESSAGES.noToken,
      ],
      ['the token is garbage', (s) => ({ Authorization: 'not-a-token', UserID: String(s.id) }), MESSAGES.badToken],
      [
        'the token is very long garbage',
        (s) => ({ Authorization: 'x'.repeat(5000), UserID: String(s.id) }),
        MESSAGES.badToken,
      ],
      ['UserID is missing', (s) => ({ Authorization: s.token }), MESSAGES.noUserId],
      ['UserID is not a number', (s) => ({ Authorization: s.token, UserID: 'abc' }), MESSAGES.badUserId],
      ['UserID is negative', (s) => ({ Authorization: s.token, UserID: '-1' }), MESSAGES.badUserId],
      ['UserID is a decimal', (s) => ({ Authorization: s.token, UserID: `${s.id}.0` }), MESSAGES.badUserId],
      [
        'UserID is another user',
        (s) => ({ Authorization: s.token, UserID: String(s.id + 1000000) }),
        MESSAGES.userMismatch,
      ],
    ];
    for (const [when, headers, message] of cases) {
      it(`when ${when}, then 401 ${message}`, async () => {
        const res = await api.get(`${API}/user/self`).set(headers(session)).expect(401);
        expect(res.body).to.deep.equal({ success: false, message });
      });
    }

    it('when the token has expired, then 401 access token 无效', async () => {
      const other = await newSession(api);
      await server
        .db('oneapi_tokens')
        .where({ token_hash: sha256(other.token) })
        .update({ expires_at: Date.now() - 1 });
      const res = await api.get(`${API}/user/self`).set(authHeaders(other)).expect(401);
      expect(bodyOf<OneApiError>(res).message).to.equal(MESSAGES.badToken);
    });

    it('when the user is banned after logging in, then every protected operation answers 403 用户已被封禁', async () => {
      const banned = await newSession(api);
      await server.db('oneapi_users').where({ id: banned.id }).update({ status: 2 });
      for (const req of [
        api.get(`${API}/user/self`),
        api.put(`${API}/user/self`).send({ school: 'x' }),
        api.get(`${API}/user/logout`),
      ]) {
        const res = await req.set(authHeaders(banned)).expect(403);
        expect(res.body).to.deep.equal({ success: false, message: MESSAGES.banned });
      }
    });

    it('when the same user logs in on two devices, then both tokens work', async () => {
      const phone = await registerUser(api);
      const a = await login(api, phone);
      const b = await login(api, phone);
      expect(a.token).to.not.equal(b.token);
      await api.get(`${API}/user/self`).set(authHeaders(a)).expect(200);
      await api.get(`${API}/user/self`).set(authHeaders(b)).expect(200);
    });
  });

  describe('updateSelf — PUT /user/self', () => {
    it('when some fields are sent, then only those change (更新成功)', async () => {
      const s = await newSession(api, { display_name: '原名', school: '原校', college: '原院' });
      const res = await api
        .put(`${API}/user/self`)
        .set(authHeaders(s))
        .send({ school: '新学校', role: 100, phone: '13900000000' })
        .expect(200);
      expect(res.body).to.deep.equal({ success: true, message: '更新成功' });
      const self = await api.get(`${API}/user/self`).set(authHeaders(s)).expect(200);
      expect(bodyOf<Self>(self).data).to.include({
        display_name: '原名',
        school: '新学校',
        college: '原院',
        role: 1,
        phone: s.phone,
      });
    });

    it('when a field is an empty string, then it is cleared', async () => {
      const s = await newSession(api, { college: '原院' });
      await api.put(`${API}/user/self`).set(authHeaders(s)).send({ college: '' }).expect(200);
      const self = await api.get(`${API}/user/self`).set(authHeaders(s)).expect(200);
      expect(bodyOf<Self>(self).data.college).to.equal('');
    });

    it('when no updatable field is sent, then 400 请求参数错误: 请提供要更新的字段', async () => {
      const s = await newSession(api);
      const res = await api.put(`${API}/user/self`).set(authHeaders(s)).send({ nickname: 'x' }).expect(400);
      expect(res.body).to.deep.equal({ success: false, message: '请求参数错误: 请提供要更新的字段' });
    });

    it('when display_name is too long, then 400 and nothing changes', async () => {
      const s = await newSession(api, { display_name: '原名' });
      await api
        .put(`${API}/user/self`)
        .set(authHeaders(s))
        .send({ display_name: 'x'.repeat(21), school: '新' })
        .expect(400);
      const self = await api.get(`${API}/user/self`).set(authHeaders(s)).expect(200);
      expect(bodyOf<Self>(self).data).to.include({ display_name: '原名', school: '' });
    });

    it('when not authenticated, then 401', async () => {
      await api.put(`${API}/user/self`).send({ school: 'x' }).expect(401);
    });
  });

  describe('logoutUser — GET /user/logout', () => {
    it('when called, then 登出成功, that token stops working and another device stays logged in', async () => {
      const phone = await registerUser(api);
      const a = await login(api, phone);
      const b = await login(api, phone);
      const res = await api.get(`${API}/user/logout`).set(authHeaders(a)).expect(200);
      expect(res.body).to.deep.equal({ success: true, message: '登出成功' });
      const after = await api.get(`${API}/user/self`).set(authHeaders(a)).expect(401);
      expect(bodyOf<OneApiError>(after).message).to.equal(MESSAGES.badToken);
      await api.get(`${API}/user/self`).set(authHeaders(b)).expect(200);
    });

    it('when not authenticated, then 401', async () => {
      const res = await api.get(`${API}/user/logout`).expect(401);
      expect(bodyOf<OneApiError>(res).message).to.equal(MESSAGES.noToken);
    });
  });
});

describe('One-API account limits', () => {
  it('when a code was sent to the phone less than the cooldown ago, then 429 with Retry-After', async () => {
    const server = await startServer({ PHONE_CODE_COOLDOWN_SECONDS: '60' });
    try {
      const api = client(server.url);
      const phone = uniquePhone();
      await requestCode(api, phone, 'register');
      const res = await api.get(`${API}/phone_verification`).query({ phone, purpose: 'register' }).expect(429);
      expect(res.body).to.deep.equal({ success: false, message: MESSAGES.codeCooldown });
      expect(res.headers['retry-after']).to.equal('60');
      // another phone is not affected
      await requestCode(api, uniquePhone(), 'register');
      // once the cooldown has passed, a new code may be sent
      await server
        .db('oneapi_phone_codes')
        .where({ phone })
        .update({ sent_at: Date.now() - 61_000 });
      await requestCode(api, phone, 'register');
    } finally {
      await server.close();
    }
  });

  describe('codes requested at once', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer({ PHONE_CODE_COOLDOWN_SECONDS: '60' });
    });
    after(() => server.close());

    it('when 100 different phones ask for a code at the same time, then every one gets its code, whatever the cooldown', async () => {
      const api = client(server.url);
      const phones = Array.from({ length: 100 }, () => uniquePhone());
      const answers = await Promise.all(
        phones.map((phone) => api.get(`${API}/phone_verification`).query({ phone, purpose: 'register' })),
      );
      expect(answers.map((r) => r.status)).to.deep.equal(phones.map(() => 200));
      expect(Number((await server.db('oneapi_phone_codes').whereIn('phone', phones).count({ n: '*' }))[0].n)).to.equal(
        100,
      );
    });

    it('when one phone asks 20 times at the same time inside the cooldown, then exactly one code is sent and the rest are 429', async () => {
      const api = client(server.url);
      const phone = uniquePhone();
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => api.get(`${API}/phone_verification`).query({ phone, purpose: 'register' })),
      );
      expect(answers.filter((r) => r.status === 200)).to.have.length(1);
      expect(answers.filter((r) => r.status === 429)).to.have.length(19);
    });
  });

  it('when the cooldown is 0 and a send read the clock before a concurrent send for the phone stored its code, then it is not refused', async () => {
    const database = await createTestDatabase();
    try {
      let clock = 1_000_000;
      const accounts = new Accounts(
        new AccountStore(database.db),
        {
          secret: 's',
          codeMode: 'fixed',
          codeTtlSeconds: 600,
          codeMaxAttempts: 5,
          codeCooldownSeconds: 0,
          tokenTtlDays: 1,
        },
        () => clock,
      );
      const phone = uniquePhone();
      expect(await accounts.issueCode(phone, 'register')).to.deep.equal({ code: '1111' });
      clock -= 3; // the second request read the clock first, then waited for a connection
      expect(await accounts.issueCode(phone, 'register')).to.deep.equal({ code: '1111' });
    } finally {
      await database.drop();
    }
  });

  it('when one address makes more sign-in requests than the limit, then 429 in the envelope, shared across the three routes', async () => {
    const server = await startServer({ SIGNIN_RATE_LIMIT: '3', TRUST_PROXY: 'true' });
    try {
      const api = client(server.url);
      const ip = { 'X-Forwarded-For': '203.0.113.7' };
      await api
        .get(`${API}/phone_verification`)
        .set(ip)
        .query({ phone: uniquePhone(), purpose: 'register' })
        .expect(200);
      await api
        .post(`${API}/user/register`)
        .set(ip)
        .send({ phone: uniquePhone(), phone_verification_code: '1' })
        .expect(400);
      await api
        .post(`${API}/user/login`)
        .set(ip)
        .send({ phone: uniquePhone(), phone_verification_code: '1' })
        .expect(400);
      for (const req of [
        api.get(`${API}/phone_verification`).query({ phone: uniquePhone(), purpose: 'register' }),
        api.post(`${API}/user/login`).send({}),
        api.post(`${API}/user/register/`).send({}),
      ]) {
        const res = await req.set(ip).expect(429);
        expect(res.body).to.deep.equal({ success: false, message: MESSAGES.tooManyRequests });
        expect(Number(res.headers['retry-after'])).to.be.within(1, 1200);
      }
      // another address still gets through, and other routes are not limited by it
      await api
        .get(`${API}/phone_verification`)
        .set({ 'X-Forwarded-For': '203.0.113.8' })
        .query({ phone: uniquePhone(), purpose: 'register' })
        .expect(200);
      await api.get(`${API}/user/self`).set(ip).expect(401);
    } finally {
      await server.close();
    }
  });

  it('when PHONE_CODE_MODE is random, then the code is 6 digits, delivered by the SMS webhook and never returned', async () => {
    const delivered: { phone: string; code: string; purpose: string }[] = [];
    let failNext = false;
    const gateway = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (failNext) {
          failNext = false;
          res.writeHead(503).end();
          return;
        }
        // The webhook's JSON body, { phone, code, purpose }: what the assertions below check.
        delivered.push(JSON.parse(body) as (typeof delivered)[number]);
        res.writeHead(200).end('{}');
      });
    });
    await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
    const server = await startServer({
      PHONE_CODE_MODE: 'random',
      SMS_SENDER: 'webhook',
      SMS_WEBHOOK_URL: `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/sms`,
    });
    try {
      const api = client(server.url);
      const phone = uniquePhone();
      const res = await api.get(`${API}/phone_verification`).query({ phone, purpose: 'register' }).expect(200);
      expect(res.body).to.deep.equal({ success: true, message: '验证码已发送' });
      expect(delivered).to.have.length(1);
      expect(delivered[0]).to.include({ phone, purpose: 'register' });
      expect(delivered[0].code).to.match(/^\d{6}$/);
      await api.post(`${API}/user/register`).send({ phone, phone_verification_code: '1111' }).expect(400);
      await api.post(`${API}/user/register`).send({ phone, phone_verification_code: delivered[0].code }).expect(200);

      // a gateway failure is a fault (500), and leaves no code behind to block a retry
      failNext = true;
      const other = uniquePhone();
      const failed = await api
        .get(`${API}/phone_verification`)
        .query({ phone: other, purpose: 'register' })
        .expect(500);
      expect(failed.body).to.deep.equal({ success: false, message: MESSAGES.internal });
      expect(await server.db('oneapi_phone_codes').where({ phone: other }).first()).to.equal(undefined);
    } finally {
      await server.close();
      gateway.close();
    }
  });

  it('when ONEAPI_ROOT_PHONE names a new phone, then a root user (role 100) is created once', async () => {
    const server = await startServer();
    try {
      const phone = uniquePhone();
      expect(await server.app.oneapi!.accounts.ensureRoot(phone)).to.equal('created');
      expect(await server.app.oneapi!.accounts.ensureRoot(phone)).to.equal('exists');
      const api = client(server.url);
      const session = await login(api, phone);
      const self = await api.get(`${API}/user/self`).set(authHeaders(session)).expect(200);
      expect(bodyOf<Self>(self).data.role).to.equal(100);
    } finally {
      await server.close();
    }
  });
});
