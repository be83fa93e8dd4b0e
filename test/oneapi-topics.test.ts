// One-API topics (decisions O7–O9): topics of the caller, their messages, and AI replies through
// the topic's channel: the built-in offline channel 1, and an OpenAI-compatible channel played by a
// fake upstream on loopback.
import { expect } from 'chai';
import { bodyOf, client, type Client, type Ok } from './helpers/http.ts';
import type { operations } from '../generated/oneapi.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { API, authHeaders, newSession, type Session, type OneApiError } from './helpers/oneapi.ts';
import { startFakeOpenAI, type FakeOpenAI, type FakeReply } from './helpers/fakeOpenAI.ts';
import { MESSAGES } from '../src/oneapi/http/envelope.ts';
import { TOPIC_MESSAGES } from '../src/oneapi/http/handlers/topics.ts';
import { parseChannels } from '../src/channelSettings.ts';
import { Channels } from '../src/oneapi/adapters/channels.ts';
import { Topics } from '../src/oneapi/domain/topics.ts';
import { TopicStore } from '../src/oneapi/store/topics.ts';
import type { ChatMessage } from '../src/llm/index.ts';
import { ConfigError, loadConfig } from '../src/config.ts';

type TopicCreated = Ok<operations['createTopic']>;
type TopicList = Ok<operations['listTopics']>;
type MessageList = Ok<operations['listTopicMessages']>;
type Sent = Ok<operations['sendTopicMessage']>;

const KEY = 'sk-topics-fake-key-5f1c2a';
const FAKE_CHANNEL = 2;
const OFFLINE_CHANNEL = 3;
const HISTORY = 4;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

describe('One-API topics', () => {
  let fake: FakeOpenAI;
  let server: TestServer;
  let api: Client;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: KEY });
    server = await startServer({
      LLM_ECHO_DELAY_MS: '0',
      ONEAPI_TOPIC_HISTORY: String(HISTORY),
      ONEAPI_CHANNELS: JSON.stringify([
        {
          id: FAKE_CHANNEL,
          name: 'fake upstream',
          kind: 'openai-compatible',
          base_url: fake.url,
          api_key: KEY,
          models: ['fake-chat', 'fake-chat-2'],
          timeout_ms: 300,
        },
        { id: OFFLINE_CHANNEL, kind: 'builtin', models: ['offline'] },
      ]),
    });
    api = client(server.url);
  });
  after(async () => {
    await server.close();
    await fake.close();
  });

  async function createTopic(
    session: Session,
    body: Record<string, unknown> = {},
  ): Promise<{ id: number; topic_name: string; model: string; channel_id: number; created_at: string }> {
    const res = await api
      .post(`${API}/topics`)
      .set(authHeaders(session))
      .send({ topic_name: `话题 ${Math.random().toString(36).slice(2, 8)}`, ...body })
      .expect(200);
    return bodyOf<TopicCreated>(res).data;
  }

  function send(session: Session, topicId: number, content: string) {
    return api.post(`${API}/topics/${topicId}/messages`).set(authHeaders(session)).send({ content });
  }

  async function messageRows(topicId: number): Promise<{ id: number; role: string; content: string }[]> {
    return server.db('oneapi_topic_messages').where({ topic_id: topicId }).orderBy('id');
  }

  /** The caller's topics as GET /topics lists them (deleted ones are not listed). */
  async function topicsOf(session: Session): Promise<Record<string, unknown>[]> {
    return bodyOf<TopicList>(await api.get(`${API}/topics`).set(authHeaders(session)).query({ size: 100 }).expect(200))
      .data.topics;
  }

  /** A topic's messages as GET /topics/{id}/messages pages them, oldest first. */
  async function messagesOf(
    session: Session,
    topicId: number,
  ): Promise<{ id: number; role: string; content: string }[]> {
    const all = [];
    for (let page = 1; ; page++) {
      const { messages } = bodyOf<MessageList>(
        await api
          .get(`${API}/topics/${topicId}/messages`)
          .set(authHeaders(session))
          .query({ page, size: 100 })
          .expect(200),
      ).data;
      all.push(...messages);
      if (messages.length < 100) return all;
    }
  }

  async function ban(session: Session): Promise<void> {
    await server.db('oneapi_users').where({ id: session.id }).update({ status: 2 });
  }

  describe('listTopics — GET /topics', () => {
    it('when the caller has no topics, then 200 with an empty list, total 0 and the default page', async () => {
      const me = await newSession(api);
      const res = await api.get(`${API}/topics`).set(authHeaders(me)).expect(200);
      expect(res.body).to.deep.equal({ success: true, message: '', data: { topics: [], total: 0, page: 1, size: 10 } });
    });

    it("when the caller has topics, then they come newest first, each with a message_count equal to its messages total, without deleted or other users' topics", async () => {
      const me = await newSession(api);
      const other = await newSession(api);
      const first = await createTopic(me, { topic_name: '第一' });
      const second = await createTopic(me, { topic_name: '第二' });
      const gone = await createTopic(me, { topic_name: '删除的' });
      await createTopic(other);
      await send(me, first.id, 'a').expect(200);
      await send(me, first.id, 'b').expect(200);
      await send(me, second.id, 'c').expect(200);
      await api.delete(`${API}/topics/${gone.id}`).set(authHeaders(me)).expect(200);

      const res = bodyOf<TopicList>(await api.get(`${API}/topics/`).set(authHeaders(me)).expect(200));
      expect(res.data.total).to.equal(2);
      expect(res.data.topics).to.deep.equal([
        { ...second, message_count: 2 },
        { ...first, message_count: 4 },
      ]);
      for (const t of res.data.topics) {
        const messages = await api.get(`${API}/topics/${t.id}/messages`).set(authHeaders(me)).expect(200);
        expect(bodyOf<MessageList>(messages).data.total).to.equal(t.message_count);
      }
    });

    it('when paging, then size and page select the slice, page_size is an alias, size wins, and a page past the end is empty', async () => {
      const me = await newSession(api);
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) ids.push((await createTopic(me, { topic_name: `t${i}` })).id);
      const newestFirst = [...ids].reverse();
      const page = async (query: Record<string, string | number>) =>
        bodyOf<TopicList>(await api.get(`${API}/topics`).query(query).set(authHeaders(me)).expect(200)).data;

      const p1 = await page({ size: 2 });
      expect(p1.topics.map((t: { id: number }) => t.id)).to.deep.equal(newestFirst.slice(0, 2));
      expect(p1).to.include({ total: 5, page: 1, size: 2 });
      const p3 = await page({ size: 2, page: 3 });
      expect(p3.topics.map((t: { id: number }) => t.id)).to.deep.equal(newestFirst.slice(4));
      expect(await page({ size: 2, page: 4 })).to.deep.equal({ topics: [], total: 5, page: 4, size: 2 });
      expect(await page({ page: 2147483647 })).to.deep.equal({ topics: [], total: 5, page: 2147483647, size: 10 });
      const alias = await page({ page_size: 2, page: 2 });
      expect(alias.topics.map((t: { id: number }) => t.id)).to.deep.equal(newestFirst.slice(2, 4));
      expect(alias).to.include({ page: 2, size: 2 });
      expect(await page({ size: 3, page_size: 1 })).to.include({ size: 3 });
      expect((await page({ size: 100 })).topics).to.have.length(5);
      expect((await page({ size: 1 })).topics).to.have.length(1);
    });

    for (const [query, field] of [
      [{ size: 0 }, 'size'],
      [{ size: 101 }, 'size'],
      [{ page_size: 101 }, 'page_size'],
      [{ page: 0 }, 'page'],
      [{ size: 'ten' }, 'size'],
    ] as const) {
      it(`when the query is ${JSON.stringify(query)}, then 400 请求参数错误 naming ${field}`, async () => {
        const me = await newSession(api);
        const res = await api.get(`${API}/topics`).query(query).set(authHeaders(me)).expect(400);
        expect(bodyOf<OneApiError>(res).message).to.match(new RegExp(`^请求参数错误: ${field} `));
      });
    }

    it('when not authenticated, then 401', async () => {
      const res = await api.get(`${API}/topics`).expect(401);
      expect(res.body).to.deep.equal({ success: false, message: MESSAGES.noToken });
    });

    it('when the caller is banned, then 403 用户已被封禁', async () => {
      const me = await newSession(api);
      await ban(me);
      const res = await api.get(`${API}/topics`).set(authHeaders(me)).expect(403);
      expect(res.body).to.deep.equal({ success: false, message: MESSAGES.banned });
    });
  });

  describe('createTopic — POST /topics', () => {
    it('when only a name is given, then the topic is on channel 1 with gpt-3.5-turbo, and 话题创建成功', async () => {
      const me = await newSession(api);
      const started = Date.now();
      const res = bodyOf<TopicCreated>(
        await api.post(`${API}/topics/`).set(authHeaders(me)).send({ topic_name: '测试话题' }).expect(200),
      );
      expect(res.message).to.equal(TOPIC_MESSAGES.created);
      const topic = res.data;
      expect(topic).to.include({ topic_name: '测试话题', model: 'gpt-3.5-turbo', channel_id: 1 });
      expect(topic.created_at).to.match(ISO_UTC);
      expect(Date.parse(topic.created_at)).to.be.within(started - 1000, Date.now() + 1000);
      expect(await topicsOf(me)).to.deep.equal([{ ...topic, message_count: 0 }]);
    });

    it("when a configured channel is named without a model, then the topic gets that channel's first model", async () => {
      const me = await newSession(api);
      expect(await createTopic(me, { channel_id: FAKE_CHANNEL })).to.include({
        channel_id: FAKE_CHANNEL,
        model: 'fake-chat',
      });
      expect(await createTopic(me, { channel_id: FAKE_CHANNEL, model: 'fake-chat-2' })).to.include({
        channel_id: FAKE_CHANNEL,
        model: 'fake-chat-2',
      });
      expect(await createTopic(me, { channel_id: 1, model: 'echo' })).to.include({ channel_id: 1, model: 'echo' });
    });

    it('when two topics get the same name, then both exist', async () => {
      const me = await newSession(api);
      const a = await createTopic(me, { topic_name: '同名' });
      const b = await createTopic(me, { topic_name: '同名' });
      expect(a.id).to.not.equal(b.id);
    });

    it('when the channel is not configured, then 400 渠道不存在 and nothing is stored', async () => {
      const me = await newSession(api);
      for (const body of [
        { topic_name: 'x', channel_id: 99 },
        { topic_name: 'x', channel_id: 99, model: 'gpt-3.5-turbo' },
      ]) {
        const res = await api.post(`${API}/topics`).set(authHeaders(me)).send(body).expect(400);
        expect(res.body).to.deep.equal({ success: false, message: TOPIC_MESSAGES.unknownChannel });
      }
      expect(await topicsOf(me)).to.deep.equal([]);
    });

    it('when the channel does not serve the model, then 400 该渠道不支持模型 <model> and nothing is stored', async () => {
      const me = await newSession(api);
      let res = await api
        .post(`${API}/topics`)
        .set(authHeaders(me))
        .send({ topic_name: 'x', model: 'gpt-4o' })
        .expect(400);
      expect(res.body).to.deep.equal({ success: false, message: '该渠道不支持模型 gpt-4o' });
      res = await api
        .post(`${API}/topics`)
        .set(authHeaders(me))
        .send({ topic_name: 'x', channel_id: FAKE_CHANNEL, model: 'gpt-3.5-turbo' })
        .expect(400);
      expect(bodyOf<OneApiError>(res).message).to.equal(TOPIC_MESSAGES.modelNotServed('gpt-3.5-turbo'));
      expect(await topicsOf(me)).to.deep.equal([]);
    });

    for (const [body, pattern] of [
      [{}, /^请求参数错误: 缺少字段 topic_name/],
      [{ topic_name: '' }, /^请求参数错误: topic_name 不能为空/],
      [{ topic_name: '   ' }, /^请求参数错误: topic_name 格式不正确/],
      [{ topic_name: '长'.repeat(101) }, /^请求参数错误: topic_name 长度不能超过 100/],
      [{ topic_name: 'x', model: '' }, /^请求参数错误: model 不能为空/],
      [{ topic_name: 'x', channel_id: 0 }, /^请求参数错误: channel_id 不能小于 1/],
      [{ topic_name: 'x', channel_id: 'one' }, /^请求参数错误: channel_id 类型应为 integer/],
    ] as const) {
      it(`when the body is ${JSON.stringify(body).slice(0, 60)}, then 400 ${pattern.source.slice(1, 40)}`, async () => {
        const me = await newSession(api);
        const res = await api.post(`${API}/topics`).set(authHeaders(me)).send(body).expect(400);
        expect(bodyOf<OneApiError>(res).message).to.match(pattern);
        expect(await topicsOf(me)).to.deep.equal([]);
      });
    }

    it('when the name is exactly 100 characters, then it is accepted', async () => {
      const me = await newSession(api);
      expect((await createTopic(me, { topic_name: '长'.repeat(100) })).topic_name).to.have.length(100);
    });

    it('when not authenticated, then 401', async () => {
      const res = await api.post(`${API}/topics`).send({ topic_name: 'x' }).expect(401);
      expect(bodyOf<OneApiError>(res).message).to.equal(MESSAGES.noToken);
    });

    it('when the caller is banned, then 403 用户已被封禁', async () => {
      const me = await newSession(api);
      await ban(me);
      const res = await api.post(`${API}/topics`).set(authHeaders(me)).send({ topic_name: 'x' }).expect(403);
      expect(bodyOf<OneApiError>(res).message).to.equal(MESSAGES.banned);
    });
  });

  describe('deleteTopic — DELETE /topics/{id}', () => {
    it('when the caller deletes a topic, then 话题已删除, it is kept as deleted, and it is 404 everywhere from then on', async () => {
      const me = await newSession(api);
      const topic = await createTopic(me);
      await send(me, topic.id, 'before').expect(200);
      const res = await api.delete(`${API}/topics/${topic.id}`).set(authHeaders(me)).expect(200);
      expect(res.body).to.deep.equal({ success: true, message: TOPIC_MESSAGES.deleted });

      const row = (await server.db('oneapi_topics').where({ id: topic.id }).first())!;
      expect(row.deleted_at).to.be.a('number');
      expect(await messageRows(topic.id)).to.have.length(2);
      const notFound = { success: false, message: TOPIC_MESSAGES.notFound };
      expect((await api.delete(`${API}/topics/${topic.id}`).set(authHeaders(me)).expect(404)).body).to.deep.equal(
        notFound,
      );
      expect((await api.get(`${API}/topics/${topic.id}/messages`).set(authHeaders(me)).expect(404)).body).to.deep.equal(
        notFound,
      );
      expect((await send(me, topic.id, 'after').expect(404)).body).to.deep.equal(notFound);
      expect(bodyOf<TopicList>(await api.get(`${API}/topics`).set(authHeaders(me)).expect(200)).data.total).to.equal(0);
      expect(await messageRows(topic.id)).to.have.length(2);
    });

    it("when the topic is another user's, then 403 无权限操作此话题 and it is left alone", async () => {
      const owner = await newSession(api);
      const intruder = await newSession(api);
      const topic = await createTopic(owner);
      const res = await api.delete(`${API}/topics/${topic.id}`).set(authHeaders(intruder)).expect(403);
      expect(res.body).to.deep.equal({ success: false, message: TOPIC_MESSAGES.forbidden });
      expect((await topicsOf(owner)).map((t) => t.id)).to.deep.equal([topic.id]);
    });

    it('when no topic has the id, then 404 话题不存在', async () => {
      const me = await newSession(api);
      const res = await api.delete(`${API}/topics/2147483647`).set(authHeaders(me)).expect(404);
      expect(bodyOf<OneApiError>(res).message).to.equal(TOPIC_MESSAGES.notFound);
    });

    for (const id of ['0', 'abc', '2147483648', '-1']) {
      it(`when the id is "${id}", then 400 请求参数错误`, async () => {
        const me = await newSession(api);
        const res = await api.delete(`${API}/topics/${id}`).set(authHeaders(me)).expect(400);
        expect(bodyOf<OneApiError>(res).message).to.match(/^请求参数错误: id /);
      });
    }

    it('when not authenticated, then 401; when banned, then 403', async () => {
      const me = await newSession(api);
      const topic = await createTopic(me);
      await api.delete(`${API}/topics/${topic.id}`).expect(401);
      await ban(me);
      const res = await api.delete(`${API}/topics/${topic.id}`).set(authHeaders(me)).expect(403);
      expect(bodyOf<OneApiError>(res).message).to.equal(MESSAGES.banned);
    });
  });

  describe('listTopicMessages — GET /topics/{id}/messages', () => {
    it('when a topic has 22 messages, then they come oldest first, 20 by default, then the rest, then an empty page', async () => {
      const me = await newSession(api);
      const topic = await createTopic(me, { channel_id: OFFLINE_CHANNEL });
      for (let i = 1; i <= 11; i++) await send(me, topic.id, `消息 ${i}`).expect(200);
      const rows = await messageRows(topic.id);
      const get = async (query: Record<string, number> = {}) =>
        bodyOf<MessageList>(
          await api.get(`${API}/topics/${topic.id}/messages`).query(query).set(authHeaders(me)).expect(200),
        ).data;

      const p1 = await get();
      expect(p1).to.include({ total: 22, page: 1, size: 20 });
      expect(p1.messages.map((m: { id: number }) => m.id)).to.deep.equal(rows.slice(0, 20).map((r) => r.id));
      expect(p1.messages[0]).to.deep.include({ role: 'user', content: '消息 1' });
      expect(p1.messages[1]).to.deep.include({ role: 'assistant', content: `"${topic.topic_name}": 消息 1` });
      for (const m of p1.messages) expect(m.created_at).to.match(ISO_UTC);
      const p2 = await get({ page: 2 });
      expect(p2.messages.map((m: { id: number }) => m.id)).to.deep.equal(rows.slice(20).map((r) => r.id));
      expect(await get({ page: 3 })).to.deep.equal({ messages: [], total: 22, page: 3, size: 20 });
      expect((await get({ size: 5, page: 5 })).messages.map((m: { id: number }) => m.id)).to.deep.equal(
        rows.slice(20).map((r) => r.id),
      );
      expect(await get({ page_size: 7 })).to.include({ size: 7 });
      expect((await get({ size: 100 })).messages).to.have.length(22);
    });

    it('when the topic has no messages, then an empty list', async () => {
      const me = await newSession(api);
      const topic = await createTopic(me);
      const res = await api.get(`${API}/topics/${topic.id}/messages`).set(authHeaders(me)).expect(200);
      expect(bodyOf<MessageList>(res).data).to.deep.equal({ messages: [], total: 0, page: 1, size: 20 });
    });

    it("when the topic is another user's, then 403; when missing, then 404", async () => {
      const owner = await newSession(api);
      const intruder = await newSession(api);
      const topic = await createTopic(owner);
      expect(
        bodyOf<OneApiError>(await api.get(`${API}/topics/${topic.id}/messages`).set(authHeaders(intruder)).expect(403))
          .message,
      ).to.equal(TOPIC_MESSAGES.forbidden);
      expect(
        bodyOf<OneApiError>(await api.get(`${API}/topics/2147483646/messages`).set(authHeaders(intruder)).expect(404))
          .message,
      ).to.equal(TOPIC_MESSAGES.notFound);
    });

    it('when the id or size is invalid, then 400 请求参数错误', async () => {
      const me = await newSession(api);
      const topic = await createTopic(me);
      await api.get(`${API}/topics/abc/messages`).set(authHeaders(me)).expect(400);
      const res = await api
        .get(`${API}/topics/${topic.id}/messages`)
        .query({ size: 101 })
        .set(authHeaders(me))
        .expect(400);
      expect(bodyOf<OneApiError>(res).message).to.equal('请求参数错误: size 不能大于 100');
    });

    it('when not authenticated, then 401; when banned, then 403', async () => {
      const me = await newSession(api);
      const topic = await createTopic(me);
      await api.get(`${API}/topics/${topic.id}/messages`).expect(401);
      await ban(me);
      await api.get(`${API}/topics/${topic.id}/messages`).set(authHeaders(me)).expect(403);
    });
  });

  describe('sendTopicMessage — POST /topics/{id}/messages', () => {
    it('when sent on the built-in channel 1, then the reply reads "<topic_name>": <text>, and both messages are stored', async () => {
      const me = await newSession(api);
      const topic = await createTopic(me, { topic_name: '测试话题' });
      const res = bodyOf<Sent>(await send(me, topic.id, '你好，这是一个测试消息').expect(200));
      expect(res.message).to.equal(TOPIC_MESSAGES.sent);
      const { user_message, ai_message } = res.data;
      expect(user_message).to.include({ role: 'user', content: '你好，这是一个测试消息' });
      expect(ai_message).to.include({ role: 'assistant', content: '"测试话题": 你好，这是一个测试消息' });
      expect(ai_message.id).to.be.greaterThan(user_message.id);
      expect(Date.parse(ai_message.created_at)).to.be.at.least(Date.parse(user_message.created_at));
      expect(await messagesOf(me, topic.id)).to.deep.equal([user_message, ai_message]);
    });

    it('when the body names a role, then it is ignored and the message is stored as user', async () => {
      const me = await newSession(api);
      const topic = await createTopic(me);
      const res = await api
        .post(`${API}/topics/${topic.id}/messages`)
        .set(authHeaders(me))
        .send({ content: 'hi', role: 'assistant' })
        .expect(200);
      expect(bodyOf<Sent>(res).data.user_message.role).to.equal('user');
      expect((await messagesOf(me, topic.id)).map((r) => r.role)).to.deep.equal(['user', 'assistant']);
    });

    it('when the content is 8000 characters, then it is accepted whole', async () => {
      const me = await newSession(api);
      const topic = await createTopic(me);
      const content = '字'.repeat(8000);
      const res = await send(me, topic.id, content).expect(200);
      expect(bodyOf<Sent>(res).data.user_message.content).to.equal(content);
    });

    for (const [body, pattern] of [
      [{ content: '' }, /^请求参数错误: content 不能为空/],
      [{ content: 'x'.repeat(8001) }, /^请求参数错误: content 长度不能超过 8000/],
      [{}, /^请求参数错误: 缺少字段 content/],
      [{ content: 42 }, /^请求参数错误: content 类型应为 string/],
    ] as const) {
      it(`when the body is ${JSON.stringify(body).slice(0, 40)}, then 400 and nothing is stored`, async () => {
        const me = await newSession(api);
        const topic = await createTopic(me);
        const res = await api.post(`${API}/topics/${topic.id}/messages`).set(authHeaders(me)).send(body).expect(400);
        expect(bodyOf<OneApiError>(res).message).to.match(pattern);
        expect(await messagesOf(me, topic.id)).to.deep.equal([]);
      });
    }

    it("when the topic is on an OpenAI-compatible channel, then the upstream gets the topic's model, the key, and the recent history in order, and its text is the reply", async () => {
      const me = await newSession(api);
      const topic = await createTopic(me, { channel_id: FAKE_CHANNEL, model: 'fake-chat-2' });
      const sent: string[] = [];
      const replies: string[] = [];
      for (let i = 1; i <= 4; i++) {
        const chunks = [`回复`, ` ${i}`, `!`];
        fake.replyOnce({ kind: 'stream', chunks });
        const received = fake.nextRequest();
        sent.push(`问题 ${i}`);
        const res = await send(me, topic.id, `问题 ${i}`).expect(200);
        replies.push(chunks.join(''));
        expect(bodyOf<Sent>(res).data.ai_message.content).to.equal(chunks.join(''));
        const req = await received;
        expect(req.model).to.equal('fake-chat-2');
        expect(req.authorization).to.equal(`Bearer ${KEY}`);
        // Up to HISTORY earlier messages, oldest first, then the new one.
        const history = sent.slice(0, -1).flatMap((q, j) => [
          { role: 'user', content: q },
          { role: 'assistant', content: replies[j] },
        ]);
        expect(req.messages).to.deep.equal([...history.slice(-HISTORY), { role: 'user', content: `问题 ${i}` }]);
      }
      expect((await messagesOf(me, topic.id)).map((r) => r.content)).to.deep.equal(
        sent.flatMap((q, j) => [q, replies[j]]),
      );
    });

    const failures: [string, FakeReply, string][] = [
      ['answers HTTP 500', { kind: 'error', status: 500 }, TOPIC_MESSAGES.replyFailed],
      ['answers HTTP 429', { kind: 'error', status: 429 }, TOPIC_MESSAGES.replyFailed],
      ['breaks off midway', { kind: 'break', chunks: ['半', '截'] }, TOPIC_MESSAGES.replyFailed],
      [
        'reports an error midway',
        { kind: 'streamError', chunks: ['半'], message: 'overloaded' },
        TOPIC_MESSAGES.replyFailed,
      ],
      ['stalls past the timeout midway', { kind: 'stall', chunks: ['半'] }, TOPIC_MESSAGES.replyTimedOut],
      ['does not answer within the timeout', { kind: 'stall', headersAfterMs: Infinity }, TOPIC_MESSAGES.replyTimedOut],
    ];
    for (const [what, reply, message] of failures) {
      it(`when the channel ${what}, then 502 ${message} and neither message is stored`, async () => {
        const me = await newSession(api);
        const topic = await createTopic(me, { channel_id: FAKE_CHANNEL });
        fake.replyOnce({ kind: 'stream', chunks: ['earlier reply'] });
        await send(me, topic.id, 'earlier').expect(200);
        const before = await messagesOf(me, topic.id);
        fake.replyOnce(reply);
        const res = await send(me, topic.id, 'this one fails').expect(502);
        expect(res.body).to.deep.equal({ success: false, message });
        expect(await messagesOf(me, topic.id)).to.deep.equal(before);
      });
    }

    it('when the channel has no valid key, then 502 and nothing is stored', async () => {
      const me = await newSession(api);
      const topic = await createTopic(me, { channel_id: FAKE_CHANNEL });
      fake.replyOnce({ kind: 'error', status: 401, message: 'Incorrect API key provided' });
      await send(me, topic.id, 'x').expect(502);
      expect(await messagesOf(me, topic.id)).to.deep.equal([]);
    });

    it('when the client gives up while the channel is still answering, then the upstream request is closed and nothing is stored', async () => {
      const me = await newSession(api);
      const topic = await createTopic(me, { channel_id: FAKE_CHANNEL });
      fake.replyOnce({ kind: 'stream', chunks: ['a', 'b', 'c', 'd', 'e', 'f'], delayMs: 100 });
      const abandoned = fake.abandoned;
      let gaveUp = false;
      try {
        await send(me, topic.id, 'never mind').timeout(150);
      } catch (err) {
        gaveUp = (err as { timeout?: number }).timeout === 150;
      }
      expect(gaveUp).to.equal(true);
      await fake.untilAbandoned(abandoned);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await messagesOf(me, topic.id)).to.deep.equal([]);
    });

    it('when the topic is deleted while its reply is being produced, then 404 话题不存在 and nothing is stored', async () => {
      const me = await newSession(api);
      const topic = await createTopic(me, { channel_id: FAKE_CHANNEL });
      fake.replyOnce({ kind: 'stream', chunks: ['慢', '慢', '的', '回复'], delayMs: 100 });
      const received = fake.nextRequest();
      // then() sends the request now; the delete goes out while the channel is still answering.
      const sending = send(me, topic.id, 'are you still there?').then((res) => res);
      await received;
      await api.delete(`${API}/topics/${topic.id}`).set(authHeaders(me)).expect(200);
      const res = await sending;
      expect(res.status).to.equal(404);
      expect(res.body).to.deep.equal({ success: false, message: TOPIC_MESSAGES.notFound });
      expect(await messageRows(topic.id)).to.deep.equal([]);
    });

    it('when the history size is 0 or 1, then the channel gets only the new message, or the last one before it too', async () => {
      const me = await newSession(api);
      const topic = await createTopic(me);
      await send(me, topic.id, 'first').expect(200);
      await send(me, topic.id, 'second').expect(200);
      const topics = new Topics(new TopicStore(server.db));
      const conversations: ChatMessage[][] = [];
      for (const historySize of [0, 1]) {
        await topics.exchange(topic.id, `with ${historySize}`, historySize, (conversation) => {
          conversations.push(conversation);
          return Promise.resolve('ok');
        });
      }
      expect(conversations).to.deep.equal([
        [{ role: 'user', content: 'with 0' }],
        [
          { role: 'assistant', content: 'ok' },
          { role: 'user', content: 'with 1' },
        ],
      ]);
    });

    it("when the topic's channel has left the configuration, then 400 渠道不存在 and nothing is stored", async () => {
      const me = await newSession(api);
      const topic = await createTopic(me);
      await server.db('oneapi_topics').where({ id: topic.id }).update({ channel_id: 77 });
      const res = await send(me, topic.id, 'x').expect(400);
      expect(res.body).to.deep.equal({ success: false, message: TOPIC_MESSAGES.unknownChannel });
      expect(await messagesOf(me, topic.id)).to.deep.equal([]);
    });

    it("when the topic's model is no longer served by its channel, then 400 该渠道不支持模型 <model> and nothing is stored", async () => {
      const me = await newSession(api);
      const topic = await createTopic(me, { channel_id: FAKE_CHANNEL });
      await server.db('oneapi_topics').where({ id: topic.id }).update({ model: 'retired-model' });
      const requests = fake.requests.length;
      const res = await send(me, topic.id, 'x').expect(400);
      expect(bodyOf<OneApiError>(res).message).to.equal('该渠道不支持模型 retired-model');
      expect(fake.requests.length).to.equal(requests);
      expect(await messagesOf(me, topic.id)).to.deep.equal([]);
    });

    it("when the topic is another user's, then 403 and nothing is stored; when missing, then 404", async () => {
      const owner = await newSession(api);
      const intruder = await newSession(api);
      const topic = await createTopic(owner);
      expect(bodyOf<OneApiError>(await send(intruder, topic.id, 'x').expect(403)).message).to.equal(
        TOPIC_MESSAGES.forbidden,
      );
      expect(await messagesOf(owner, topic.id)).to.deep.equal([]);
      expect(bodyOf<OneApiError>(await send(intruder, 2147483645, 'x').expect(404)).message).to.equal(
        TOPIC_MESSAGES.notFound,
      );
    });

    it('when the id is invalid, then 400', async () => {
      const me = await newSession(api);
      const res = await api.post(`${API}/topics/0/messages`).set(authHeaders(me)).send({ content: 'x' }).expect(400);
      expect(bodyOf<OneApiError>(res).message).to.match(/^请求参数错误: id /);
    });

    it('when not authenticated, then 401; when banned, then 403', async () => {
      const me = await newSession(api);
      const topic = await createTopic(me);
      await api.post(`${API}/topics/${topic.id}/messages`).send({ content: 'x' }).expect(401);
      await ban(me);
      expect(bodyOf<OneApiError>(await send(me, topic.id, 'x').expect(403)).message).to.equal(MESSAGES.banned);
      expect(await messageRows(topic.id)).to.deep.equal([]);
    });
  });
});

describe('One-API channel settings', () => {
  const base = {
    id: 2,
    kind: 'openai-compatible',
    base_url: 'https://llm.example.com/v1',
    api_key: 'sk-settings-secret',
    models: ['m'],
  };

  it('when ONEAPI_CHANNELS is unset, then only channel 1 exists: built-in, serving gpt-3.5-turbo (the default) and echo', () => {
    const { oneapiChannels, oneapiTopicHistory, llmEchoDelayMs } = loadConfig({});
    expect(oneapiChannels).to.deep.equal([
      { id: 1, name: '内置离线渠道', kind: 'builtin', models: ['gpt-3.5-turbo', 'echo'], timeout_ms: 60000 },
    ]);
    expect(oneapiTopicHistory).to.equal(20);
    expect(llmEchoDelayMs).to.equal(20);
  });

  it('when channels are configured, then channel 1 is kept and the others get their defaults', () => {
    const channels = parseChannels(JSON.stringify([{ ...base, base_url: 'https://llm.example.com/v1/' }]));
    expect(channels.map((c) => c.id)).to.deep.equal([1, 2]);
    expect(channels[1]).to.deep.equal({
      id: 2,
      name: 'channel 2',
      kind: 'openai-compatible',
      base_url: 'https://llm.example.com/v1',
      api_key: 'sk-settings-secret',
      models: ['m'],
      timeout_ms: 60000,
    });
  });

  it('when channel 1 is redefined as built-in, then its name and models are the configured ones', () => {
    const [one] = parseChannels(JSON.stringify([{ id: 1, name: 'offline', kind: 'builtin', models: ['gpt-4o-mini'] }]));
    expect(one).to.include({ id: 1, name: 'offline', kind: 'builtin' });
    expect(one.models).to.deep.equal(['gpt-4o-mini']);
  });

  const invalid: [string, unknown, RegExp][] = [
    ['not JSON', '[{', /not valid JSON/],
    ['not an array', { id: 2 }, /JSON array/],
    ['an entry that is not an object', [1], /channel #1: expected an object/],
    ['an id out of range', [{ ...base, id: 0 }], /id must be an integer/],
    ['an unknown kind', [{ ...base, kind: 'azure' }], /kind must be/],
    ['an unknown field', [{ ...base, baseUrl: 'x' }], /unknown field\(s\) baseUrl/],
    ['no models', [{ ...base, models: [] }], /models must be a non-empty array/],
    ['a repeated model', [{ ...base, models: ['m', 'm'] }], /must not repeat/],
    ['a model name too long', [{ ...base, models: ['m'.repeat(101)] }], /each model/],
    ['no base_url', [{ ...base, base_url: undefined }], /base_url must be an http or https URL/],
    ['a base_url that is not http', [{ ...base, base_url: 'ftp://x/v1' }], /base_url must be an http or https URL/],
    ['a timeout out of range', [{ ...base, timeout_ms: 0 }], /timeout_ms/],
    ['a repeated id', [base, { ...base, api_key: undefined }], /appears more than once/],
    ['channel 1 as openai-compatible', [{ ...base, id: 1 }], /channel 1 is the built-in/],
    [
      'a built-in channel with a key',
      [{ id: 3, kind: 'builtin', models: ['m'], api_key: 'sk-settings-secret' }],
      /api_key is only for/,
    ],
    ['an empty key', [{ ...base, api_key: ' ' }], /api_key must be a non-empty string/],
  ];
  for (const [what, value, message] of invalid) {
    it(`when ONEAPI_CHANNELS has ${what}, then loading the settings fails naming ONEAPI_CHANNELS, without the key`, () => {
      const raw = typeof value === 'string' ? value : JSON.stringify(value);
      let error: unknown;
      try {
        loadConfig({ ONEAPI_CHANNELS: raw });
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(ConfigError);
      expect((error as ConfigError).variable).to.equal('ONEAPI_CHANNELS');
      expect((error as Error).message).to.match(message);
      expect((error as Error).message).to.not.include('sk-settings-secret');
    });
  }

  for (const [variable, value] of [
    ['ONEAPI_TOPIC_HISTORY', '-1'],
    ['ONEAPI_TOPIC_HISTORY', '201'],
    ['LLM_ECHO_DELAY_MS', 'fast'],
  ] as const) {
    it(`when ${variable} is "${value}", then loading the settings fails naming it`, () => {
      expect(() => loadConfig({ [variable]: value })).to.throw(ConfigError, variable);
    });
  }

  it('when the channels are described for the start-up log, then no key, credentials or path appear', () => {
    const channels = new Channels(
      parseChannels(JSON.stringify([{ ...base, base_url: 'https://user:pass@llm.example.com/v1' }])),
      { echoDelayMs: 0 },
    );
    const described = JSON.stringify(channels.describe());
    expect(described).to.not.include('sk-settings-secret');
    expect(described).to.not.include('pass');
    expect(channels.describe()[1]).to.deep.equal({
      id: 2,
      name: 'channel 2',
      kind: 'openai-compatible',
      host: 'llm.example.com',
      keyed: true,
      models: ['m'],
    });
  });
});
