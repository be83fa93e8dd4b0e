// AIDeer tasks (decisions A5–A7, A14): background generation through the provider layer, the SSE
// stream, credit charging exactly once, restart recovery, with a fake OpenAI-compatible upstream.
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { bodyOf, client, sse, type Client, type Ok } from './helpers/http.ts';
import type { components, operations } from '../generated/aideer.ts';
import {
  createTestDatabase,
  startServer,
  usingPostgres,
  type TestDatabase,
  type TestServer,
} from './helpers/server.ts';
import { V1, giveCredits, signUp, signUpAdmin, type AideerUser, type Detail, type Invalid } from './helpers/aideer.ts';
import { startFakeOpenAI, type FakeOpenAI, type FakeReply } from './helpers/fakeOpenAI.ts';

type Msg = { role: 'user' | 'assistant' | 'system'; content: string };
type Task = components['schemas']['Task'];
type ChatRead = components['schemas']['ChatRead'];

async function presetFor(
  api: Client,
  user: AideerUser,
  model: string,
  messages: Msg[] = [{ role: 'system', content: 'You are AIDeer.' }],
  parameters: Record<string, unknown> = {},
): Promise<string> {
  const res = await api
    .post(`${V1}/presets`)
    .set(user.bearer)
    .send({
      title: 'Preset',
      messages: messages.map((m) => ({ ...m, type: 'text' })),
      parameters: { model, ...parameters },
    })
    .expect(200);
  return bodyOf<Ok<operations['createPreset']>>(res).id;
}

async function chatFor(
  api: Client,
  user: AideerUser,
  presetId: string,
  messages: Msg[] = [{ role: 'user', content: '你好' }],
): Promise<string> {
  const res = await api
    .post(`${V1}/chats`)
    .set(user.bearer)
    .send({ preset_id: presetId, title: 'Chat', messages: messages.map((m) => ({ ...m, type: 'text' })) })
    .expect(200);
  return bodyOf<Ok<operations['createChat']>>(res).id;
}

async function credits(api: Client, user: AideerUser) {
  const res = await api.get(`${V1}/users/me/credits`).set(user.bearer).expect(200);
  return bodyOf<Ok<operations['getMyCredits']>>(res);
}

async function waitStatus(api: Client, taskId: string, status: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const task = bodyOf<Task>(await api.get(`${V1}/tasks/${taskId}`).expect(200));
    if (task.status === status) return;
    if (Date.now() > deadline) throw new Error(`task ${taskId} is ${task.status}, not ${status}`);
    await sleep(20);
  }
}

describe('AIDeer tasks', () => {
  let fake: FakeOpenAI;
  let server: TestServer;
  let api: Client;

  let upstream: Record<string, string>;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'sk-fake' });
    upstream = {
      DEEPSEEK_BASE_URL: fake.url,
      DEEPSEEK_API_KEY: 'sk-fake',
      OPENAI_BASE_URL: fake.url,
      OPENAI_API_KEY: 'sk-fake',
      DASHSCOPE_BASE_URL: fake.url,
      DASHSCOPE_API_KEY: 'sk-fake',
    };
    server = await startServer({
      ...upstream,
      LLM_TIMEOUT_SECONDS: '1',
      SSE_PING_SECONDS: '1',
      MAX_ACTIVE_TASKS_PER_USER: '3',
    });
    api = client(server.url);
  });
  after(async () => {
    await server.close();
    await fake.close();
  });

  async function funded(amount = 10_000) {
    const user = await signUp(api);
    await giveCredits(server, user.id, amount);
    return user;
  }

  describe('createTask — POST /tasks', () => {
    it('when the user has no credits, then 402 before the chat is even looked up', async () => {
      const user = await signUp(api);
      const res = await api
        .post(`${V1}/tasks`)
        .set(user.bearer)
        .send({ chat_id: '7d9b2c1e-0000-4000-8000-000000000000', type: 'chat_generation' })
        .expect(402);
      expect(res.body).to.deep.equal({ detail: 'Insufficient credits: Please purchase more credits' });
    });

    it('when an admin has no credits, then the task is still created (and charged)', async () => {
      fake.reply({
        kind: 'stream',
        chunks: ['ok'],
        usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
      });
      const admin = await signUpAdmin(api, server);
      const chat = await chatFor(api, admin, await presetFor(api, admin, 'deepseek-chat'));
      const res = await api
        .post(`${V1}/tasks`)
        .set(admin.bearer)
        .send({ chat_id: chat, type: 'chat_generation' })
        .expect(200);
      await waitStatus(api, bodyOf<Task>(res).task_id, 'finished');
      expect((await credits(api, admin)).credits_left).to.equal(-5);
    });

    it("when the chat does not exist, then 404; another user's chat is 403; image_generation is 422", async () => {
      const owner = await funded();
      const other = await funded();
      const chat = await chatFor(api, owner, await presetFor(api, owner, 'deepseek-chat'));
      expect(
        (
          await api
            .post(`${V1}/tasks`)
            .set(owner.bearer)
            .send({ chat_id: '7d9b2c1e-0000-4000-8000-000000000000', type: 'chat_generation' })
            .expect(404)
        ).body,
      ).to.deep.equal({ detail: 'Chat not found' });
      expect(
        (await api.post(`${V1}/tasks`).set(other.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(403))
          .body,
      ).to.deep.equal({ detail: 'Insufficient permissions: You do not have access to this chat' });
      expect(
        (await api.post(`${V1}/tasks`).set(owner.bearer).send({ chat_id: chat, type: 'image_generation' }).expect(422))
          .body,
      ).to.deep.equal({ detail: 'Task type image_generation is not supported' });
      const bad = await api
        .post(`${V1}/tasks`)
        .set(owner.bearer)
        .send({ chat_id: 'not-a-uuid', type: 'chat_generation' })
        .expect(422);
      expect(bodyOf<Invalid>(bad).detail[0]).to.include({ type: 'uuid_parsing' });
    });

    it('when 20 tasks are created at once by a user with 1 credit, then at most the cap succeed, the rest 429, and the balance equals its records', async () => {
      // Every reply is held until the burst is over: a task that finished and was charged first
      // would make the rest 402. Its own server: held replies outlast this suite's 1 s LLM timeout.
      const held = await startServer({ ...upstream, MAX_ACTIVE_TASKS_PER_USER: '3' });
      let release!: () => void;
      fake.reply({
        kind: 'stream',
        chunks: ['held', ' reply'],
        until: new Promise<void>((r) => (release = r)),
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      });
      try {
        const heldApi = client(held.url);
        const user = await signUp(heldApi);
        await giveCredits(held, user.id, 1);
        const chat = await chatFor(heldApi, user, await presetFor(heldApi, user, 'deepseek-chat'));
        const results = await Promise.all(
          Array.from({ length: 20 }, () =>
            heldApi.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }),
          ),
        );
        release();
        const ok = results.filter((r) => r.status === 200);
        expect(ok.length).to.be.within(1, 3);
        for (const r of results.filter((r) => r.status !== 200))
          expect(r.body).to.deep.equal({ detail: 'Too many active tasks' });
        expect(results.filter((r) => r.status === 429).length).to.equal(20 - ok.length);
        for (const r of ok) await waitStatus(heldApi, bodyOf<Task>(r).task_id, 'finished');
        const c = await credits(heldApi, user);
        expect(c.credits_left).to.equal(c.credit_records.reduce((s, r) => s + r.amount, 0));
        expect(c.credits_left).to.equal(1 - 2 * ok.length);
      } finally {
        release();
        await held.close();
      }
    });
  });

  describe('readTask — GET /tasks/{task_id}', () => {
    it('when a task was just created, then it reads as pending (or already running); unknown ids are 404, bad ids 422, and case does not matter', async () => {
      fake.reply({ kind: 'stream', chunks: ['a', 'b'], delayMs: 100 });
      const user = await funded();
      const chat = await chatFor(api, user, await presetFor(api, user, 'deepseek-chat'));
      const created = bodyOf<Task>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
      );
      expect(created.status).to.equal('pending');
      const read = await api.get(`${V1}/tasks/${created.task_id}`).expect(200);
      expect(['pending', 'running']).to.include(bodyOf<Task>(read).status);
      expect((await api.get(`${V1}/tasks/7d9b2c1e-0000-4000-8000-000000000000`).expect(404)).body).to.deep.equal({
        detail: 'Task 7d9b2c1e-0000-4000-8000-000000000000 not found',
      });
      await api.get(`${V1}/tasks/nope`).expect(422);
      // ids are matched whatever their case; only the canonical form is an id
      expect(bodyOf<Task>(await api.get(`${V1}/tasks/${created.task_id.toUpperCase()}`).expect(200)).task_id).to.equal(
        created.task_id,
      );
      await api.get(`${V1}/tasks/urn:uuid:${created.task_id}`).expect(422);
      await waitStatus(api, created.task_id, 'finished');
    });
  });

  describe('deleteTask — DELETE /tasks/{task_id}', () => {
    it('when a finished task is deleted, then it is gone; a running one cannot be deleted', async () => {
      fake.reply({ kind: 'stream', chunks: ['x', 'y'], delayMs: 300 });
      const user = await funded();
      const chat = await chatFor(api, user, await presetFor(api, user, 'deepseek-chat'));
      const body = bodyOf<Task>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
      );
      const busy = await api.delete(`${V1}/tasks/${body.task_id}`).expect(422);
      expect(bodyOf<Detail>(busy).detail).to.match(
        new RegExp(`^Cannot delete task ${body.task_id} with status (pending|running)$`),
      );
      await waitStatus(api, body.task_id, 'finished');
      expect((await api.delete(`${V1}/tasks/${body.task_id}`).expect(200)).body).to.deep.equal({
        message: `Task ${body.task_id} deleted successfully`,
      });
      await api.get(`${V1}/tasks/${body.task_id}`).expect(404);
      await api.delete(`${V1}/tasks/${body.task_id}`).expect(404);
      const missing = await sse(server.url, `${V1}/tasks/${body.task_id}/stream`);
      expect(missing.status).to.equal(404);
    });
  });

  describe('streamTask — GET /tasks/{task_id}/stream: chat generation', () => {
    it('when the upstream streams a reply, then the stream carries it cumulatively, the chat gets it, and usage × multiplier is charged once', async () => {
      fake.reply({
        kind: 'stream',
        chunks: ['你好', '，我是', ' AIDeer', '。'],
        delayMs: 60,
        usage: { prompt_tokens: 20, completion_tokens: 9, total_tokens: 29 },
      });
      const user = await funded(1000);
      const preset = await presetFor(
        api,
        user,
        'gpt-3.5-turbo',
        [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello' },
        ],
        { max_tokens: 300, temperature: 0.5 },
      );
      const chat = await chatFor(api, user, preset, [{ role: 'user', content: '你是谁？' }]);
      const request = fake.nextRequest();
      const created = bodyOf<Task>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
      );
      const stream = await sse(server.url, `${V1}/tasks/${created.task_id}/stream`);
      expect(stream.status).to.equal(200);
      expect(stream.headers['content-type']).to.equal('text/event-stream; charset=utf-8');
      expect(stream.headers['x-accel-buffering']).to.equal('no');
      expect(stream.headers['cache-control']).to.equal('no-cache');
      await stream.done;
      const upstream = await request;
      expect(upstream.model).to.equal('gpt-3.5-turbo');
      expect(upstream.messages).to.deep.equal([
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello' },
        { role: 'user', content: '你是谁？' },
      ]);
      expect(upstream.body).to.include({ max_tokens: 300, temperature: 0.5, stream: true });
      expect(upstream.authorization).to.equal('Bearer sk-fake');

      const events = stream.events.filter((e) => !e.comment);
      expect(events[0]).to.deep.equal({ event: 'open' });
      expect(events[events.length - 1]).to.deep.equal({ event: 'close' });
      const final = events[events.length - 2].data!;
      expect(final).to.deep.equal({ status: 'finished', content: '你好，我是 AIDeer。' });
      const running = events.slice(1, -2).map((e) => e.data!);
      expect(running.length).to.be.greaterThan(0);
      for (const [i, e] of running.entries()) {
        expect(e.status).to.equal('running');
        expect(final.content!.startsWith(e.content!)).to.equal(true);
        if (i > 0) expect(e.content!.length).to.be.greaterThan(running[i - 1].content!.length);
      }

      // The moment the final event arrived, the chat held the reply and the charge was made.
      const chatNow = bodyOf<ChatRead>(await api.get(`${V1}/chats/${chat}`).set(user.bearer).expect(200));
      const last = chatNow.messages[chatNow.messages.length - 1];
      expect(last).to.include({ role: 'assistant', type: 'text', content: '你好，我是 AIDeer。', visibility: true });
      const c = await credits(api, user);
      expect(c.credits_left).to.equal(1000 - 29 * 11);
      const charges = c.credit_records.filter((r) => r.description.includes(created.task_id));
      expect(charges).to.have.length(1);
      expect(charges[0]).to.include({
        amount: -319,
        description: `Consume: Chat generation, chat_id: ${chat}, task_id: ${created.task_id}`,
      });
      expect(bodyOf<Task>(await api.get(`${V1}/tasks/${created.task_id}`).expect(200)).status).to.equal('finished');
    });

    const failures: [string, FakeReply][] = [
      ['answers HTTP 500', { kind: 'error', status: 500, delayMs: 150 }],
      ['breaks off midway', { kind: 'break', chunks: ['partial'], how: 'destroy', delayMs: 150 }],
      ['stalls past the timeout', { kind: 'stall', chunks: ['slow'] }],
    ];
    for (const [what, reply] of failures) {
      it(`when the upstream ${what}, then a failed event, a failed task, nothing charged and nothing appended`, async () => {
        fake.reply(reply);
        const user = await funded(500);
        const chat = await chatFor(api, user, await presetFor(api, user, 'deepseek-chat'));
        const created = bodyOf<Task>(
          await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
        );
        const stream = await sse(server.url, `${V1}/tasks/${created.task_id}/stream`);
        await stream.done;
        const data = stream.events.filter((e) => e.data).map((e) => e.data!);
        const final = data[data.length - 1];
        expect(final?.status, JSON.stringify(stream.events)).to.equal('failed');
        expect(final.content).to.be.a('string').and.not.include('sk-fake');
        expect(stream.events[stream.events.length - 1]).to.deep.equal({ event: 'close' });
        expect(bodyOf<Task>(await api.get(`${V1}/tasks/${created.task_id}`).expect(200)).status).to.equal('failed');
        expect((await credits(api, user)).credits_left).to.equal(500);
        const chatNow = bodyOf<ChatRead>(await api.get(`${V1}/chats/${chat}`).set(user.bearer).expect(200));
        expect(chatNow.messages.map((m: { role: string }) => m.role)).to.deep.equal(['user']);
        // a failed task's stream is refused before any stream header
        const again = await sse(server.url, `${V1}/tasks/${created.task_id}/stream`);
        expect(again.status).to.equal(422);
        expect(again.body).to.deep.equal({ detail: `Task ${created.task_id} failed` });
      });
    }

    it('when two streams are opened at once, then exactly one is refused with 422 already being streamed', async () => {
      fake.reply({ kind: 'stream', chunks: ['one', ' two', ' three'], delayMs: 300 });
      const user = await funded();
      const chat = await chatFor(api, user, await presetFor(api, user, 'deepseek-chat'));
      const body = bodyOf<Task>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
      );
      const [a, b] = await Promise.all([
        sse(server.url, `${V1}/tasks/${body.task_id}/stream`),
        sse(server.url, `${V1}/tasks/${body.task_id}/stream`),
      ]);
      const statuses = [a.status, b.status].sort();
      expect(statuses).to.deep.equal([200, 422]);
      const refused = a.status === 422 ? a : b;
      expect(refused.body).to.deep.equal({ detail: `Task ${body.task_id} is already being streamed` });
      await (a.status === 200 ? a : b).done;
    });

    it('when the client disconnects and reconnects with Last-Event-ID, then the new connection is accepted and gets what followed at once', async () => {
      fake.reply({ kind: 'stream', chunks: ['first', ' second', ' third', ' fourth'], delayMs: 250 });
      const user = await funded();
      const chat = await chatFor(api, user, await presetFor(api, user, 'deepseek-chat'));
      const body = bodyOf<Task>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
      );
      const first = await sse(server.url, `${V1}/tasks/${body.task_id}/stream`);
      const seen = await first.until((e) => e.data?.content === 'first second');
      first.disconnect();
      const second = await sse(server.url, `${V1}/tasks/${body.task_id}/stream`, { 'Last-Event-ID': seen.id! });
      expect(second.status, JSON.stringify(second.body)).to.equal(200);
      const firstData = await second.until((e) => Boolean(e.data));
      expect(firstData.id).to.equal(String(Number(seen.id) + 1));
      expect(firstData.data!.content!.startsWith('first second ')).to.equal(true);
      await second.done;
      expect(second.events.filter((e) => e.data).pop()!.data).to.deep.equal({
        status: 'finished',
        content: 'first second third fourth',
      });
    });

    it('when a stream is opened after the task finished, then it replays the final event and closes', async () => {
      fake.reply({ kind: 'stream', chunks: ['done', ' deal'] });
      const user = await funded();
      const chat = await chatFor(api, user, await presetFor(api, user, 'deepseek-chat'));
      const body = bodyOf<Task>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
      );
      await waitStatus(api, body.task_id, 'finished');
      const stream = await sse(server.url, `${V1}/tasks/${body.task_id}/stream`);
      await stream.done;
      expect(stream.events).to.deep.equal([
        { event: 'open' },
        { id: '3', data: { status: 'finished', content: 'done deal' } },
        { event: 'close' },
      ]);
    });

    it('when the reply takes longer than the ping interval, then `: ping` comments keep the stream alive', async () => {
      fake.reply({ kind: 'stream', chunks: ['a', 'b', 'c'], delayMs: 700 });
      const user = await funded();
      const chat = await chatFor(api, user, await presetFor(api, user, 'deepseek-chat'));
      const body = bodyOf<Task>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
      );
      const stream = await sse(server.url, `${V1}/tasks/${body.task_id}/stream`);
      await stream.done;
      expect(stream.events.some((e) => e.comment === 'ping')).to.equal(true);
    });

    it("when the task's user is deleted while its stream is open, then the stream ends with a failed event", async () => {
      // The reply holds after its text until the test lets it go, so the task is still running
      // when its user is deleted, however slow the machine.
      let release!: () => void;
      fake.reply({
        kind: 'stream',
        chunks: ['a', 'b', 'c', 'd'],
        until: new Promise<void>((resolve) => (release = resolve)),
      });
      try {
        const admin = await signUpAdmin(api, server);
        const user = await funded();
        const chat = await chatFor(api, user, await presetFor(api, user, 'deepseek-chat'));
        const body = bodyOf<Task>(
          await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
        );
        const stream = await sse(server.url, `${V1}/tasks/${body.task_id}/stream`);
        await stream.until((e) => e.data?.status === 'running' && e.data.content === 'abcd');
        await api.delete(`${V1}/users/${user.id}`).set(admin.bearer).expect(200);
        await stream.done;
        expect(stream.events.filter((e) => e.data).pop()!.data).to.deep.equal({
          status: 'failed',
          content: 'The task no longer exists',
        });
        expect(stream.events[stream.events.length - 1]).to.deep.equal({ event: 'close' });
      } finally {
        release();
      }
    });

    it("when a stream's hold has lapsed (its server died), then a new stream takes over", async () => {
      fake.reply({ kind: 'stream', chunks: ['x', 'y'], delayMs: 200 });
      const user = await funded();
      const chat = await chatFor(api, user, await presetFor(api, user, 'deepseek-chat'));
      const body = bodyOf<Task>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
      );
      await server
        .db('aideer_tasks')
        .where({ id: body.task_id })
        .update({ stream_holder: 'a-dead-server', stream_lease_until: Date.now() - 1 });
      const stream = await sse(server.url, `${V1}/tasks/${body.task_id}/stream`);
      expect(stream.status).to.equal(200);
      await stream.done;
      await server
        .db('aideer_tasks')
        .where({ id: body.task_id })
        .update({ stream_holder: 'a-live-server', stream_lease_until: Date.now() + 60_000 });
      expect((await sse(server.url, `${V1}/tasks/${body.task_id}/stream`)).status).to.equal(422);
    });
  });

  describe('streamTask — GET /tasks/{task_id}/stream: title generation (createTask of type title_generation)', () => {
    it('when a title task runs, then the stream sends only the final event, the chat gets the title and total_tokens × 1 is charged', async () => {
      fake.reply({
        kind: 'stream',
        chunks: ['自我', '介绍'],
        usage: { prompt_tokens: 40, completion_tokens: 4, total_tokens: 44 },
        delayMs: 50,
      });
      const user = await funded(100);
      const chat = await chatFor(api, user, await presetFor(api, user, 'qwen-max'), [
        { role: 'user', content: '介绍一下你自己' },
      ]);
      const request = fake.nextRequest();
      const body = bodyOf<Task>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'title_generation' }).expect(200),
      );
      const stream = await sse(server.url, `${V1}/tasks/${body.task_id}/stream`);
      await stream.done;
      expect(stream.events.filter((e) => !e.comment)).to.deep.equal([
        { event: 'open' },
        { id: '1', data: { status: 'finished', content: '自我介绍' } },
        { event: 'close' },
      ]);
      const upstream = await request;
      expect(upstream.model).to.equal('deepseek-chat');
      expect(upstream.body.max_tokens).to.equal(100);
      expect(upstream.messages[upstream.messages.length - 1].role).to.equal('system');
      const chatNow = bodyOf<ChatRead>(await api.get(`${V1}/chats/${chat}`).set(user.bearer).expect(200));
      expect(chatNow.title).to.equal('自我介绍');
      expect(chatNow.messages).to.have.length(1);
      const c = await credits(api, user);
      expect(c.credits_left).to.equal(100 - 44);
      expect(c.credit_records[c.credit_records.length - 1].description).to.equal(
        `Consume: Title generation, chat_id: ${chat}, task_id: ${body.task_id}`,
      );
    });

    it('when the model answers an empty title, then the chat is titled 闲聊', async () => {
      fake.reply({ kind: 'stream', chunks: [' ', '\n'] });
      const user = await funded();
      const chat = await chatFor(api, user, await presetFor(api, user, 'deepseek-chat'));
      const body = bodyOf<Task>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'title_generation' }).expect(200),
      );
      await waitStatus(api, body.task_id, 'finished');
      expect(bodyOf<ChatRead>(await api.get(`${V1}/chats/${chat}`).set(user.bearer).expect(200)).title).to.equal(
        '闲聊',
      );
    });

    it('when the model answers a long title, then it is cut to 50 characters', async () => {
      fake.reply({ kind: 'stream', chunks: ['“', 'x'.repeat(80), '”'] });
      const user = await funded();
      const chat = await chatFor(api, user, await presetFor(api, user, 'deepseek-chat'));
      const body = bodyOf<Task>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'title_generation' }).expect(200),
      );
      await waitStatus(api, body.task_id, 'finished');
      expect(bodyOf<ChatRead>(await api.get(`${V1}/chats/${chat}`).set(user.bearer).expect(200)).title).to.equal(
        'x'.repeat(50),
      );
    });
  });
});

describe('AIDeer tasks without provider keys, across restarts and instances', () => {
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase();
  });
  after(() => database.drop());

  it('when no key is configured, then the offline echo model answers, streams and is charged', async () => {
    const server = await startServer({ LLM_ECHO_DELAY_MS: '5' }, { database });
    try {
      const api = client(server.url);
      expect(server.app.aideer!.models.describe()).to.deep.equal({
        live: [],
        echo: ['deepseek-chat', 'gpt-3.5-turbo', 'qwen-turbo', 'qwen-plus', 'qwen-max'],
      });
      const user = await signUp(api);
      await giveCredits(server, user.id, 1000);
      const chat = await chatFor(api, user, await presetFor(api, user, 'qwen-plus'), [
        { role: 'user', content: 'Tell me about the deer in the forest near the lake' },
      ]);
      const body = bodyOf<Task>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
      );
      const stream = await sse(server.url, `${V1}/tasks/${body.task_id}/stream`);
      await stream.done;
      const data = stream.events.filter((e) => e.data).map((e) => e.data!);
      expect(data.length).to.be.greaterThan(2);
      expect(data[data.length - 1]).to.deep.equal({
        status: 'finished',
        content: 'Tell me about the deer in the forest near the lake',
      });
      const c = await credits(api, user);
      expect(c.credits_left).to.be.lessThan(1000);
      expect((1000 - c.credits_left) % 10).to.equal(0); // qwen-plus multiplier
    } finally {
      await server.close();
    }
  });

  it('when a task was left running by a server that died in its last allowed run, then it is failed when the server starts again; a task another live instance holds is not', async () => {
    const first = await startServer({}, { database });
    const api = client(first.url);
    const user = await signUp(api);
    const chat = await chatFor(api, user, await presetFor(api, user, 'deepseek-chat'));
    await first.close();
    const now = Date.now();
    const orphan = {
      id: '11111111-1111-4111-8111-111111111111',
      user_id: user.id,
      chat_id: chat,
      type: 'chat_generation' as const,
      status: 'running' as const,
      content: 'half',
      created_at: now - 60_000,
      updated_at: now - 30_000,
      runner_lease_until: now - 10_000,
      attempts: 3,
    };
    const alive = { ...orphan, id: '22222222-2222-4222-8222-222222222222', runner_lease_until: now + 60_000 };
    await database.db('aideer_tasks').insert([orphan, alive]);
    const second = await startServer({ TASK_MAX_ATTEMPTS: '3' }, { database });
    try {
      const api2 = client(second.url);
      expect(bodyOf<Task>(await api2.get(`${V1}/tasks/${orphan.id}`).expect(200)).status).to.equal('failed');
      expect((await database.db('aideer_tasks').where({ id: orphan.id }).first())!.error).to.equal(
        'The server running the task stopped 3 times before it finished; create the task again',
      );
      expect(bodyOf<Task>(await api2.get(`${V1}/tasks/${alive.id}`).expect(200)).status).to.equal('running');
      const refused = await sse(second.url, `${V1}/tasks/${orphan.id}/stream`);
      expect(refused.status).to.equal(422);
    } finally {
      await second.close();
    }
  });

  // On SQLite the service is one instance: events cross instances only through Postgres.
  (usingPostgres ? it : it.skip)(
    'when a task runs on one instance, then a stream opened on another instance follows it to the end',
    async () => {
      const a = await startServer({ LLM_ECHO_DELAY_MS: '150' }, { database });
      const b = await startServer({}, { database });
      try {
        const apiA = client(a.url);
        const user = await signUp(apiA);
        await giveCredits(a, user.id, 100);
        const chat = await chatFor(apiA, user, await presetFor(apiA, user, 'deepseek-chat'), [
          { role: 'user', content: 'one two three four five six seven eight nine ten' },
        ]);
        const body = bodyOf<Task>(
          await apiA.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
        );
        const stream = await sse(b.url, `${V1}/tasks/${body.task_id}/stream`);
        await stream.done;
        const data = stream.events.filter((e) => e.data).map((e) => e.data!);
        // the growing text reaches the other instance through Postgres, not just the end
        expect(data.some((d) => d.status === 'running')).to.equal(true);
        expect(data.pop()).to.deep.equal({
          status: 'finished',
          content: 'one two three four five six seven eight nine ten',
        });
        // the one-stream rule holds across instances too
        const replay = await sse(a.url, `${V1}/tasks/${body.task_id}/stream`);
        expect(replay.status).to.equal(200);
        await replay.done;
      } finally {
        await a.close();
        await b.close();
      }
    },
  );

  it('when a task runs longer than its lease, then its server keeps renewing it and the sweep leaves it alone', async () => {
    const server = await startServer({ TASK_LEASE_SECONDS: '2', LLM_ECHO_DELAY_MS: '500' }, { database });
    try {
      const api = client(server.url);
      const user = await signUp(api);
      await giveCredits(server, user.id, 100);
      const chat = await chatFor(api, user, await presetFor(api, user, 'deepseek-chat'), [
        { role: 'user', content: 'a b c d e f g h' },
      ]);
      const body = bodyOf<Task>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
      );
      await waitStatus(api, body.task_id, 'finished', 15_000); // ~3.5 s of streaming, past the 2 s lease
    } finally {
      await server.close();
    }
  });

  it('when the server stops while a task runs, then the task ends failed, not left running', async () => {
    const server = await startServer({ LLM_ECHO_DELAY_MS: '500' }, { database });
    const api = client(server.url);
    const user = await signUp(api);
    await giveCredits(server, user.id, 100);
    const chat = await chatFor(api, user, await presetFor(api, user, 'deepseek-chat'), [
      { role: 'user', content: 'a b c d e f g h' },
    ]);
    const body = bodyOf<Task>(
      await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
    );
    await waitStatus(api, body.task_id, 'running');
    await server.close();
    const row = await database.db('aideer_tasks').where({ id: body.task_id }).first();
    expect(row!.status).to.equal('failed');
  });

  it('when a finished task is older than TASK_TTL_SECONDS, then it reads as 404 and is purged', async () => {
    const server = await startServer({ TASK_TTL_SECONDS: '1' }, { database });
    try {
      const api = client(server.url);
      const user = await signUp(api);
      await giveCredits(server, user.id, 100);
      const chat = await chatFor(api, user, await presetFor(api, user, 'deepseek-chat'));
      const body = bodyOf<Task>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
      );
      await waitStatus(api, body.task_id, 'finished');
      await sleep(1100);
      await api.get(`${V1}/tasks/${body.task_id}`).expect(404);
      expect(await server.app.aideer!.tasks.purge()).to.be.at.least(1);
      expect(await database.db('aideer_tasks').where({ id: body.task_id })).to.have.length(0);
    } finally {
      await server.close();
    }
  });
});
