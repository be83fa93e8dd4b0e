// Two real server processes on one Postgres database (created and dropped here) and the CI Redis
// (issue 13): events cross instances through LISTEN/NOTIFY, streams resume and are taken over on
// either instance, shared state is shared, and a SIGKILLed instance's task is finished by the
// other, charged once. Run by .ci/run in a block of its own:
// `npx mocha --config test/multi-instance/mocharc.json`.
import { expect } from 'chai';
import crypto from 'node:crypto';
import { bodyOf, client, sse, type Ok, type SseEvent, type SseSession } from '../helpers/http.ts';
import type { operations as AideerOps } from '../../generated/aideer.ts';
import type { operations as OneApiOps } from '../../generated/oneapi.ts';
import { V1, createChatTask, signUp, type AideerUser } from '../helpers/aideer.ts';
import { API, uniquePhone } from '../helpers/oneapi.ts';
import { CreditStore } from '../../src/aideer/store/credits.ts';
import { createPostgres, sharedEnv, startInstance, type Instance, type TestPostgres } from './instances.ts';

const QUESTION = 'one two three four five six seven eight';
const dataEvents = (events: SseEvent[]) => events.filter((e) => e.data);
const ids = (events: SseEvent[]) => dataEvents(events).map((e) => Number(e.id));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('two instances on one Postgres', function () {
  this.timeout(60_000);
  let pg: TestPostgres;
  let a: Instance;
  let b: Instance;
  const env = () =>
    sharedEnv(pg.url, {
      // Short claims and a slow echo model (8 pieces, 250 ms apart): a task is still running when
      // its instance is killed, and another instance takes it within 2 s + one sweep (1 s).
      TASK_LEASE_SECONDS: '2',
      LLM_ECHO_DELAY_MS: '250',
      SSE_PING_SECONDS: '1',
      SIGNIN_RATE_LIMIT: '3',
    });

  before(async () => {
    pg = await createPostgres();
    // One after the other: the first applies the migrations.
    a = await startInstance('a', env());
    b = await startInstance('b', env());
  });
  after(async () => {
    await a?.kill('SIGKILL');
    await b?.kill('SIGKILL');
    await pg?.drop();
  });

  async function funded(on = a): Promise<AideerUser> {
    const user = await signUp(client(on.url));
    await new CreditStore(pg.db).change(pg.db, user.id, 10_000, 'Add: test grant');
    return user;
  }

  async function finalOf(stream: SseSession) {
    await stream.done;
    return dataEvents(stream.events).at(-1)!.data;
  }

  it('when both serve, then /livez and /readyz answer 200 on each, outside the APIs', async () => {
    for (const instance of [a, b]) {
      for (const path of ['/livez', '/readyz']) {
        const res = await fetch(`${instance.url}${path}`);
        expect(res.status).to.equal(200);
        expect(await res.json()).to.deep.equal({ status: 'ok' });
      }
    }
  });

  it('when a task runs on A, then a stream on B sends every event A sends, same ids, same payloads, same order', async () => {
    const user = await funded();
    const taskId = await createChatTask(client(a.url), user, QUESTION);
    const onB = await sse(b.url, `${V1}/tasks/${taskId}/stream`, { 'Last-Event-ID': '0' });
    expect(await finalOf(onB)).to.deep.equal({ status: 'finished', content: QUESTION });
    // All of them: 8 pieces and the final event, not a sample of the row now and then.
    expect(ids(onB.events)).to.deep.equal(range(1, 9));
    const onA = await sse(a.url, `${V1}/tasks/${taskId}/stream`, { 'Last-Event-ID': '0' });
    await onA.done;
    expect(dataEvents(onB.events)).to.deep.equal(dataEvents(onA.events));
  });

  it("when A holds the stream, then B refuses a new reader at once, and a reader resuming on B takes over and A's stream closes without a final event", async () => {
    const user = await funded();
    const taskId = await createChatTask(client(a.url), user, QUESTION);
    const holder = await sse(a.url, `${V1}/tasks/${taskId}/stream`);
    const seen = await holder.until((e) => Boolean(e.data));
    const refused = await sse(b.url, `${V1}/tasks/${taskId}/stream`);
    expect(refused.status).to.equal(422);
    const resumed = await sse(b.url, `${V1}/tasks/${taskId}/stream`, { 'Last-Event-ID': seen.id! });
    expect(resumed.status).to.equal(200);
    await holder.done;
    expect(holder.events.at(-1)).to.deep.equal({ event: 'close' });
    expect(dataEvents(holder.events).every((e) => e.data!.status === 'running')).to.equal(true);
    expect(await finalOf(resumed)).to.deep.equal({ status: 'finished', content: QUESTION });
    expect(ids(resumed.events)[0]).to.equal(Number(seen.id) + 1);
  });

  it('when a stream on A drops and resumes on B with Last-Event-ID, then it gets exactly the events it missed', async () => {
    const user = await funded();
    const taskId = await createChatTask(client(a.url), user, QUESTION);
    const first = await sse(a.url, `${V1}/tasks/${taskId}/stream`);
    const third = await first.until((e) => e.id === '3');
    first.disconnect();
    const second = await sse(b.url, `${V1}/tasks/${taskId}/stream`, { 'Last-Event-ID': third.id! });
    expect(await finalOf(second)).to.deep.equal({ status: 'finished', content: QUESTION });
    const got = [...dataEvents(first.events).filter((e) => Number(e.id) <= 3), ...dataEvents(second.events)];
    expect(got.map((e) => Number(e.id))).to.deep.equal(range(Number(got[0].id), 9));
  });

  it('when state is made on one instance, then the other sees it: AIDeer tokens, redeem codes, One-API codes, and the sign-in limit through Redis', async () => {
    const user = await signUp(client(a.url));
    const me = bodyOf<Ok<AideerOps['readUserMe']>>(
      await client(b.url).get(`${V1}/users/me`).set(user.bearer).expect(200),
    );
    expect(me.id).to.equal(user.id);
    const admin = await signUp(client(a.url));
    await pg.db('aideer_users').where({ id: admin.id }).update({ permission: 2 });
    const code = `MI${crypto.randomBytes(4).toString('hex').toUpperCase()}`;
    await client(a.url).post(`${V1}/codes`).set(admin.bearer).send({ redeem_code: code, value: 7 }).expect(200);
    await client(b.url).post(`${V1}/users/me/credits`).set(user.bearer).send({ redeem_code: code }).expect(200);
    const credits = bodyOf<Ok<AideerOps['getMyCredits']>>(
      await client(a.url).get(`${V1}/users/me/credits`).set(user.bearer).expect(200),
    );
    expect(credits.credits_left).to.equal(7);
    // A verification code issued by A registers on B (its own address, apart from the limit below).
    const phone = uniquePhone();
    const registerIp = { 'X-Forwarded-For': `198.19.${crypto.randomInt(250)}.${crypto.randomInt(250)}` };
    const issued = await client(a.url)
      .get(`${API}/phone_verification`)
      .set(registerIp)
      .query({ phone, purpose: 'register' })
      .expect(200);
    await client(b.url)
      .post(`${API}/user/register`)
      .set(registerIp)
      .send({ phone, phone_verification_code: bodyOf<Ok<OneApiOps['sendPhoneVerification']>>(issued).data })
      .expect(200);
    // SIGNIN_RATE_LIMIT=3 per address, counted in Redis across both; a fresh address per run.
    const ip = { 'X-Forwarded-For': `198.18.${crypto.randomInt(250)}.${crypto.randomInt(250)}` };
    const ask = (url: string) =>
      client(url).get(`${API}/phone_verification`).set(ip).query({ phone: uniquePhone(), purpose: 'register' });
    await ask(a.url).expect(200);
    await ask(b.url).expect(200);
    await ask(a.url).expect(200);
    await ask(b.url).expect(429);
  });

  it('when the instance running two tasks is SIGKILLed, then the other restarts both from the start: streams there follow with no gap, a client of the dead one resumes with no event lost or twice, each task charged once', async () => {
    const user = await funded();
    const followed = await createChatTask(client(a.url), user, QUESTION);
    const resumed = await createChatTask(client(a.url), user, `${QUESTION} nine`);
    const onB = await sse(b.url, `${V1}/tasks/${followed}/stream`, { 'Last-Event-ID': '0' });
    const onA = await sse(a.url, `${V1}/tasks/${resumed}/stream`, { 'Last-Event-ID': '0' });
    await onB.until((e) => Number(e.id) >= 2);
    await onA.until((e) => Number(e.id) >= 2);
    await a.kill('SIGKILL');
    await onA.done;
    const lastSeen = dataEvents(onA.events).at(-1)!.id!;
    // The client of the dead instance comes back on B, as the SDK does, after its last event.
    const back = await sse(b.url, `${V1}/tasks/${resumed}/stream`, { 'Last-Event-ID': lastSeen });
    expect(back.status).to.equal(200);

    expect(await finalOf(onB)).to.deep.equal({ status: 'finished', content: QUESTION });
    const followedIds = ids(onB.events);
    expect(followedIds).to.deep.equal(range(1, followedIds.length));
    // The restart shows as a reset (empty text) under the next id, then the text grows again.
    expect(dataEvents(onB.events).some((e) => e.data!.status === 'running' && e.data!.content === '')).to.equal(true);

    expect(await finalOf(back)).to.deep.equal({ status: 'finished', content: `${QUESTION} nine` });
    const clientIds = [...ids(onA.events), ...ids(back.events)];
    expect(clientIds).to.deep.equal(range(1, clientIds.length));

    for (const id of [followed, resumed]) {
      expect(await pg.db('aideer_tasks').where({ id }).first()).to.include({ status: 'finished', attempts: 2 });
      expect(await pg.db('aideer_credit_records').where({ task_id: id })).to.have.length(1);
    }
    const sum = await pg.db('aideer_credit_records').where({ user_id: user.id }).sum({ s: 'amount' }).first();
    expect((await pg.db('aideer_users').where({ id: user.id }).first())!.credits_left).to.equal(Number(sum!.s));
    expect(await pg.db('aideer_tasks').whereIn('status', ['pending', 'running'])).to.have.length(0);
  });

  it('when a task outlives TASK_MAX_ATTEMPTS dead runs, then it is failed with a reason the client can act on, and its stream ends', async () => {
    const user = await funded(b);
    const taskId = await createChatTask(client(b.url), user, QUESTION);
    const stream = await sse(b.url, `${V1}/tasks/${taskId}/stream`, { 'Last-Event-ID': '0' });
    await stream.until((e) => Boolean(e.data));
    // As if its last allowed run had been cut: the claim lapsed on the last attempt. B's run sees
    // its claim gone and stops; B's sweep (every second) fails the task.
    await pg
      .db('aideer_tasks')
      .where({ id: taskId })
      .update({ attempts: 3, runner_id: 'a-dead-server', runner_lease_until: Date.now() - 1 });
    const reason = 'The server running the task stopped 3 times before it finished; create the task again';
    expect(await finalOf(stream), JSON.stringify(stream.events)).to.deep.equal({ status: 'failed', content: reason });
    expect(stream.events.at(-1)).to.deep.equal({ event: 'close' });
    expect(ids(stream.events)).to.deep.equal(range(1, ids(stream.events).length));
    expect(await pg.db('aideer_tasks').where({ id: taskId }).first()).to.include({ status: 'failed', error: reason });
    expect(await pg.db('aideer_credit_records').where({ task_id: taskId })).to.have.length(0);
  });
});
