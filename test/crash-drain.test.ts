// Crash and drain, on real server processes: SIGKILL in the middle of a mixed write load loses no
// acknowledged write, leaves nothing half-written and no task running; SIGTERM drains (issue 12,
// defect 2): idle connections closed at once, requests in flight and running tasks finish, streams
// end cleanly, a task that cannot finish in time is failed with a reason, exit 0.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { bodyOf, client, sse, type Client, type Ok, type SseEvent } from './helpers/http.ts';
import type { operations } from '../generated/aideer.ts';
import type { operations as oneapi } from '../generated/oneapi.ts';
import { assertOnContract } from './helpers/contract.ts';
import { signUp, V1, type AideerUser } from './helpers/aideer.ts';
import { API, authHeaders, newSession, type Session } from './helpers/oneapi.ts';
import { startFakeOpenAI, type FakeOpenAI } from './helpers/fakeOpenAI.ts';
import {
  alive,
  createProcessDatabase,
  processEnv,
  spawnServer,
  type ProcessDatabase,
  type ServerProcess,
} from './helpers/process.ts';
import { databaseLabel } from './helpers/server.ts';
import { CreditStore } from '../src/aideer/store/credits.ts';
import { DRAIN_REASON } from '../src/aideer/domain/tasks.ts';

const LEASE_SECONDS = 2;
/** Figures for the closing note of the run (printed, never asserted). */
const figures: string[] = [];

/** Events as the client sees them, less their ids (test/aideer-task-events.test.ts checks those). */
const withoutIds = (events: SseEvent[]) => events.map(({ id: _id, ...rest }) => rest);
after(() => {
  if (figures.length) console.log(`\n  crash and drain figures (${databaseLabel}):\n    ${figures.join('\n    ')}`);
});

async function fund(database: ProcessDatabase, user: AideerUser, amount = 1_000_000): Promise<void> {
  const credits = new CreditStore(database.db);
  await database.db.transaction((trx) => credits.change(trx, user.id, amount, 'Add: test grant'));
}

async function presetAndChat(
  api: Client,
  user: AideerUser,
  model: string,
): Promise<{ presetId: string; chatId: string }> {
  const preset = bodyOf<Ok<operations['createPreset']>>(
    await api
      .post(`${V1}/presets`)
      .set(user.bearer)
      .send({
        title: 'Preset',
        messages: [{ role: 'system', content: 'You are AIDeer.', type: 'text' }],
        parameters: { model },
      })
      .expect(200),
  );
  const chat = await api
    .post(`${V1}/chats`)
    .set(user.bearer)
    .send({
      preset_id: preset.id,
      title: 'Chat',
      messages: [{ role: 'user', content: '一二三四五六七八九十', type: 'text' }],
    })
    .expect(200);
  return { presetId: preset.id, chatId: bodyOf<Ok<operations['createChat']>>(chat).id };
}

/** An HTTP/1.1 connection that made one request and stays open, idle, as a keep-alive client's. */
async function idleConnection(url: string): Promise<{ closed: Promise<void> }> {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), '127.0.0.1');
  let got = '';
  await new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('connect', () => socket.write('GET /api/v1/no-such-route HTTP/1.1\r\nHost: x\r\n\r\n'));
    socket.on('data', (c) => {
      got += c.toString('latin1');
      // The whole (small) 404 is in: from now on the connection is idle.
      if (!got.startsWith('HTTP/1.1 404') || !got.endsWith('{"detail":"Not Found"}')) return;
      assertOnContract({
        method: 'GET',
        url: '/api/v1/no-such-route',
        status: 404,
        headers: { 'content-type': 'application/json' },
        body: { detail: 'Not Found' },
      });
      resolve();
    });
  });
  return { closed: new Promise<void>((resolve) => socket.on('close', () => resolve())) };
}

describe(`crash and drain, real server processes (${databaseLabel})`, () => {
  let fake: FakeOpenAI;
  const spawned: ServerProcess[] = [];
  const databases: ProcessDatabase[] = [];
  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'sk-fake' });
  });
  after(async () => {
    // A failed test may leave its server up: it goes now, with the databases.
    for (const s of spawned) if (alive(s.pid)) s.child.kill('SIGKILL');
    await Promise.all(spawned.map((s) => s.exited));
    for (const d of databases) await d.drop();
    await fake.close();
  });

  async function start(database: ProcessDatabase, env: Record<string, string> = {}): Promise<ServerProcess> {
    const server = await spawnServer(
      processEnv({
        ...database.env,
        TASK_LEASE_SECONDS: String(LEASE_SECONDS),
        MAX_ACTIVE_TASKS_PER_USER: '1000',
        DEEPSEEK_BASE_URL: fake.url,
        DEEPSEEK_API_KEY: 'sk-fake',
        ONEAPI_CHANNELS: JSON.stringify([
          {
            id: 2,
            name: 'fake upstream',
            kind: 'openai-compatible',
            base_url: fake.url,
            api_key: 'sk-fake',
            models: ['fake-chat'],
            timeout_ms: 600_000,
          },
        ]),
        ...env,
      }),
    );
    spawned.push(server);
    return server;
  }

  async function freshDatabase(): Promise<ProcessDatabase> {
    const database = await createProcessDatabase();
    databases.push(database);
    return database;
  }

  describe('SIGKILL under a mixed write load of 20 clients', () => {
    const CLIENTS = 20;
    const KILLS = 3;
    const ACKS_PER_ROUND = 120;
    const NET_ERRORS = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ECONNABORTED']);

    it(`when the server is killed ${KILLS} times mid-load and restarted, then every acknowledged write is there, none is half-written and no task stays running`, async function () {
      // Five server start-ups and three lease lapses, by design: more than the default test time.
      this.timeout(150_000);
      const begun = Date.now();
      const database = await freshDatabase();
      // The echo model pauses between pieces, so tasks are running when the kill comes.
      const env = { LLM_ECHO_DELAY_MS: '30' };
      let server = await start(database, env);
      let api = client(server.url);
      const aideerUsers: { user: AideerUser; presetId: string; chatId: string }[] = [];
      const oneapiUsers: { session: Session; topicId: number }[] = [];
      for (let i = 0; i < 4; i++) {
        const user = await signUp(api);
        await fund(database, user);
        aideerUsers.push({ user, ...(await presetAndChat(api, user, 'gpt-3.5-turbo')) });
        const session = await newSession(api);
        const topic = await api
          .post(`${API}/topics`)
          .set(authHeaders(session))
          .send({ topic_name: '崩溃测试' })
          .expect(200);
        oneapiUsers.push({ session, topicId: bodyOf<Ok<oneapi['createTopic']>>(topic).data.id });
      }

      const acked = { chats: [] as string[], topics: [] as number[], messages: [] as number[], tasks: [] as string[] };
      const unexpected: string[] = [];
      let unacknowledged = 0;
      const ackCount = () => acked.chats.length + acked.topics.length + acked.messages.length + acked.tasks.length;

      for (let round = 1; round <= KILLS; round++) {
        let stop = false;
        const target = ackCount() + ACKS_PER_ROUND;
        let reached!: () => void;
        const enough = new Promise<void>((resolve) => (reached = resolve));
        const worker = async (n: number) => {
          for (let i = 0; !stop; i++) {
            const { user, presetId, chatId } = aideerUsers[n % aideerUsers.length];
            const { session, topicId } = oneapiUsers[n % oneapiUsers.length];
            try {
              switch ((n + i) % 4) {
                case 0: {
                  const res = await api
                    .post(`${V1}/chats`)
                    .set(user.bearer)
                    .send({
                      preset_id: presetId,
                      title: `c${n}-${i}`,
                      messages: [{ role: 'user', content: 'hi', type: 'text' }],
                    });
                  if (res.status === 200) acked.chats.push(bodyOf<Ok<operations['createChat']>>(res).id);
                  else unexpected.push(`createChat ${res.status}`);
                  break;
                }
                case 1: {
                  const res = await api
                    .post(`${API}/topics`)
                    .set(authHeaders(session))
                    .send({ topic_name: `t${n}-${i}` });
                  if (res.status === 200) acked.topics.push(bodyOf<Ok<oneapi['createTopic']>>(res).data.id);
                  else unexpected.push(`createTopic ${res.status}`);
                  break;
                }
                case 2: {
                  const res = await api
                    .post(`${API}/topics/${topicId}/messages`)
                    .set(authHeaders(session))
                    .send({ content: `m${n}-${i}` });
                  const sent = res.status === 200 ? bodyOf<Ok<oneapi['sendTopicMessage']>>(res).data : undefined;
                  if (sent) acked.messages.push(sent.user_message.id, sent.ai_message.id);
                  else unexpected.push(`sendTopicMessage ${res.status}`);
                  break;
                }
                case 3: {
                  const res = await api
                    .post(`${V1}/tasks`)
                    .set(user.bearer)
                    .send({ chat_id: chatId, type: 'chat_generation' });
                  if (res.status === 200) acked.tasks.push(bodyOf<Ok<operations['createTask']>>(res).task_id);
                  else unexpected.push(`createTask ${res.status}`);
                  break;
                }
              }
            } catch (err) {
              const e = err as NodeJS.ErrnoException;
              if (stop && (NET_ERRORS.has(e.code ?? '') || /socket hang up|aborted/.test(e.message))) unacknowledged++;
              else unexpected.push(`${e.code ?? ''} ${e.message.slice(0, 300)}`);
            }
            if (ackCount() >= target) reached();
          }
        };
        const workers = Array.from({ length: CLIENTS }, (_, n) => worker(n));
        await enough;
        stop = true;
        server.child.kill('SIGKILL');
        const exit = await server.exited;
        expect(exit.signal).to.equal('SIGKILL');
        await Promise.all(workers);
        // Leases of the killed server's tasks lapse; the restarted server fails those tasks as it starts.
        await sleep(LEASE_SECONDS * 1000 + 200);
        server = await start(database, env);
        api = client(server.url);

        const db = database.db;
        const found = {
          chats: Number((await db('aideer_chats').whereIn('id', acked.chats).count({ n: '*' }))[0].n),
          topics: Number((await db('oneapi_topics').whereIn('id', acked.topics).count({ n: '*' }))[0].n),
          messages: Number((await db('oneapi_topic_messages').whereIn('id', acked.messages).count({ n: '*' }))[0].n),
          tasks: Number((await db('aideer_tasks').whereIn('id', acked.tasks).count({ n: '*' }))[0].n),
        };
        expect(found).to.deep.equal({
          chats: acked.chats.length,
          topics: acked.topics.length,
          messages: acked.messages.length,
          tasks: acked.tasks.length,
        });
        expect(unexpected, 'answers other than 200 or a connection cut by the kill').to.deep.equal([]);
        // Nothing half-written: messages come in user/assistant pairs, each task ended and charged at most once, credits add up.
        for (const { topicId } of oneapiUsers) {
          const roles = (
            await db('oneapi_topic_messages').where({ topic_id: topicId }).orderBy('id').select('role')
          ).map((r) => r.role);
          expect(roles.length % 2, `messages of topic ${topicId}`).to.equal(0);
          for (let k = 0; k < roles.length; k += 2)
            expect([roles[k], roles[k + 1]]).to.deep.equal(['user', 'assistant']);
        }
        // The restarted server takes over the killed one's tasks (their claims lapsed) and runs
        // them again from the start: none may stay active.
        let active = await db('aideer_tasks').whereIn('status', ['pending', 'running']).select('id', 'status');
        for (let waited = 0; active.length && waited < 60_000; waited += 100) {
          await sleep(100);
          active = await db('aideer_tasks').whereIn('status', ['pending', 'running']).select('id', 'status');
        }
        expect(active).to.deep.equal([]);
        const charges = await db('aideer_credit_records')
          .whereNotNull('task_id')
          .groupBy('task_id')
          .select('task_id')
          .count<{ task_id: string; n: number | string }[]>({ n: '*' });
        expect(charges.filter((c) => Number(c.n) !== 1)).to.deep.equal([]);
        const finished = new Set(
          (await db('aideer_tasks').where({ status: 'finished' }).select('id')).map((t) => t.id),
        );
        expect(new Set(charges.map((c) => c.task_id))).to.deep.equal(finished);
        for (const { user } of aideerUsers) {
          const row = await db('aideer_users').where({ id: user.id }).first('credits_left');
          const sum = await db('aideer_credit_records').where({ user_id: user.id }).sum({ s: 'amount' }).first();
          expect(Number(row!.credits_left), `credits of user ${user.id}`).to.equal(Number(sum?.s));
        }
        const interrupted = await db('aideer_tasks')
          .where({ status: 'failed', error: 'The server stopped while the task was running' })
          .count({ n: '*' });
        figures.push(
          `kill ${round}/${KILLS} survived: acknowledged rows written ${ackCount()}, found ${Object.values(found).reduce((a, b) => a + b, 0)}; requests cut by kills so far ${unacknowledged}; tasks failed by recovery so far ${interrupted[0].n}`,
        );
      }
      server.child.kill('SIGTERM');
      expect((await server.exited).code).to.equal(0);
      figures.push(`crash suite took ${Date.now() - begun} ms`);
    });
  });

  describe('SIGTERM', () => {
    it('when clients are connected but idle, then they are disconnected at once and the server exits 0', async () => {
      const database = await freshDatabase();
      const server = await start(database, { SHUTDOWN_TIMEOUT_SECONDS: '600' });
      const idle = await Promise.all([
        idleConnection(server.url),
        idleConnection(server.url),
        idleConnection(server.url),
      ]);
      const signalled = Date.now();
      server.child.kill('SIGTERM');
      await Promise.all(idle.map((c) => c.closed));
      const exit = await server.exited;
      expect(exit.code).to.equal(0);
      figures.push(`SIGTERM with 3 idle keep-alive clients: exit after ${exit.at - signalled} ms`);
    });

    it('when a long One-API reply and a task with an open stream are in flight, then idle connections close at once, both finish, the stream ends with its final event and close, and the server exits 0', async () => {
      const database = await freshDatabase();
      const server = await start(database, { SHUTDOWN_TIMEOUT_SECONDS: '600' });
      const api = client(server.url);
      const session = await newSession(api);
      const topic = bodyOf<Ok<oneapi['createTopic']>>(
        await api
          .post(`${API}/topics`)
          .set(authHeaders(session))
          .send({ topic_name: '长回复', channel_id: 2, model: 'fake-chat' })
          .expect(200),
      );
      const user = await signUp(api);
      await fund(database, user);
      const { chatId } = await presetAndChat(api, user, 'deepseek-chat');

      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      fake.reply({
        kind: 'gate',
        chunks: ['long ', 'reply'],
        gate,
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      });
      const upstream = [fake.nextRequest(), fake.nextRequest().then(() => fake.nextRequest())];
      const reply = api
        .post(`${API}/topics/${topic.data.id}/messages`)
        .set(authHeaders(session))
        .send({ content: '请慢慢回答' })
        .then((r) => r);
      await upstream[0];
      const created = bodyOf<Ok<operations['createTask']>>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chatId, type: 'chat_generation' }).expect(200),
      );
      const stream = await sse(server.url, `${V1}/tasks/${created.task_id}/stream`);
      await stream.until((e) => e.data?.content === 'long ');
      const idle = await idleConnection(server.url);

      const signalled = Date.now();
      server.child.kill('SIGTERM');
      await server.untilLog('shutting down');
      await idle.closed;
      // Draining: the process waits for the work in flight (that it refuses new connections
      // meanwhile is test/http-drain.test.ts's to check, free of this process's scheduling).
      expect(alive(server.pid)).to.equal(true);
      release();
      const answered = await reply;
      expect(answered.status).to.equal(200);
      expect(answered.headers.connection).to.equal('close');
      expect(bodyOf<Ok<oneapi['sendTopicMessage']>>(answered).data.ai_message.content).to.equal('long reply');
      await stream.done;
      expect(withoutIds(stream.events.slice(-2))).to.deep.equal([
        { data: { status: 'finished', content: 'long reply' } },
        { event: 'close' },
      ]);
      const exit = await server.exited;
      expect(exit.code).to.equal(0);
      figures.push(
        `SIGTERM with a long request and an open stream: exit ${exit.at - signalled} ms after the signal (the upstream was held until the idle connection had closed)`,
      );
      const task = await database.db('aideer_tasks').where({ id: created.task_id }).first();
      expect(task).to.include({ status: 'finished', content: 'long reply' });
      expect(
        (await database.db('oneapi_topic_messages').where({ topic_id: topic.data.id }).orderBy('id')).map((m) => [
          m.role,
          m.content,
        ]),
      ).to.deep.equal([
        ['user', '请慢慢回答'],
        ['assistant', 'long reply'],
      ]);
      await upstream[1];
    });

    it('when an instance streams a task another instance runs, then on its SIGTERM the stream ends at once without close (its client resumes elsewhere), and the task runs on', async function () {
      // Several instances share Postgres only: on SQLite, task events stay inside one process.
      if (databaseLabel !== 'postgres') this.skip();
      const database = await freshDatabase();
      const runner = await start(database, { SHUTDOWN_TIMEOUT_SECONDS: '1' });
      const streamer = await start(database, { SHUTDOWN_TIMEOUT_SECONDS: '600' });
      const api = client(runner.url);
      const user = await signUp(api);
      await fund(database, user);
      const { chatId } = await presetAndChat(api, user, 'deepseek-chat');
      fake.reply({ kind: 'stall', chunks: ['so far'] });
      const created = bodyOf<Ok<operations['createTask']>>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chatId, type: 'chat_generation' }).expect(200),
      );
      const stream = await sse(streamer.url, `${V1}/tasks/${created.task_id}/stream`);
      await stream.until((e) => e.data?.content === 'so far');

      streamer.child.kill('SIGTERM');
      await stream.done;
      expect(withoutIds(stream.events.slice(-1))).to.deep.equal([{ data: { status: 'running', content: 'so far' } }]);
      expect((await streamer.exited).code).to.equal(0);
      expect(await database.db('aideer_tasks').where({ id: created.task_id }).first()).to.include({
        status: 'running',
      });
      runner.child.kill('SIGTERM');
      expect((await runner.exited).code).to.equal(0);
      expect(await database.db('aideer_tasks').where({ id: created.task_id }).first()).to.include({
        status: 'failed',
        error: DRAIN_REASON,
      });
    });

    it('when a task cannot finish within SHUTDOWN_TIMEOUT_SECONDS, then it is failed at once with a reason, its stream gets that final event and close, and the server exits 0', async () => {
      const database = await freshDatabase();
      const server = await start(database, { SHUTDOWN_TIMEOUT_SECONDS: '1' });
      const api = client(server.url);
      const user = await signUp(api);
      await fund(database, user);
      const { chatId } = await presetAndChat(api, user, 'deepseek-chat');
      fake.reply({ kind: 'stall', chunks: ['partial'] });
      const created = bodyOf<Ok<operations['createTask']>>(
        await api.post(`${V1}/tasks`).set(user.bearer).send({ chat_id: chatId, type: 'chat_generation' }).expect(200),
      );
      const stream = await sse(server.url, `${V1}/tasks/${created.task_id}/stream`);
      await stream.until((e) => e.data?.content === 'partial');

      const signalled = Date.now();
      server.child.kill('SIGTERM');
      await stream.done;
      expect(withoutIds(stream.events.slice(-2))).to.deep.equal([
        { data: { status: 'failed', content: DRAIN_REASON } },
        { event: 'close' },
      ]);
      const exit = await server.exited;
      expect(exit.code).to.equal(0);
      figures.push(
        `SIGTERM with a task that outlives SHUTDOWN_TIMEOUT_SECONDS=1: exit after ${exit.at - signalled} ms`,
      );
      expect(await database.db('aideer_tasks').where({ id: created.task_id }).first()).to.include({
        status: 'failed',
        error: DRAIN_REASON,
        runner_lease_until: null,
      });
      expect(await database.db('aideer_credit_records').where({ task_id: created.task_id })).to.deep.equal([]);
    });
  });
});
