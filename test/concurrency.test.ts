// Races, on whichever database the run uses: many clients at once over loopback on the same code,
// phone, name or cap. Each test asserts only what must hold under any interleaving, and checks it
// afterwards through the API and in the database.
import { expect } from 'chai';
import { bodyOf, client, sse, type Client, type Ok } from './helpers/http.ts';
import type { operations } from '../generated/aideer.ts';
import type { operations as oneapi } from '../generated/oneapi.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { V1, giveCredits, signUp, signUpAdmin, uniqueName, type AideerUser, type Detail } from './helpers/aideer.ts';
import {
  API,
  authHeaders,
  newSession,
  registerUser,
  requestCode,
  uniquePhone,
  type OneApiError,
} from './helpers/oneapi.ts';
import { startFakeOpenAI, type FakeOpenAI } from './helpers/fakeOpenAI.ts';
import { SUBSCRIPTION_MESSAGES } from '../src/oneapi/http/handlers/subscriptions.ts';
import { MESSAGES } from '../src/oneapi/http/envelope.ts';

const CAP = 3;

/** How many answers had each status, e.g. `{200: 1, 422: 49}`. */
function tally(results: { status: number }[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
}

const all = <T>(n: number, send: (i: number) => PromiseLike<T>) =>
  Promise.all(Array.from({ length: n }, (_, i) => send(i)));

describe('Concurrency', () => {
  let fake: FakeOpenAI;
  let server: TestServer;
  let api: Client;
  let admin: AideerUser;
  /** Every AIDeer user a test touched: their balances are checked at the end. */
  const touched: AideerUser[] = [];

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'sk-fake' });
    // deepseek-chat goes to the fake (scripted per test); the other models to the offline echo.
    server = await startServer({
      DEEPSEEK_BASE_URL: fake.url,
      DEEPSEEK_API_KEY: 'sk-fake',
      LLM_ECHO_DELAY_MS: '0',
      MAX_ACTIVE_TASKS_PER_USER: String(CAP),
    });
    api = client(server.url);
    admin = await signUpAdmin(api, server);
  });
  after(async () => {
    await server.close();
    await fake.close();
  });

  async function user(): Promise<AideerUser> {
    const u = await signUp(api);
    touched.push(u);
    return u;
  }

  async function balance(u: AideerUser) {
    const res = await api.get(`${V1}/users/me/credits`).set(u.bearer).expect(200);
    return bodyOf<Ok<operations['getMyCredits']>>(res);
  }

  /** `credits_left` equals the sum of the user's credit records, through the API and in the database. */
  async function expectBalanced(u: AideerUser): Promise<number> {
    const { credits_left, credit_records } = await balance(u);
    expect(credits_left, `credits of ${u.username}`).to.equal(credit_records.reduce((sum, r) => sum + r.amount, 0));
    const row = await server.db('aideer_users').where({ id: u.id }).first();
    const [{ total }] = await server.db('aideer_credit_records').where({ user_id: u.id }).sum({ total: 'amount' });
    expect(Number(row!.credits_left))
      .to.equal(Number(total ?? 0))
      .and.to.equal(credits_left);
    return credits_left;
  }

  async function newCode(value: number): Promise<string> {
    const code = uniqueName('race').toUpperCase();
    await api.post(`${V1}/codes`).set(admin.bearer).send({ redeem_code: code, value }).expect(200);
    return code;
  }

  async function chatOn(u: AideerUser, model: string): Promise<string> {
    const preset = await api
      .post(`${V1}/presets`)
      .set(u.bearer)
      .send({ title: 'P', messages: [{ role: 'system', type: 'text', content: 'Be brief.' }], parameters: { model } })
      .expect(200);
    const chat = await api
      .post(`${V1}/chats`)
      .set(u.bearer)
      .send({
        preset_id: bodyOf<Ok<operations['createPreset']>>(preset).id,
        title: 'C',
        messages: [{ role: 'user', type: 'text', content: 'race' }],
      })
      .expect(200);
    return bodyOf<Ok<operations['createChat']>>(chat).id;
  }

  it('when 50 clients of 10 users redeem one code at once, then exactly one succeeds and only its user is credited, once', async () => {
    const users = await all(10, () => user());
    const code = await newCode(70);
    // Each user sends five requests, in lower and upper case: a code is case-insensitive.
    const results = await all(50, (i) =>
      api
        .post(`${V1}/users/me/credits`)
        .set(users[i % 10].bearer)
        .send({ redeem_code: i % 2 ? code : code.toLowerCase() }),
    );
    expect(tally(results)).to.deep.equal({ 200: 1, 422: 49 });
    for (const r of results.filter((r) => r.status === 422))
      expect(r.body).to.deep.equal({ detail: `Invalid redeem code: ${code}` });
    const winner = users[results.findIndex((r) => r.status === 200) % 10];
    const stored = await server.db('aideer_redeem_codes').where({ code }).first();
    expect(stored!.redeemed_by).to.equal(winner.id);
    for (const u of users) expect(await expectBalanced(u)).to.equal(u === winner ? 70 : 0);
    const records = await server.db('aideer_credit_records').whereIn(
      'user_id',
      users.map((u) => u.id),
    );
    expect(records).to.have.length(1);
    await api.get(`${V1}/codes/${code}`).expect(422);
  });

  it('when 100 codes are asked for 100 phones at once, then every phone gets its code (a 429 is only for one phone inside its cooldown)', async () => {
    const phones = Array.from({ length: 100 }, () => uniquePhone());
    const results = await all(100, (i) =>
      api.get(`${API}/phone_verification`).query({ phone: phones[i], purpose: 'register' }),
    );
    expect(tally(results)).to.deep.equal({ 200: 100 });
    expect(await server.db('oneapi_phone_codes').whereIn('phone', phones)).to.have.length(100);
  });

  it('when 20 sign-ups of one phone run at once, then exactly one user has it and its code is spent', async () => {
    const phone = uniquePhone();
    const code = await requestCode(api, phone, 'register');
    const results = await all(20, (i) =>
      api.post(`${API}/user/register`).send({ phone, phone_verification_code: code, display_name: `racer ${i}` }),
    );
    expect(tally(results)).to.deep.equal({ 200: 1, 400: 19 });
    for (const r of results.filter((r) => r.status === 400))
      expect([MESSAGES.phoneTaken, MESSAGES.badCode]).to.include(bodyOf<OneApiError>(r).message);
    expect(await server.db('oneapi_users').where({ phone })).to.have.length(1);
    expect(await server.db('oneapi_phone_codes').where({ phone, purpose: 'register' })).to.have.length(0);
    expect(
      bodyOf<OneApiError>(await api.get(`${API}/phone_verification`).query({ phone, purpose: 'register' }).expect(400))
        .message,
    ).to.equal(MESSAGES.phoneTaken);
  });

  it('when 20 AIDeer sign-ups of one user name run at once, then exactly one account has it', async () => {
    const username = uniqueName('same');
    const results = await all(20, () => api.post(`${V1}/users`).send({ username, password: 'pass-word-1' }));
    expect(tally(results)).to.deep.equal({ 200: 1, 400: 19 });
    for (const r of results.filter((r) => r.status === 400))
      expect(r.body).to.deep.equal({ detail: 'Username already exists' });
    expect(await server.db('aideer_users').where({ username })).to.have.length(1);
  });

  it('when 20 log-ins with one code run at once, then exactly one gets a session, and the code is spent', async () => {
    const phone = await registerUser(api);
    const code = await requestCode(api, phone, 'login');
    const results = await all(20, () => api.post(`${API}/user/login`).send({ phone, phone_verification_code: code }));
    expect(tally(results)).to.deep.equal({ 200: 1, 400: 19 });
    for (const r of results.filter((r) => r.status === 400))
      expect(bodyOf<OneApiError>(r).message).to.equal(MESSAGES.badCode);
    const session = bodyOf<Ok<oneapi['loginUser']>>(results.find((r) => r.status === 200)!).data;
    const user = (await server.db('oneapi_users').where({ phone }).first())!;
    expect(await server.db('oneapi_tokens').where({ user_id: user.id })).to.have.length(1);
    await api
      .get(`${API}/user/self`)
      .set(authHeaders({ token: session.access_token, id: session.id }))
      .expect(200);
    expect(
      bodyOf<OneApiError>(
        await api.post(`${API}/user/login`).send({ phone, phone_verification_code: code }).expect(400),
      ).message,
    ).to.equal(MESSAGES.badCode);
  });

  it('when 20 subscriptions of one name are made at once, then the user has one active subscription of it', async () => {
    const session = await newSession(api);
    const name = uniqueName('topic');
    const results = await all(20, () =>
      api.post(`${API}/subscriptions`).set(authHeaders(session)).send({ topic_name: name }),
    );
    expect(tally(results)).to.deep.equal({ 200: 1, 400: 19 });
    expect(bodyOf<Ok<oneapi['createSubscription']>>(results.find((r) => r.status === 200)!).message).to.equal(
      SUBSCRIPTION_MESSAGES.created,
    );
    for (const r of results.filter((r) => r.status === 400))
      expect(bodyOf<OneApiError>(r).message).to.equal(SUBSCRIPTION_MESSAGES.alreadySubscribed);
    const listed = bodyOf<Ok<oneapi['listSubscriptions']>>(
      await api.get(`${API}/subscriptions`).set(authHeaders(session)).expect(200),
    ).data;
    expect(
      listed.subscriptions.map((s: { topic_name: string; status: number }) => [s.topic_name, s.status]),
    ).to.deep.equal([[name, 1]]);
  });

  it('when a cancelled name is subscribed to 20 times at once, then it is reactivated once and stays one row', async () => {
    const session = await newSession(api);
    const name = uniqueName('again');
    const first = bodyOf<Ok<oneapi['createSubscription']>>(
      await api.post(`${API}/subscriptions`).set(authHeaders(session)).send({ topic_name: name }).expect(200),
    );
    await api.put(`${API}/subscriptions/${first.data.id}/cancel`).set(authHeaders(session)).expect(200);
    const results = await all(20, () =>
      api.post(`${API}/subscriptions`).set(authHeaders(session)).send({ topic_name: name }),
    );
    expect(tally(results)).to.deep.equal({ 200: 1, 400: 19 });
    expect(bodyOf<Ok<oneapi['createSubscription']>>(results.find((r) => r.status === 200)!).message).to.equal(
      SUBSCRIPTION_MESSAGES.reactivated,
    );
    const listed = bodyOf<Ok<oneapi['listSubscriptions']>>(
      await api.get(`${API}/subscriptions`).set(authHeaders(session)).expect(200),
    ).data;
    expect(listed.subscriptions.map((s: { id: number; status: number }) => [s.id, s.status])).to.deep.equal([
      [first.data.id, 1],
    ]);
  });

  it('when 20 codes are asked for one phone at once inside a 60 s cooldown, then exactly one is sent and the rest are 429', async () => {
    const strict = await startServer({ PHONE_CODE_COOLDOWN_SECONDS: '60' });
    try {
      const phone = uniquePhone();
      const results = await all(20, () =>
        client(strict.url).get(`${API}/phone_verification`).query({ phone, purpose: 'register' }),
      );
      expect(tally(results)).to.deep.equal({ 200: 1, 429: 19 });
      for (const r of results.filter((r) => r.status === 429)) {
        expect(bodyOf<OneApiError>(r).message).to.equal(MESSAGES.codeCooldown);
        expect(r.headers['retry-after']).to.equal('60');
      }
      expect(await strict.db('oneapi_phone_codes').where({ phone })).to.have.length(1);
    } finally {
      await strict.close();
    }
  });

  it('when 20 messages are sent to one topic at once, then each is stored with its own reply, next to it, and nothing else', async () => {
    const session = await newSession(api);
    const topic = bodyOf<Ok<oneapi['createTopic']>>(
      await api.post(`${API}/topics`).set(authHeaders(session)).send({ topic_name: 'race', model: 'echo' }).expect(200),
    ).data;
    const results = await all(20, (i) =>
      api
        .post(`${API}/topics/${topic.id}/messages`)
        .set(authHeaders(session))
        .send({ content: `message <${i}>` }),
    );
    expect(tally(results)).to.deep.equal({ 200: 20 });
    const rows: { role: string; content: string }[] = await server
      .db('oneapi_topic_messages')
      .where({ topic_id: topic.id })
      .orderBy('id');
    expect(rows).to.have.length(40);
    for (let i = 0; i < rows.length; i += 2) {
      expect(rows[i].role).to.equal('user');
      expect(rows[i + 1].role).to.equal('assistant');
      expect(rows[i + 1].content).to.include(rows[i].content);
    }
    expect(new Set(rows.filter((r) => r.role === 'user').map((r) => r.content)).size).to.equal(20);
    expect(
      bodyOf<Ok<oneapi['listTopicMessages']>>(
        await api.get(`${API}/topics/${topic.id}/messages`).query({ size: 100 }).set(authHeaders(session)).expect(200),
      ).data.total,
    ).to.equal(40);
  });

  it('when one user likes one preset 20 times at once, then one like is stored; 20 unlikes at once remove it once', async () => {
    const u = await user();
    const preset = bodyOf<Ok<operations['createPreset']>>(
      await api
        .post(`${V1}/presets`)
        .set(u.bearer)
        .send({ title: 'P', messages: [{ role: 'system', type: 'text', content: 'x' }] })
        .expect(200),
    ).id;
    const likes = await all(20, () => api.post(`${V1}/users/me/likes/preset/${preset}`).set(u.bearer));
    expect(tally(likes)).to.deep.equal({ 200: 1, 400: 19 });
    for (const r of likes.filter((r) => r.status === 400))
      expect(r.body).to.deep.equal({ detail: 'Like already exists' });
    expect(await server.db('aideer_preset_likes').where({ user_id: u.id, preset_id: preset })).to.have.length(1);
    const unlikes = await all(20, () => api.delete(`${V1}/users/me/likes/preset/${preset}`).set(u.bearer));
    expect(tally(unlikes)).to.deep.equal({ 200: 1, 404: 19 });
    expect(
      bodyOf<Ok<operations['readMyLikes']>>(await api.get(`${V1}/users/me/likes`).set(u.bearer).expect(200)).preset_ids,
    ).to.deep.equal([]);
  });

  it('when a code is redeemed while an admin keeps changing its value, then the winner is credited exactly the value it was told', async () => {
    const users = await all(10, () => user());
    const code = await newCode(1);
    const [redeems, puts] = await Promise.all([
      all(10, (i) => api.post(`${V1}/users/me/credits`).set(users[i].bearer).send({ redeem_code: code })),
      all(10, (i) =>
        api
          .post(`${V1}/codes`)
          .set(admin.bearer)
          .send({ redeem_code: code, value: 100 + i }),
      ),
    ]);
    expect(tally(redeems)).to.deep.equal({ 200: 1, 422: 9 });
    for (const r of puts)
      expect(
        r.status === 200 || bodyOf<Detail>(r).detail === 'Redeem code already used',
        JSON.stringify(r.body),
      ).to.equal(true);
    const i = redeems.findIndex((r) => r.status === 200);
    const told = Number(
      /Redeem (\d+) credits successfully/.exec(bodyOf<Ok<operations['redeemCredits']>>(redeems[i]).message)![1],
    );
    expect(await expectBalanced(users[i])).to.equal(told);
    // A value set after the redemption would have been refused: the code keeps what was credited.
    expect(Number((await server.db('aideer_redeem_codes').where({ code }).first())!.value)).to.equal(told);
  });

  it(`when 10 tasks are created at once and none can finish, then exactly the cap of ${CAP} run, the rest are 429, and nothing is charged`, async () => {
    // The upstream never answers, so no task ends (and frees its slot) while the burst lasts.
    fake.reply({ kind: 'stall', headersAfterMs: Infinity });
    const u = await user();
    await giveCredits(server, u.id, 100);
    const chat = await chatOn(u, 'deepseek-chat');
    const results = await all(10, () =>
      api.post(`${V1}/tasks`).set(u.bearer).send({ chat_id: chat, type: 'chat_generation' }),
    );
    expect(tally(results)).to.deep.equal({ 200: CAP, 429: 10 - CAP });
    for (const r of results.filter((r) => r.status === 429))
      expect(r.body).to.deep.equal({ detail: 'Too many active tasks' });
    const ids = results.filter((r) => r.status === 200).map((r) => bodyOf<Ok<operations['createTask']>>(r).task_id);
    const rows = await server.db('aideer_tasks').where({ user_id: u.id });
    expect(rows.map((r: { id: string }) => r.id).sort()).to.deep.equal([...new Set(ids)].sort());
    for (const r of rows) expect(['pending', 'running']).to.include(r.status);
    for (const id of ids)
      expect(['pending', 'running']).to.include(
        bodyOf<Ok<operations['readTask']>>(await api.get(`${V1}/tasks/${id}`).expect(200)).status,
      );
    // A slot stays taken while its task is active.
    await api.post(`${V1}/tasks`).set(u.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(429);
    expect(await expectBalanced(u)).to.equal(100);
  });

  it('when tasks finish and are charged while the same user redeems codes, then every credit lands and the balance is the sum of its records', async () => {
    const u = await user();
    await giveCredits(server, u.id, 1000);
    const chat = await chatOn(u, 'qwen-turbo');
    const codes = await all(10, () => newCode(25));
    // The cap lets three tasks run at a time; charges and redemptions write the same user row.
    const created = await all(CAP, () =>
      api.post(`${V1}/tasks`).set(u.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
    );
    const redeemed = await all(codes.length, (i) =>
      api.post(`${V1}/users/me/credits`).set(u.bearer).send({ redeem_code: codes[i] }),
    );
    expect(tally(redeemed)).to.deep.equal({ 200: codes.length });
    for (const t of created) await finished(server, bodyOf<Ok<operations['createTask']>>(t).task_id);
    const { credit_records } = await balance(u);
    const charges = credit_records.filter((r) => r.amount < 0);
    expect(charges).to.have.length(CAP);
    expect(credit_records.filter((r) => r.description.includes('Redeem'))).to.have.length(codes.length);
    const left = await expectBalanced(u);
    expect(left).to.equal(1000 + 25 * codes.length + charges.reduce((s, r) => s + r.amount, 0));
  });

  it('when the races are over, then every user they touched has credits_left equal to the sum of their records', async () => {
    expect(touched.length).to.be.greaterThan(10);
    for (const u of touched) await expectBalanced(u);
  });
});

/** Follows the task's stream to its end: it must have finished. */
async function finished(server: TestServer, id: string): Promise<void> {
  const stream = await sse(server.url, `${V1}/tasks/${id}/stream`);
  await stream.done;
  const states = stream.events.filter((e) => e.comment === undefined).map((e) => e.event ?? e.data?.status);
  expect(states.filter((s) => s !== 'running')).to.deep.equal(['open', 'finished', 'close']);
}
