// AIDeer task events (issue 13, 11.3, 12.11): ids on every data event, resuming with Last-Event-ID,
// takeover of the one stream, bounded progress writes, restarts of a task whose server died, the
// drain contract and the health endpoints. One instance here; test/multi-instance/ runs two
// processes on Postgres.
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { bodyOf, client, sse, type Client, type Ok, type SseEvent } from './helpers/http.ts';
import type { operations } from '../generated/aideer.ts';
import { CHECK_HEADER, createTestDatabase, startServer, type TestDatabase, type TestServer } from './helpers/server.ts';
import { V1, createChatTask, giveCredits, signUp, type AideerUser } from './helpers/aideer.ts';
import { startFakeOpenAI, type FakeOpenAI } from './helpers/fakeOpenAI.ts';
import { DRAIN_REASON } from '../src/aideer/domain/tasks.ts';

const CHUNKS = Array.from({ length: 12 }, (_, i) => `w${i} `);
const TEXT = CHUNKS.join('');

async function startTask(
  api: Client,
  server: TestServer,
  model = 'deepseek-chat',
  question = 'hello',
): Promise<{ taskId: string; userId: number; user: AideerUser }> {
  const user = await signUp(api);
  await giveCredits(server, user.id, 10_000);
  return { taskId: await createChatTask(api, user, question, model), userId: user.id, user };
}

/** Polls GET /tasks/{task_id} until the task has `status`. */
async function untilStatus(api: Client, taskId: string, status: string): Promise<void> {
  while (bodyOf<Ok<operations['readTask']>>(await api.get(`${V1}/tasks/${taskId}`).expect(200)).status !== status)
    await sleep(20);
}

const dataEvents = (events: SseEvent[]) => events.filter((e) => e.data);
const ids = (events: SseEvent[]) => dataEvents(events).map((e) => Number(e.id));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('streamTask — GET /tasks/{task_id}/stream: events, resume and takeover', () => {
  let fake: FakeOpenAI;
  let server: TestServer;
  let api: Client;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'sk-fake' });
    // A write interval far beyond any reply: exactly one progress write per task, then the final one.
    server = await startServer({
      DEEPSEEK_BASE_URL: fake.url,
      DEEPSEEK_API_KEY: 'sk-fake',
      TASK_PROGRESS_WRITE_MS: '60000',
      LLM_TIMEOUT_SECONDS: '2',
    });
    api = client(server.url);
  });
  after(async () => {
    await server.close();
    await fake.close();
  });

  it('when a reply streams, then every delta is an event with the next id, one progress write is made, and Last-Event-ID 0 rebuilds the same events from the row', async () => {
    fake.reply({ kind: 'stream', chunks: CHUNKS, delayMs: 30 });
    const writesBefore = server.app.aideer!.tasks.progressWrites;
    const { taskId } = await startTask(api, server);
    const live = await sse(server.url, `${V1}/tasks/${taskId}/stream`, { 'Last-Event-ID': '0' });
    await live.done;
    const expected = [
      ...CHUNKS.map((_, i) => ({ status: 'running', content: CHUNKS.slice(0, i + 1).join('') })),
      { status: 'finished', content: TEXT },
    ];
    expect(dataEvents(live.events).map((e) => e.data)).to.deep.equal(expected);
    expect(ids(live.events)).to.deep.equal(range(1, CHUNKS.length + 1));
    expect(server.app.aideer!.tasks.progressWrites - writesBefore).to.equal(1);
    // After the end, every event comes back from the database alone, identical.
    const replay = await sse(server.url, `${V1}/tasks/${taskId}/stream`, { 'Last-Event-ID': '0' });
    await replay.done;
    expect(dataEvents(replay.events)).to.deep.equal(dataEvents(live.events));
  });

  it('when a client drops and resumes with Last-Event-ID, then it gets exactly the events after it, none lost or twice', async () => {
    fake.reply({ kind: 'stream', chunks: CHUNKS, delayMs: 80 });
    const { taskId } = await startTask(api, server);
    const first = await sse(server.url, `${V1}/tasks/${taskId}/stream`);
    const third = await first.until((e) => e.id === '3');
    first.disconnect();
    const second = await sse(server.url, `${V1}/tasks/${taskId}/stream`, { 'Last-Event-ID': third.id! });
    expect(second.status).to.equal(200);
    await second.done;
    const got = [...dataEvents(first.events).filter((e) => Number(e.id) <= 3), ...dataEvents(second.events)];
    expect(got.map((e) => Number(e.id))).to.deep.equal(range(Number(got[0].id), CHUNKS.length + 1));
    const all = await sse(server.url, `${V1}/tasks/${taskId}/stream`, { 'Last-Event-ID': '0' });
    await all.done;
    expect(got).to.deep.equal(dataEvents(all.events).slice(Number(got[0].id) - 1));
    expect(second.events.at(-1)).to.deep.equal({ event: 'close' });
  });

  it('when a live stream holds the task, then a request without Last-Event-ID gets 422 at once, and one with it takes over and ends the old one with close and no final event', async () => {
    fake.reply({ kind: 'stream', chunks: CHUNKS, delayMs: 80 });
    const { taskId } = await startTask(api, server);
    const holder = await sse(server.url, `${V1}/tasks/${taskId}/stream`);
    const seen = await holder.until((e) => Boolean(e.data));
    const refused = await sse(server.url, `${V1}/tasks/${taskId}/stream`);
    expect(refused.status).to.equal(422);
    expect(refused.body).to.deep.equal({ detail: `Task ${taskId} is already being streamed` });
    const resumed = await sse(server.url, `${V1}/tasks/${taskId}/stream`, { 'Last-Event-ID': seen.id! });
    expect(resumed.status).to.equal(200);
    await holder.done;
    expect(holder.events.at(-1)).to.deep.equal({ event: 'close' });
    expect(dataEvents(holder.events).every((e) => e.data!.status === 'running')).to.equal(true);
    await resumed.done;
    expect(dataEvents(resumed.events).at(-1)!.data).to.deep.equal({ status: 'finished', content: TEXT });
  });

  it('when the live holder would end within moments, then a second request is still refused at once rather than waiting for it', async () => {
    fake.reply({ kind: 'stream', chunks: ['a', 'b'], delayMs: 120 });
    const { taskId } = await startTask(api, server);
    const holder = await sse(server.url, `${V1}/tasks/${taskId}/stream`);
    await holder.until((e) => e.data?.content === 'a');
    // The task ends ~120 ms from here: a request that waited for the holder would get 200.
    const second = await sse(server.url, `${V1}/tasks/${taskId}/stream`);
    expect(second.status).to.equal(422);
    await holder.done;
  });

  it('when a task failed while its client was away, then resuming with Last-Event-ID gets the failure; without it the stream is refused', async () => {
    fake.reply({ kind: 'break', chunks: ['partial'], how: 'destroy', delayMs: 100 });
    const { taskId } = await startTask(api, server);
    const first = await sse(server.url, `${V1}/tasks/${taskId}/stream`);
    const seen = await first.until((e) => e.data?.content === 'partial');
    first.disconnect();
    await untilStatus(api, taskId, 'failed');
    expect((await sse(server.url, `${V1}/tasks/${taskId}/stream`)).status).to.equal(422);
    const resumed = await sse(server.url, `${V1}/tasks/${taskId}/stream`, { 'Last-Event-ID': seen.id! });
    await resumed.done;
    expect(dataEvents(resumed.events)).to.deep.equal([
      { id: String(Number(seen.id) + 1), data: { status: 'failed', content: "The model provider's stream broke off" } },
    ]);
  });

  it('when Last-Event-ID is not an event id, then 422 with the validation list', async () => {
    const { taskId } = await startTask(api, server);
    const bad = await sse(server.url, `${V1}/tasks/${taskId}/stream`, { 'Last-Event-ID': 'abc' });
    expect(bad.status).to.equal(422);
    expect((bad.body as { detail: { loc: string[] }[] }).detail[0].loc).to.deep.equal(['header', 'last-event-id']);
  });
});

describe('AIDeer tasks whose server died, the drain, and health', () => {
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase();
  });
  after(() => database.drop());

  it('when a task was left running by a dead server with attempts to spare, then it restarts from its start: a reset event under the next id, finished, charged once', async () => {
    const first = await startServer({}, { database });
    const api = client(first.url);
    const { taskId, userId, user } = await startTask(api, first, 'deepseek-chat', 'alpha beta gamma delta');
    await untilStatus(api, taskId, 'finished');
    await first.close();
    // Make it look cut mid-run by a server that died: two events written, the claim lapsed.
    const charge = await database.db('aideer_credit_records').where({ task_id: taskId }).first();
    await database.db('aideer_credit_records').where({ task_id: taskId }).delete();
    await database.db('aideer_users').where({ id: userId }).increment('credits_left', -charge!.amount);
    await database
      .db('aideer_tasks')
      .where({ id: taskId })
      .update({
        status: 'running',
        content: 'ab',
        event_marks: '[1,2]',
        run_first_seq: 1,
        event_seq: 2,
        ended_at: null,
        runner_id: 'a-dead-server',
        runner_lease_until: Date.now() - 1,
        attempts: 1,
      });
    const second = await startServer({ LLM_ECHO_DELAY_MS: '20', TASK_MAX_ATTEMPTS: '2' }, { database });
    try {
      const stream = await sse(second.url, `${V1}/tasks/${taskId}/stream`, { 'Last-Event-ID': '2' });
      await stream.done;
      const data = dataEvents(stream.events);
      expect(data[0]).to.deep.equal({ id: '3', data: { status: 'running', content: '' } });
      expect(ids(stream.events)).to.deep.equal(range(3, 2 + data.length));
      expect(data.at(-1)!.data).to.deep.equal({ status: 'finished', content: 'alpha beta gamma delta' });
      const row = await database.db('aideer_tasks').where({ id: taskId }).first();
      expect(row).to.include({ status: 'finished', attempts: 2, runner_id: null });
      const credits = (await client(second.url).get(`${V1}/users/me/credits`).set(user.bearer).expect(200)).body as {
        credits_left: number;
        credit_records: { amount: number; description: string }[];
      };
      expect(credits.credit_records.filter((r) => r.description.includes(taskId))).to.have.length(1);
      expect(credits.credits_left).to.equal(credits.credit_records.reduce((sum, r) => sum + r.amount, 0));
    } finally {
      await second.close();
    }
  });

  it('when the hold passed to another connection without a signal, then the stream ends with close at its next renewal, which keeps live holds alive', async () => {
    // Holds last 2 × 1 s + 5 s and are renewed every third of that.
    const server = await startServer({ LLM_ECHO_DELAY_MS: '1500', SSE_PING_SECONDS: '1' }, { database });
    try {
      const api = client(server.url);
      const kept = await startTask(api, server, 'deepseek-chat', 'abcdefgh');
      const moved = await startTask(api, server, 'deepseek-chat', 'abcdefgh');
      const keptStream = await sse(server.url, `${V1}/tasks/${kept.taskId}/stream`);
      const movedStream = await sse(server.url, `${V1}/tasks/${moved.taskId}/stream`);
      const before = (await server.db('aideer_tasks').where({ id: kept.taskId }).first())!.stream_lease_until!;
      await server.db('aideer_tasks').where({ id: moved.taskId }).update({ stream_holder: 'another-instance' });
      await movedStream.done;
      expect(movedStream.events.at(-1)).to.deep.equal({ event: 'close' });
      expect(dataEvents(movedStream.events).every((e) => e.data!.status === 'running')).to.equal(true);
      expect(
        (await server.db('aideer_tasks').where({ id: kept.taskId }).first())!.stream_lease_until,
      ).to.be.greaterThan(before);
      keptStream.disconnect();
    } finally {
      await server.close();
    }
  });

  it('when the instance drains, then /readyz is 503 at once while /livez stays 200, a task that fits the deadline finishes, and a task that does not is failed with a reason and its stream closed', async () => {
    // The offline echo model streams at most 8 pieces, here 600 ms apart.
    const server = await startServer({ LLM_ECHO_DELAY_MS: '600' }, { database });
    const health = async (path: string) => {
      const res = await fetch(`${server.url}${path}`, { headers: { [CHECK_HEADER]: '1' } });
      return { status: res.status, body: await res.json(), cache: res.headers.get('cache-control') };
    };
    try {
      expect(await health('/livez')).to.deep.equal({ status: 200, body: { status: 'ok' }, cache: 'no-store' });
      expect(await health('/readyz')).to.deep.equal({ status: 200, body: { status: 'ok' }, cache: 'no-store' });
      const api = client(server.url);
      const short = await startTask(api, server, 'deepseek-chat', 'ab');
      const long = await startTask(api, server, 'deepseek-chat', 'one two three four five six seven eight');
      const stream = await sse(server.url, `${V1}/tasks/${long.taskId}/stream`);
      await stream.until((e) => Boolean(e.data));
      // The short task (2 pieces: 1.2 s) fits the deadline; the long one (8 pieces: 4.8 s) does not.
      const drained = server.app.drain(Date.now() + 2500);
      expect(server.app.isDraining()).to.equal(true);
      expect(await health('/readyz')).to.deep.equal({ status: 503, body: { status: 'draining' }, cache: 'no-store' });
      expect((await health('/livez')).status).to.equal(200);
      await drained;
      expect((await server.db('aideer_tasks').where({ id: short.taskId }).first())!.status).to.equal('finished');
      expect(await server.db('aideer_tasks').where({ id: long.taskId }).first()).to.include({
        status: 'failed',
        error: DRAIN_REASON,
      });
      await stream.done;
      expect(dataEvents(stream.events).at(-1)!.data).to.deep.equal({ status: 'failed', content: DRAIN_REASON });
      expect(stream.events.at(-1)).to.deep.equal({ event: 'close' });
    } finally {
      await server.close();
    }
  });
});
