// The typed SDK (sdk/) driven through whole user journeys against the live server, the way a
// client team would use it. The clients' fetch is checkedFetch: every response still goes through
// the contract check.
import crypto from 'node:crypto';
import { expect } from 'chai';
import sharp from 'sharp';
import { createAideerClient, createOneApiClient, readEventStream, type TaskEvent } from '../sdk/index.ts';
import { checkedFetch, client, type Client } from './helpers/http.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { giveCredits, signUpAdmin, uniqueName } from './helpers/aideer.ts';
import { newSession, uniquePhone } from './helpers/oneapi.ts';

describe('SDK', () => {
  let server: TestServer;
  // Plain HTTP, for the data a test needs before it turns to the SDK.
  let rest: Client;

  before(async () => {
    // Slow enough that a task streams several events, and a reader can leave while it runs.
    server = await startServer({ LLM_ECHO_DELAY_MS: '200' });
    rest = client(server.url);
  });
  after(() => server.close());

  const aideerClient = (token?: string) => createAideerClient({ baseUrl: server.url, token, fetch: checkedFetch });
  const oneApiClient = (session: { token?: string; userId?: number } = {}) =>
    createOneApiClient({ baseUrl: server.url, ...session, fetch: checkedFetch });

  describe('One-API client', () => {
    it('when a user goes from verification to logout, then each step answers as documented and the old token is refused after', async () => {
      const api = oneApiClient();
      const phone = uniquePhone();
      const registerCode = await api.GET('/phone_verification', { params: { query: { phone, purpose: 'register' } } });
      expect(registerCode.data).to.deep.equal({ success: true, message: '验证码已发送', data: '1111' });
      const registered = await api.POST('/user/register', {
        body: { phone, phone_verification_code: registerCode.data!.data!, display_name: '旅行者' },
      });
      expect(registered.data).to.deep.equal({ success: true, message: '注册成功' });
      const loginCode = await api.GET('/phone_verification', { params: { query: { phone, purpose: 'login' } } });
      const login = await api.logIn({ phone, phone_verification_code: loginCode.data!.data! });
      expect(login.data?.message).to.equal('登录成功');
      const user = login.data!.data;
      expect(api.session).to.deep.equal({ token: user.access_token, userId: user.id });
      const self = await api.GET('/user/self');
      expect(self.data?.data).to.include({
        id: user.id,
        phone,
        display_name: '旅行者',
        access_token: user.access_token,
      });

      const topicName = `杭州 ${crypto.randomBytes(3).toString('hex')}`;
      const topic = await api.POST('/topics', { body: { topic_name: topicName } });
      expect(topic.data?.data).to.include({ topic_name: topicName, channel_id: 1 });
      const topicId = topic.data!.data.id;
      const sent = await api.POST('/topics/{id}/messages', {
        params: { path: { id: topicId } },
        body: { content: '三天怎么玩？' },
      });
      expect(sent.data?.message).to.equal('消息发送成功');
      expect(sent.data?.data.user_message).to.include({ role: 'user', content: '三天怎么玩？' });
      expect(sent.data?.data.ai_message).to.include({ role: 'assistant', content: `"${topicName}": 三天怎么玩？` });
      const history = await api.GET('/topics/{id}/messages', { params: { path: { id: topicId } } });
      expect(history.data?.data.messages).to.deep.equal([sent.data!.data.user_message, sent.data!.data.ai_message]);

      // Articles come from feeds or from admins: this user becomes one and writes the article.
      await server.db('oneapi_users').where({ id: user.id }).update({ role: 10 });
      const word = `sdk${crypto.randomBytes(4).toString('hex')}`;
      const article = await api.POST('/articles', {
        body: {
          title: `Notes on ${word}`,
          content: 'Tea fields, then the lake.',
          author: 'SDK',
          article_url: `https://news.example.com/${word}`,
          published_at: '2024-05-09T10:20:00.000Z',
        },
      });
      expect(article.data?.data).to.include({ title: `Notes on ${word}`, published_at: '2024-05-09T10:20:00.000Z' });
      const subscription = await api.POST('/subscriptions', {
        body: { topic_name: word, topic_description: 'SDK journey' },
      });
      expect(subscription.data?.message).to.equal('订阅创建成功');
      expect(subscription.data?.data).to.include({ topic_name: word, status: 1 });
      const articles = await api.GET('/subscriptions/{id}/articles', {
        params: { path: { id: subscription.data!.data.id }, query: { page: 1, size: 5 } },
      });
      expect(articles.data?.data).to.deep.equal({ articles: [article.data!.data], total: 1, page: 1, size: 5 });

      const loggedOut = await api.logOut();
      expect(loggedOut.data).to.deep.equal({ success: true, message: '登出成功' });
      expect(api.session).to.deep.equal({ token: undefined, userId: undefined });
      const stale = await oneApiClient({ token: user.access_token, userId: user.id }).GET('/user/self');
      expect(stale.response.status).to.equal(401);
      expect(stale.error).to.deep.equal({ success: false, message: '无权进行此操作，access token 无效' });
    });

    it("when a call sets its own Authorization and UserID, then they are sent instead of the session's, and a header left out still comes from the session", async () => {
      const alice = await newSession(rest);
      const bob = await newSession(rest);
      const api = oneApiClient({ token: alice.token, userId: alice.id });
      const asBob = await api.GET('/user/self', { headers: { Authorization: bob.token, UserID: String(bob.id) } });
      expect(asBob.data?.data).to.include({ id: bob.id, phone: bob.phone });
      // Bob's token with the session's UserID (Alice's): the server sees the mismatch.
      const mixed = await api.GET('/user/self', { headers: { Authorization: bob.token } });
      expect(mixed.response.status).to.equal(401);
      expect(mixed.error).to.deep.equal({ success: false, message: '无权进行此操作，与登录用户不匹配' });
      expect((await api.GET('/user/self')).data?.data.id).to.equal(alice.id);
    });

    it('when setSession is given a token and a user id, then later calls send both, and an empty session sends neither', async () => {
      const user = await newSession(rest);
      const api = oneApiClient();
      api.setSession({ token: user.token, userId: user.id });
      expect(api.session).to.deep.equal({ token: user.token, userId: user.id });
      expect((await api.GET('/user/self')).data?.data).to.include({ id: user.id, phone: user.phone });
      api.setSession({});
      expect(api.session).to.deep.equal({ token: undefined, userId: undefined });
      const anonymous = await api.GET('/user/self');
      expect(anonymous.response.status).to.equal(401);
      expect(anonymous.error).to.deep.equal({ success: false, message: '无权进行此操作，未提供 access token' });
    });

    it('when the base URL ends in slashes, then calls still reach /api', async () => {
      const api = createOneApiClient({ baseUrl: `${server.url}//`, fetch: checkedFetch });
      const code = await api.GET('/phone_verification', {
        params: { query: { phone: uniquePhone(), purpose: 'register' } },
      });
      expect(new URL(code.response.url).pathname).to.equal('/api/phone_verification');
      expect(code.data).to.deep.equal({ success: true, message: '验证码已发送', data: '1111' });
    });

    it('when the log-in code is wrong, then the error envelope comes back and no session is kept', async () => {
      const api = oneApiClient();
      const phone = uniquePhone();
      const code = await api.GET('/phone_verification', { params: { query: { phone, purpose: 'register' } } });
      await api.POST('/user/register', { body: { phone, phone_verification_code: code.data!.data! } });
      await api.GET('/phone_verification', { params: { query: { phone, purpose: 'login' } } });
      const login = await api.logIn({ phone, phone_verification_code: '0000' });
      expect(login.response.status).to.equal(400);
      expect(login.error).to.deep.equal({ success: false, message: '手机验证码错误或已过期' });
      expect(api.session).to.deep.equal({ token: undefined, userId: undefined });
      const self = await api.GET('/user/self');
      expect(self.error).to.deep.equal({ success: false, message: '无权进行此操作，未提供 access token' });
    });
  });

  describe('AIDeer client', () => {
    async function signedUp(nickname?: string) {
      const api = aideerClient();
      const username = uniqueName('sdk');
      const password = 'pass-word-1';
      const created = await api.POST('/users', { body: { username, password, ...(nickname ? { nickname } : {}) } });
      expect(created.data).to.include({ username, permission: 1, credits_left: 0 });
      const login = await api.logIn(username, password);
      expect(login.data?.token_type).to.equal('bearer');
      return { api, username, password, id: created.data!.id, token: login.data!.access_token };
    }

    /** A chat whose next task echoes `question` back, in several streamed pieces. */
    async function chatAbout(api: ReturnType<typeof aideerClient>, question: string) {
      const preset = await api.POST('/presets', {
        body: { title: 'Trip planner', messages: [{ role: 'system', type: 'text', content: 'You plan trips.' }] },
      });
      expect(preset.data?.parameters.model).to.equal('deepseek-chat');
      const chat = await api.POST('/chats', {
        body: {
          preset_id: preset.data!.id,
          title: 'Hangzhou',
          messages: [{ role: 'user', type: 'text', content: question }],
        },
      });
      expect(chat.data?.messages.map((m) => m.content)).to.deep.equal([question]);
      return chat.data!.id;
    }

    it('when a user goes from sign-up to credits, then the task streams to its end, the answer is saved and charged once', async () => {
      const { api, id, token, username } = await signedUp('Deer');
      expect(api.token).to.equal(token);
      const me = await api.GET('/users/me');
      expect(me.data).to.include({ id, username, nickname: 'Deer' });

      const code = uniqueName('SDK').toUpperCase();
      const made = await aideerClient((await signUpAdmin(rest, server)).token).POST('/codes', {
        body: { redeem_code: code, value: 500 },
      });
      expect(made.data).to.deep.equal({ redeem_code: code, value: 500 });
      const redeemed = await api.POST('/users/me/credits', { body: { redeem_code: code.toLowerCase() } });
      expect(redeemed.data).to.deep.equal({ message: 'Redeem 500 credits successfully' });

      const question = 'Plan three days in Hangzhou: tea fields, the West Lake, and a boat at dusk';
      const chatId = await chatAbout(api, question);
      const task = await api.POST('/tasks', { body: { chat_id: chatId, type: 'chat_generation' } });
      expect(task.data?.status).to.equal('pending');
      const taskId = task.data!.task_id;

      const stream = await api.streamTask(taskId);
      expect(stream.response.headers.get('content-type')).to.match(/^text\/event-stream/);
      const events: TaskEvent[] = [];
      for await (const event of stream.data!) events.push(event);
      expect(events.at(-1)).to.include({ status: 'finished', content: question });
      const running = events.slice(0, -1);
      expect(running.length).to.be.greaterThan(1);
      for (const [i, event] of running.entries()) {
        expect(event.status).to.equal('running');
        expect((events[i + 1].content ?? '').startsWith(event.content ?? '')).to.equal(true);
      }

      expect((await api.GET('/tasks/{task_id}', { params: { path: { task_id: taskId } } })).data).to.deep.equal({
        task_id: taskId,
        status: 'finished',
      });
      const chat = await api.GET('/chats/{chat_id}', { params: { path: { chat_id: chatId } } });
      expect(chat.data?.messages.map((m) => [m.role, m.content])).to.deep.equal([
        ['user', question],
        ['assistant', question],
      ]);
      const credits = await api.GET('/users/me/credits');
      const records = credits.data!.credit_records.map((r) => [r.amount, r.description]);
      expect(records).to.have.length(2);
      expect(records[0]).to.deep.equal([500, `Add: Redeem credit, code: ${code}`]);
      const [cost, description] = records[1] as [number, string];
      expect(cost).to.be.lessThan(0);
      expect(description).to.equal(`Consume: Chat generation, chat_id: ${chatId}, task_id: ${taskId}`);
      expect(credits.data!.credits_left).to.equal(500 + cost);
    });

    it('when the password is wrong, then logIn returns the 401 detail and keeps no token', async () => {
      const { username } = await signedUp();
      const api = aideerClient();
      const login = await api.logIn(username, 'not-the-password');
      expect(login.response.status).to.equal(401);
      expect(login.error).to.deep.equal({ detail: 'Incorrect username or password' });
      expect(api.token).to.equal(undefined);
      const me = await api.GET('/users/me');
      expect(me.response.status).to.equal(401);
      expect(me.response.headers.get('www-authenticate')).to.equal('Bearer');
    });

    it('when setToken is given a token, then later calls send it, and undefined sends none', async () => {
      const { id, token } = await signedUp();
      const api = aideerClient();
      api.setToken(token);
      expect(api.token).to.equal(token);
      expect((await api.GET('/users/me')).data?.id).to.equal(id);
      api.setToken(undefined);
      expect(api.token).to.equal(undefined);
      const anonymous = await api.GET('/users/me');
      expect(anonymous.response.status).to.equal(401);
      expect(anonymous.error).to.deep.equal({ detail: 'Not authenticated' });
    });

    it('when the base URL ends in slashes, then calls still reach /api/v1', async () => {
      const { id, token } = await signedUp();
      const api = createAideerClient({ baseUrl: `${server.url}//`, token, fetch: checkedFetch });
      const me = await api.GET('/users/me');
      expect(new URL(me.response.url).pathname).to.equal('/api/v1/users/me');
      expect(me.data?.id).to.equal(id);
    });

    it("when a call sets its own Authorization, then it is sent instead of the client's token", async () => {
      const alice = await signedUp();
      const bob = await signedUp();
      const asBob = await alice.api.GET('/users/me', { headers: { Authorization: `Bearer ${bob.token}` } });
      expect(asBob.data?.id).to.equal(bob.id);
      expect((await alice.api.GET('/users/me')).data?.id).to.equal(alice.id);
    });

    it("when an image is uploaded with uploadAvatar, then it becomes the user's avatar", async () => {
      const { api } = await signedUp();
      const png = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 200, g: 80, b: 20 } } })
        .png()
        .toBuffer();
      const uploaded = await api.uploadAvatar(new Blob([png], { type: 'image/png' }), 'deer.png');
      expect(uploaded.data).to.deep.equal({ message: 'Avatar updated successfully' });
      expect((await api.GET('/users/me')).data?.avatar).to.match(/^\/static\/avatars\/[0-9a-f]{64}\.webp$/);

      const notImage = await api.uploadAvatar(new Blob(['not an image'], { type: 'image/png' }), 'deer.png');
      expect(notImage.response.status).to.equal(422);
      expect(notImage.error).to.deep.equal({ detail: 'Invalid image file' });
    });

    it("when a reader leaves a task's stream early, then the connection closes and another reader follows the task while it runs", async () => {
      const { api, id } = await signedUp();
      await giveCredits(server, id, 1000);
      const question = 'One, two, three, four, five, six, seven, eight, nine, ten';
      const task = await api.POST('/tasks', {
        body: { chat_id: await chatAbout(api, question), type: 'chat_generation' },
      });
      const taskId = task.data!.task_id;

      const first = await api.streamTask(taskId);
      let seen: TaskEvent | undefined;
      for await (const event of first.data!) {
        expect(event.status).to.equal('running');
        seen = event;
        break;
      }
      // The next reader resumes after it (as the same client coming back would): it takes over at once.
      const second = await api.streamTask(taskId, { lastEventId: seen!.id });
      expect(second.error, JSON.stringify(second.error)).to.equal(undefined);
      const events: TaskEvent[] = [];
      for await (const event of second.data!) events.push(event);
      expect(events[0]).to.include({ status: 'running', id: String(Number(seen!.id) + 1) });
      expect(events.at(-1)).to.include({ status: 'finished', content: question });
    });

    it('when the connection drops mid-stream, then streamTask resumes by itself with Last-Event-ID and yields every event once', async () => {
      const lastEventIds: (string | null)[] = [];
      let drop = true;
      // The first stream's body breaks right after the event with id 2, as a reset connection does.
      const droppingFetch = async (request: Request): Promise<Response> => {
        const isStream = new URL(request.url).pathname.endsWith('/stream');
        if (isStream) lastEventIds.push(request.headers.get('last-event-id'));
        const res = await checkedFetch(request);
        if (!isStream || !drop || !res.body) return res;
        drop = false;
        // A fetch body streams bytes; undici types it as ReadableStream<any>.
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        let seen = '';
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const { done, value } = await reader.read();
            if (done) return controller.close();
            controller.enqueue(value);
            seen += new TextDecoder().decode(value);
            if (seen.includes('id: 2\n')) {
              await reader.cancel();
              controller.error(new TypeError('terminated: connection reset'));
            }
          },
        });
        return new Response(body, { status: res.status, headers: res.headers });
      };
      const { api, id } = await signedUp();
      await giveCredits(server, id, 1000);
      const question = 'Resume me after a drop, please';
      const task = await api.POST('/tasks', {
        body: { chat_id: await chatAbout(api, question), type: 'chat_generation' },
      });
      const resuming = createAideerClient({ baseUrl: server.url, token: api.token, fetch: droppingFetch });
      const stream = await resuming.streamTask(task.data!.task_id, { lastEventId: '0', resume: { delayMs: 10 } });
      const events: TaskEvent[] = [];
      for await (const event of stream.data!) events.push(event);
      expect(lastEventIds).to.deep.equal(['0', '2']);
      expect(events.map((e) => Number(e.id))).to.deep.equal(Array.from({ length: events.length }, (_, i) => i + 1));
      expect(events.at(-1)).to.include({ status: 'finished', content: question });
    });

    it('when a stream is opened and closed without being read, then a resuming reader can stream the task again at once', async () => {
      const { api, id } = await signedUp();
      await giveCredits(server, id, 1000);
      const question = 'Eleven, twelve, thirteen, fourteen, fifteen, sixteen, seventeen, eighteen';
      const task = await api.POST('/tasks', {
        body: { chat_id: await chatAbout(api, question), type: 'chat_generation' },
      });
      const taskId = task.data!.task_id;

      const unread = await api.streamTask(taskId);
      expect(unread.response.status).to.equal(200);
      // Open and unread, it holds the task.
      const refused = await api.streamTask(taskId);
      expect(refused.response.status).to.equal(422);
      expect(refused.error).to.deep.equal({ detail: `Task ${taskId} is already being streamed` });

      await unread.close!();
      // The server may not have seen that connection close yet: a reopen that resumes (here from
      // the start, nothing having been read) takes the stream over at once.
      const reopened = await api.streamTask(taskId, { lastEventId: '0' });
      expect(reopened.response.status).to.equal(200);
      const events: TaskEvent[] = [];
      for await (const event of reopened.data!) events.push(event);
      expect(events[0].status).to.equal('running');
      expect(events.at(-1)).to.include({ status: 'finished', content: question });
    });

    it('when the task does not exist, then streamTask returns the 404 detail', async () => {
      const missing = crypto.randomUUID();
      const stream = await aideerClient().streamTask(missing);
      expect(stream.response.status).to.equal(404);
      expect(stream.error).to.deep.equal({ detail: `Task ${missing} not found` });
    });
  });

  describe('readEventStream', () => {
    function bodyOf(chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
      return new ReadableStream({
        pull(controller) {
          const next = chunks.shift();
          if (next === undefined) controller.close();
          else controller.enqueue(typeof next === 'string' ? new TextEncoder().encode(next) : next);
        },
      });
    }

    it('when events use any line ending, span chunks, carry comments and multi-line data, then they are read as EventSource reads them', async () => {
      const euro = new TextEncoder().encode('€');
      const body = bodyOf([
        'event: open\r\n\r\n: ping\n\ndata: {"a":',
        // The two halves of one CRLF in two chunks.
        '1}\r',
        '\ndata: 2\r\n\r\ndata:first\ndata:  second\r\rdata: ',
        // A multi-byte character cut in two.
        euro.slice(0, 1),
        euro.slice(1),
        '\n\nevent: close\ndata: x\n\ndata: unfinished',
      ]);
      const events = [];
      for await (const event of readEventStream(body)) events.push(event);
      expect(events).to.deep.equal([
        { event: 'message', data: '{"a":1}\n2', id: '' },
        { event: 'message', data: 'first\n second', id: '' },
        { event: 'message', data: '€', id: '' },
        { event: 'close', data: 'x', id: '' },
      ]);
    });
  });
});
