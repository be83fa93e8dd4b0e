// One-API subscriptions and their articles (decisions O7, O8, O10, O11): the lifecycle with every
// documented message and status, ownership, a name subscribed once under concurrent requests,
// matching and paging of articles, and admins adding articles.
import crypto from 'node:crypto';
import { expect } from 'chai';
import { bodyOf, client, type Client, type Ok } from './helpers/http.ts';
import type { components, operations } from '../generated/oneapi.ts';
import { sharedServer, type TestServer } from './helpers/server.ts';
import { API, authHeaders, newSession, type Session } from './helpers/oneapi.ts';
import { MESSAGES } from '../src/oneapi/http/envelope.ts';
import { SUBSCRIPTION_MESSAGES as M } from '../src/oneapi/http/handlers/subscriptions.ts';
import { ARTICLE_MESSAGES } from '../src/oneapi/http/handlers/articles.ts';
import { uniqueViolation } from '../src/dbErrors.ts';

/** A word no other test (and no sample article) contains. */
function uniqueWord(prefix = 'topic'): string {
  return `${prefix}${crypto.randomBytes(5).toString('hex')}`;
}

const MISSING_ID = 2147483647;

type Subscription = components['schemas']['Subscription'];
type Subscribed = Ok<operations['createSubscription']>;
type SubscriptionList = Ok<operations['listSubscriptions']>;
type ArticleList = Ok<operations['listSubscriptionArticles']>;
type ArticleCreated = Ok<operations['createArticle']>;

describe('One-API subscriptions', () => {
  let server: TestServer;
  let api: Client;
  let alice: Session;
  let bob: Session;
  let admin: Session;

  before(async () => {
    server = await sharedServer();
    api = client(server.url);
    [alice, bob, admin] = await Promise.all([newSession(api), newSession(api), newSession(api)]);
    await server.db('oneapi_users').where({ id: admin.id }).update({ role: 10 });
  });

  const subscribe = async (who: Session, topic_name: string, topic_description?: string) =>
    bodyOf<Subscribed>(
      await api
        .post(`${API}/subscriptions`)
        .set(authHeaders(who))
        .send({ topic_name, ...(topic_description === undefined ? {} : { topic_description }) })
        .expect(200),
    ).data;
  const listOf = async (who: Session, query: Record<string, string | number> = {}) =>
    bodyOf<SubscriptionList>(await api.get(`${API}/subscriptions`).set(authHeaders(who)).query(query).expect(200)).data;
  /** Every subscription of `who`, read page by page through GET /subscriptions. */
  const allOf = async (who: Session): Promise<Subscription[]> => {
    const all: Subscription[] = [];
    for (let page = 1; ; page++) {
      const data = await listOf(who, { page, size: 100 });
      all.push(...data.subscriptions);
      if (!data.subscriptions.length || all.length >= data.total) return all;
    }
  };
  const named = async (who: Session, name: string) => (await allOf(who)).filter((s) => s.topic_name === name);
  const byId = async (who: Session, id: number) => (await allOf(who)).find((s) => s.id === id);
  /** The articles a new subscription to `word` lists: those whose title or content mention it. */
  const articlesMentioning = async (word: string) => {
    const sub = await subscribe(admin, word);
    return bodyOf<ArticleList>(
      await api.get(`${API}/subscriptions/${sub.id}/articles`).set(authHeaders(admin)).query({ size: 100 }).expect(200),
    ).data.articles;
  };
  const addArticle = async (fields: Record<string, unknown>) =>
    bodyOf<ArticleCreated>(
      await api
        .post(`${API}/articles`)
        .set(authHeaders(admin))
        .send({ article_url: `https://news.example.com/${uniqueWord('a')}`, title: uniqueWord('title'), ...fields })
        .expect(200),
    ).data;

  describe('createSubscription — POST /subscriptions', () => {
    it('when the name is new, then 订阅创建成功 with the active subscription, listed first', async () => {
      const name = uniqueWord('技术');
      const before = Date.now();
      const res = bodyOf<Subscribed>(
        await api
          .post(`${API}/subscriptions/`)
          .set(authHeaders(alice))
          .send({ topic_name: name, topic_description: '技术相关文章订阅' })
          .expect(200),
      );
      expect(res.success).to.equal(true);
      expect(res.message).to.equal(M.created);
      expect(res.data).to.include({
        topic_name: name,
        topic_description: '技术相关文章订阅',
        status: 1,
      });
      expect(res.data.created_at).to.match(/Z$/);
      expect(Date.parse(res.data.created_at)).to.be.within(before - 1000, Date.now() + 1000);
      expect((await listOf(alice)).subscriptions[0]).to.deep.equal(res.data);
    });

    it('when no description is sent, then it is ""', async () => {
      expect(await subscribe(alice, uniqueWord())).to.include({ topic_description: '', status: 1 });
    });

    it('when the caller already has an active subscription of that name, then 400 您已经订阅了该主题 and nothing changes', async () => {
      const name = uniqueWord();
      const first = await subscribe(alice, name, '原描述');
      const res = await api
        .post(`${API}/subscriptions`)
        .set(authHeaders(alice))
        .send({ topic_name: name, topic_description: '新描述' })
        .expect(400);
      expect(res.body).to.deep.equal({ success: false, message: M.alreadySubscribed });
      const rows = await named(alice, name);
      expect(rows).to.have.length(1);
      expect(rows[0]).to.include({ id: first.id, topic_description: '原描述', status: 1 });
    });

    it('when the caller has a cancelled subscription of that name, then it is reactivated (订阅已重新激活) with the new description', async () => {
      const name = uniqueWord();
      const first = await subscribe(alice, name, '旧描述');
      await api.put(`${API}/subscriptions/${first.id}/cancel`).set(authHeaders(alice)).expect(200);
      const res = bodyOf<Subscribed>(
        await api
          .post(`${API}/subscriptions`)
          .set(authHeaders(alice))
          .send({ topic_name: name, topic_description: '新描述' })
          .expect(200),
      );
      expect(res.message).to.equal(M.reactivated);
      expect(res.data).to.deep.equal({ ...first, topic_description: '新描述', status: 1 });
    });

    it('when a cancelled name is re-created without a description, then it keeps the one it had', async () => {
      const name = uniqueWord();
      const first = await subscribe(alice, name, '保留的描述');
      await api.put(`${API}/subscriptions/${first.id}/cancel`).set(authHeaders(alice)).expect(200);
      const res = bodyOf<Subscribed>(
        await api.post(`${API}/subscriptions`).set(authHeaders(alice)).send({ topic_name: name }).expect(200),
      );
      expect(res.message).to.equal(M.reactivated);
      expect(res.data).to.deep.equal({ ...first, status: 1 });
    });

    it('when another user has subscribed to the same name, then the caller still gets a subscription of their own', async () => {
      const name = uniqueWord();
      const mine = await subscribe(alice, name);
      const theirs = await subscribe(bob, name);
      expect(theirs.id).to.not.equal(mine.id);
    });

    it('when names differ only in case, then they are two subscriptions', async () => {
      const session = await newSession(api);
      const name = uniqueWord('Ai');
      const upper = bodyOf<Subscribed>(
        await api.post(`${API}/subscriptions`).set(authHeaders(session)).send({ topic_name: name }).expect(200),
      );
      const lower = bodyOf<Subscribed>(
        await api
          .post(`${API}/subscriptions`)
          .set(authHeaders(session))
          .send({ topic_name: name.toLowerCase() })
          .expect(200),
      );
      expect([upper.message, lower.message]).to.deep.equal([M.created, M.created]);
      expect(lower.data.id).to.not.equal(upper.data.id);
      expect(lower.data).to.include({ topic_name: name.toLowerCase(), status: 1 });
      expect(upper.data).to.include({ topic_name: name, status: 1 });
      expect(await listOf(session)).to.include({ total: 2 });
      // Each is a subscription of its own: cancelling one leaves the other active.
      await api.put(`${API}/subscriptions/${upper.data.id}/cancel`).set(authHeaders(session)).expect(200);
      expect((await listOf(session)).subscriptions).to.deep.equal([lower.data, { ...upper.data, status: 0 }]);
    });

    it('when the same name is created 8 times at once, then exactly one is created and the others are 400 您已经订阅了该主题', async () => {
      const name = uniqueWord();
      const results = await Promise.all(
        Array.from({ length: 8 }, () =>
          api.post(`${API}/subscriptions`).set(authHeaders(alice)).send({ topic_name: name }),
        ),
      );
      expect(results.filter((r) => r.status === 200).map((r) => bodyOf<Subscribed>(r).message)).to.deep.equal([
        M.created,
      ]);
      for (const r of results.filter((r) => r.status !== 200))
        expect(r.body).to.deep.equal({ success: false, message: M.alreadySubscribed });
      expect(await named(alice, name)).to.have.length(1);
    });

    it('when a cancelled name is re-created 8 times at once, then exactly one reactivates it and the others are 400', async () => {
      const name = uniqueWord();
      const first = await subscribe(alice, name);
      await api.put(`${API}/subscriptions/${first.id}/cancel`).set(authHeaders(alice)).expect(200);
      const results = await Promise.all(
        Array.from({ length: 8 }, () =>
          api.post(`${API}/subscriptions`).set(authHeaders(alice)).send({ topic_name: name }),
        ),
      );
      expect(results.filter((r) => r.status === 200).map((r) => bodyOf<Subscribed>(r).message)).to.deep.equal([
        M.reactivated,
      ]);
      expect(results.filter((r) => r.status === 400)).to.have.length(7);
      expect((await named(alice, name)).map((r) => r.status)).to.deep.equal([1]);
    });

    it('when a second row of one user and name is written straight to the database, then the unique constraint refuses it', async () => {
      const name = uniqueWord();
      await subscribe(alice, name);
      const now = Date.now();
      let error: unknown;
      try {
        await server.db('oneapi_subscriptions').insert({
          user_id: alice.id,
          topic_name: name,
          topic_description: '',
          status: 0,
          created_at: now,
          updated_at: now,
        });
      } catch (err) {
        error = err;
      }
      expect(uniqueViolation(error)).to.equal('topic_name');
    });

    for (const [what, body, message] of [
      ['topic_name is missing', { topic_description: 'x' }, '请求参数错误: 缺少字段 topic_name'],
      ['topic_name is empty', { topic_name: '' }, '请求参数错误: topic_name 不能为空'],
      ['topic_name is only blanks', { topic_name: '  \t ' }, '请求参数错误: topic_name 格式不正确'],
      [
        'topic_name is longer than 100 characters',
        { topic_name: '技'.repeat(101) },
        '请求参数错误: topic_name 长度不能超过 100',
      ],
      [
        'topic_description is longer than 1000 characters',
        { topic_name: 'x', topic_description: 'd'.repeat(1001) },
        '请求参数错误: topic_description 长度不能超过 1000',
      ],
      ['topic_name is not a string', { topic_name: 42 }, '请求参数错误: topic_name 类型应为 string'],
    ] as const) {
      it(`when ${what}, then 400 ${message} and nothing is stored`, async () => {
        const session = await newSession(api);
        const res = await api.post(`${API}/subscriptions`).set(authHeaders(session)).send(body).expect(400);
        expect(res.body).to.deep.equal({ success: false, message });
        expect((await listOf(session)).total).to.equal(0);
      });
    }

    it('when the name has 100 characters and the description 1000, then they are accepted', async () => {
      const name = uniqueWord().padEnd(100, '术');
      expect(await subscribe(alice, name, 'd'.repeat(1000))).to.include({ topic_name: name });
    });

    it('when the body is not JSON, then 400 in the envelope', async () => {
      const res = await api
        .post(`${API}/subscriptions`)
        .set(authHeaders(alice))
        .type('application/json')
        .send('{"topic_name": ')
        .expect(400);
      expect(res.body).to.deep.equal({ success: false, message: '请求参数错误: 请求体不是合法的 JSON' });
    });
  });

  describe('listSubscriptions — GET /subscriptions', () => {
    it('when the caller has none, then an empty list with total 0', async () => {
      const session = await newSession(api);
      expect(await listOf(session)).to.deep.equal({ subscriptions: [], total: 0, page: 1, size: 10 });
    });

    it('when the caller has several, then only theirs, newest first, paged by size (page_size as alias)', async () => {
      const session = await newSession(api);
      const created = [];
      for (let i = 0; i < 3; i++) created.push(await subscribe(session, uniqueWord(`n${i}`)));
      await subscribe(bob, uniqueWord());
      const newestFirst = [...created].reverse();
      expect(await listOf(session, { size: 2 })).to.deep.equal({
        subscriptions: newestFirst.slice(0, 2),
        total: 3,
        page: 1,
        size: 2,
      });
      expect(await listOf(session, { page: 2, page_size: 2 })).to.deep.equal({
        subscriptions: newestFirst.slice(2),
        total: 3,
        page: 2,
        size: 2,
      });
      expect(await listOf(session, { page: 3, size: 2 })).to.deep.equal({
        subscriptions: [],
        total: 3,
        page: 3,
        size: 2,
      });
      expect((await listOf(session, { size: 1, page_size: 50 })).size).to.equal(1);
    });

    it('when one is cancelled, then it stays listed with status 0 and is back at 1 after reactivation', async () => {
      const session = await newSession(api);
      const sub = await subscribe(session, uniqueWord());
      await api.put(`${API}/subscriptions/${sub.id}/cancel`).set(authHeaders(session)).expect(200);
      expect((await listOf(session)).subscriptions).to.deep.equal([{ ...sub, status: 0 }]);
      await api.put(`${API}/subscriptions/${sub.id}/reactivate`).set(authHeaders(session)).expect(200);
      expect((await listOf(session)).subscriptions).to.deep.equal([sub]);
    });

    for (const [query, message] of [
      [{ size: 101 }, '请求参数错误: size 不能大于 100'],
      [{ page: 0 }, '请求参数错误: page 不能小于 1'],
      [{ page_size: 0 }, '请求参数错误: page_size 不能小于 1'],
      [{ size: 'ten' }, '请求参数错误: size 类型应为 integer'],
    ] as const) {
      it(`when the query is ${JSON.stringify(query)}, then 400 ${message}`, async () => {
        const res = await api.get(`${API}/subscriptions`).set(authHeaders(alice)).query(query).expect(400);
        expect(res.body).to.deep.equal({ success: false, message });
      });
    }
  });

  describe('cancelSubscription — PUT /subscriptions/{id}/cancel', () => {
    it('when an active one is cancelled, then 订阅已取消; cancelling it again is 400 订阅已取消，无需重复操作', async () => {
      const sub = await subscribe(alice, uniqueWord());
      const res = await api.put(`${API}/subscriptions/${sub.id}/cancel`).set(authHeaders(alice)).expect(200);
      expect(res.body).to.deep.equal({ success: true, message: M.cancelled });
      const again = await api.put(`${API}/subscriptions/${sub.id}/cancel`).set(authHeaders(alice)).expect(400);
      expect(again.body).to.deep.equal({ success: false, message: M.alreadyCancelled });
      expect(await byId(alice, sub.id)).to.include({ status: 0 });
    });

    it('when one subscription is cancelled 6 times at once, then exactly one succeeds', async () => {
      const sub = await subscribe(alice, uniqueWord());
      const results = await Promise.all(
        Array.from({ length: 6 }, () => api.put(`${API}/subscriptions/${sub.id}/cancel`).set(authHeaders(alice))),
      );
      expect(results.map((r) => r.status).sort()).to.deep.equal([200, 400, 400, 400, 400, 400]);
    });
  });

  describe('reactivateSubscription — PUT /subscriptions/{id}/reactivate', () => {
    it('when a cancelled one is reactivated, then 订阅已重新激活; reactivating it again is 400 订阅已处于激活状态', async () => {
      const sub = await subscribe(alice, uniqueWord());
      const active = await api.put(`${API}/subscriptions/${sub.id}/reactivate`).set(authHeaders(alice)).expect(400);
      expect(active.body).to.deep.equal({ success: false, message: M.alreadyActive });
      await api.put(`${API}/subscriptions/${sub.id}/cancel`).set(authHeaders(alice)).expect(200);
      const res = await api.put(`${API}/subscriptions/${sub.id}/reactivate`).set(authHeaders(alice)).expect(200);
      expect(res.body).to.deep.equal({ success: true, message: M.reactivated });
      expect(await byId(alice, sub.id)).to.include({ status: 1 });
    });
  });

  describe('deleteSubscription — DELETE /subscriptions/{id}', () => {
    it('when the caller deletes one, then 订阅已删除, it leaves the list and is 404 订阅不存在 everywhere', async () => {
      const session = await newSession(api);
      const sub = await subscribe(session, uniqueWord());
      const res = await api.delete(`${API}/subscriptions/${sub.id}`).set(authHeaders(session)).expect(200);
      expect(res.body).to.deep.equal({ success: true, message: M.deleted });
      expect((await listOf(session)).total).to.equal(0);
      for (const req of [
        api.put(`${API}/subscriptions/${sub.id}/cancel`),
        api.put(`${API}/subscriptions/${sub.id}/reactivate`),
        api.delete(`${API}/subscriptions/${sub.id}`),
        api.get(`${API}/subscriptions/${sub.id}/articles`),
      ]) {
        expect((await req.set(authHeaders(session)).expect(404)).body).to.deep.equal({
          success: false,
          message: M.notFound,
        });
      }
    });

    it('when a cancelled one is deleted and its name subscribed again, then it is a new subscription (订阅创建成功)', async () => {
      const name = uniqueWord();
      const sub = await subscribe(alice, name);
      await api.put(`${API}/subscriptions/${sub.id}/cancel`).set(authHeaders(alice)).expect(200);
      await api.delete(`${API}/subscriptions/${sub.id}`).set(authHeaders(alice)).expect(200);
      const res = bodyOf<Subscribed>(
        await api.post(`${API}/subscriptions`).set(authHeaders(alice)).send({ topic_name: name }).expect(200),
      );
      expect(res.message).to.equal(M.created);
      expect(res.data.id).to.not.equal(sub.id);
    });
  });

  describe('operations on one subscription', () => {
    const operations = [
      [
        'cancel',
        'cancelSubscription',
        (id: number | string) => ({ method: 'put', url: `${API}/subscriptions/${id}/cancel` }),
      ],
      [
        'reactivate',
        'reactivateSubscription',
        (id: number | string) => ({ method: 'put', url: `${API}/subscriptions/${id}/reactivate` }),
      ],
      [
        'delete',
        'deleteSubscription',
        (id: number | string) => ({ method: 'delete', url: `${API}/subscriptions/${id}` }),
      ],
      [
        'list articles',
        'listSubscriptionArticles',
        (id: number | string) => ({ method: 'get', url: `${API}/subscriptions/${id}/articles` }),
      ],
    ] as const;
    const call = (r: { method: string; url: string }) => api[r.method as 'get' | 'put' | 'delete'](r.url);

    for (const [name, operationId, route] of operations) {
      it(`when the caller tries to ${name} (${operationId}) another user's subscription, then 403 无权限操作此订阅 and it is unchanged`, async () => {
        const theirs = await subscribe(bob, uniqueWord());
        const res = await call(route(theirs.id)).set(authHeaders(alice)).expect(403);
        expect(res.body).to.deep.equal({ success: false, message: M.forbidden });
        expect(await byId(bob, theirs.id)).to.deep.equal(theirs);
      });

      it(`when the caller tries to ${name} (${operationId}) a subscription that does not exist, then 404 订阅不存在`, async () => {
        const res = await call(route(MISSING_ID)).set(authHeaders(alice)).expect(404);
        expect(res.body).to.deep.equal({ success: false, message: M.notFound });
      });

      for (const [id, message] of [
        ['0', '请求参数错误: id 不能小于 1'],
        ['2147483648', '请求参数错误: id 不能大于 2147483647'],
        ['abc', '请求参数错误: id 类型应为 integer'],
      ]) {
        it(`when the caller tries to ${name} (${operationId}) id "${id}", then 400 ${message}, one message for the field`, async () => {
          const res = await call(route(id)).set(authHeaders(alice)).expect(400);
          expect(res.body).to.deep.equal({ success: false, message });
        });
      }
    }
  });

  describe('authentication', () => {
    const routes = () => [
      api.get(`${API}/subscriptions`),
      api.post(`${API}/subscriptions`).send({ topic_name: 'x' }),
      api.put(`${API}/subscriptions/1/cancel`),
      api.put(`${API}/subscriptions/1/reactivate`),
      api.delete(`${API}/subscriptions/1`),
      api.get(`${API}/subscriptions/1/articles`),
      api.post(`${API}/articles`).send({ title: 't', article_url: 'https://example.com/x' }),
    ];

    it('when no token is sent, then every operation is 401 未提供 access token', async () => {
      for (const req of routes())
        expect((await req.expect(401)).body).to.deep.equal({ success: false, message: MESSAGES.noToken });
    });

    it("when the UserID is not the token's user, then every operation is 401 与登录用户不匹配", async () => {
      for (const req of routes()) {
        const res = await req.set({ Authorization: alice.token, UserID: String(bob.id) }).expect(401);
        expect(res.body).to.deep.equal({ success: false, message: MESSAGES.userMismatch });
      }
    });

    it('when the caller is banned, then every operation is 403 用户已被封禁', async () => {
      const banned = await newSession(api);
      const sub = await subscribe(banned, uniqueWord());
      await server.db('oneapi_users').where({ id: banned.id }).update({ status: 2, role: 10 });
      for (const req of [
        ...routes().slice(0, 2),
        api.put(`${API}/subscriptions/${sub.id}/cancel`),
        api.put(`${API}/subscriptions/${sub.id}/reactivate`),
        api.delete(`${API}/subscriptions/${sub.id}`),
        api.get(`${API}/subscriptions/${sub.id}/articles`),
        routes()[6],
      ]) {
        expect((await req.set(authHeaders(banned)).expect(403)).body).to.deep.equal({
          success: false,
          message: MESSAGES.banned,
        });
      }
      expect(await server.db('oneapi_subscriptions').where({ id: sub.id }).first()).to.include({ status: 1 });
    });
  });

  describe('listSubscriptionArticles — GET /subscriptions/{id}/articles', () => {
    const articlesOf = async (who: Session, id: number, query: Record<string, string | number> = {}) =>
      bodyOf<ArticleList>(
        await api.get(`${API}/subscriptions/${id}/articles`).set(authHeaders(who)).query(query).expect(200),
      ).data;

    it('when articles mention the topic in their title or content in any case, then exactly those, newest first, undated last', async () => {
      const word = uniqueWord('Rust');
      const inTitle = await addArticle({
        title: `${word.toUpperCase()} 1.80 发布`,
        published_at: '2024-03-01T08:00:00Z',
      });
      const inContent = await addArticle({
        content: `本周的技术新闻里提到了 ${word.toLowerCase()} 的新版本。`,
        published_at: '2024-05-01T08:00:00+08:00',
      });
      const undated = await addArticle({ title: `关于 ${word} 的随笔` });
      await addArticle({ title: '无关的文章', content: `只有 ${word.slice(0, -1)} 的一部分` });
      const sub = await subscribe(alice, word);
      const data = await articlesOf(alice, sub.id);
      expect(data).to.deep.equal({ articles: [inContent, inTitle, undated], total: 3, page: 1, size: 10 });
      expect(inContent.published_at).to.equal('2024-05-01T00:00:00.000Z');
      expect(undated.published_at).to.equal(null);
    });

    it('when many articles match, then they are paged by size with the total (page_size as alias), a page past the end is empty', async () => {
      const word = uniqueWord();
      const added = [];
      for (let day = 1; day <= 5; day++)
        added.push(await addArticle({ title: `${word} 第 ${day} 期`, published_at: `2024-01-0${day}T00:00:00Z` }));
      const sub = await subscribe(alice, word);
      const newest = [...added].reverse();
      expect(await articlesOf(alice, sub.id, { size: 2 })).to.deep.equal({
        articles: newest.slice(0, 2),
        total: 5,
        page: 1,
        size: 2,
      });
      expect(await articlesOf(alice, sub.id, { page: 3, page_size: 2 })).to.deep.equal({
        articles: newest.slice(4),
        total: 5,
        page: 3,
        size: 2,
      });
      expect(await articlesOf(alice, sub.id, { page: 4, size: 2 })).to.deep.equal({
        articles: [],
        total: 5,
        page: 4,
        size: 2,
      });
    });

    it('when articles share a publication time, then the most recently stored comes first', async () => {
      const word = uniqueWord();
      const first = await addArticle({ title: word, published_at: '2024-02-02T00:00:00Z' });
      const second = await addArticle({ title: word, published_at: '2024-02-02T00:00:00Z' });
      const sub = await subscribe(alice, word);
      expect((await articlesOf(alice, sub.id)).articles).to.deep.equal([second, first]);
    });

    it('when the topic holds LIKE wildcards or the escape character, then they match only themselves', async () => {
      const word = uniqueWord();
      const literal = await addArticle({ title: `${word}%_!x 折扣` });
      await addArticle({ title: `${word}abx 折扣` });
      await addArticle({ title: `${word}%a!x 折扣` });
      const sub = await subscribe(alice, `${word}%_!x`);
      expect((await articlesOf(alice, sub.id)).articles).to.deep.equal([literal]);
      const percent = await subscribe(alice, `${word}%`);
      expect((await articlesOf(alice, percent.id)).total).to.equal(2);
    });

    it('when the topic has non-ASCII letters in another case, then it still matches (the same on every database)', async () => {
      const word = uniqueWord();
      const german = await addArticle({ content: `Neue ÄPFEL-${word} und ÉCOLE` });
      const sub = await subscribe(alice, `äpfel-${word}`);
      expect((await articlesOf(alice, sub.id)).articles).to.deep.equal([german]);
      const greek = await addArticle({ title: `ΣΟΦΙΑ ${word}` });
      const sub2 = await subscribe(alice, `σοφια ${word}`);
      expect((await articlesOf(alice, sub2.id)).articles).to.deep.equal([greek]);
    });

    it('when the topic ends in a Greek sigma (lower-cased as final ς), then it matches the same letters inside a longer word', async () => {
      const word = uniqueWord();
      const road = await addArticle({ title: `${word} ΟΔΟΣΤΡΩΜΑ` });
      const sub = await subscribe(alice, `${word} ΟΔΟΣ`);
      expect((await articlesOf(alice, sub.id)).articles).to.deep.equal([road]);
      const finalInArticle = await addArticle({ content: `${word}-ΚΟΣΜΟΣ` });
      const sub2 = await subscribe(alice, `${word}-κοσμοσ`);
      expect((await articlesOf(alice, sub2.id)).articles).to.deep.equal([finalInArticle]);
    });

    it('when the subscription is cancelled, then its articles are still listed', async () => {
      const word = uniqueWord();
      const article = await addArticle({ title: word });
      const sub = await subscribe(alice, word);
      await api.put(`${API}/subscriptions/${sub.id}/cancel`).set(authHeaders(alice)).expect(200);
      expect((await articlesOf(alice, sub.id)).articles).to.deep.equal([article]);
    });

    it('when nothing matches, then an empty list', async () => {
      const sub = await subscribe(alice, uniqueWord());
      expect(await articlesOf(alice, sub.id)).to.deep.equal({ articles: [], total: 0, page: 1, size: 10 });
    });

    it('when size is over 100, then 400 请求参数错误', async () => {
      const sub = await subscribe(alice, uniqueWord());
      const res = await api
        .get(`${API}/subscriptions/${sub.id}/articles`)
        .set(authHeaders(alice))
        .query({ size: 101 })
        .expect(400);
      expect(res.body).to.deep.equal({ success: false, message: '请求参数错误: size 不能大于 100' });
    });
  });

  describe('createArticle — POST /articles', () => {
    it('when an admin adds an article, then 文章创建成功 with it; its URL is stored normalised', async () => {
      const path = uniqueWord('p');
      const res = bodyOf<ArticleCreated>(
        await api
          .post(`${API}/articles`)
          .set(authHeaders(admin))
          .send({
            title: '示例文章标题',
            content: '文章内容...',
            author: '作者',
            published_at: '2024-01-01T08:00:00+08:00',
            article_url: `HTTPS://News.Example.COM/${path}`,
          })
          .expect(200),
      );
      expect(res.message).to.equal(ARTICLE_MESSAGES.created);
      expect(res.data).to.deep.include({
        title: '示例文章标题',
        content: '文章内容...',
        author: '作者',
        published_at: '2024-01-01T00:00:00.000Z',
        article_url: `https://news.example.com/${path}`,
      });
      const row = (await server.db('oneapi_articles').where({ id: res.data.id }).first())!;
      expect(row.source).to.equal(`admin:${admin.id}`);
    });

    it('when only title and URL are sent, then content and author are "" and published_at is null', async () => {
      const article = await addArticle({});
      expect(article).to.include({ content: '', author: '', published_at: null });
    });

    it('when a root user adds an article, then it is stored too', async () => {
      const root = await newSession(api);
      await server.db('oneapi_users').where({ id: root.id }).update({ role: 100 });
      const title = uniqueWord('root');
      const url = `https://example.com/${uniqueWord()}`;
      const res = bodyOf<ArticleCreated>(
        await api.post(`${API}/articles`).set(authHeaders(root)).send({ title, article_url: url }).expect(200),
      );
      expect(res.message).to.equal(ARTICLE_MESSAGES.created);
      expect(res.data).to.include({ title, article_url: url });
      // Stored: a subscription to its title lists it, and its URL is now taken.
      expect(await articlesMentioning(title)).to.deep.equal([res.data]);
      const again = await api
        .post(`${API}/articles`)
        .set(authHeaders(admin))
        .send({ title: 'again', article_url: url })
        .expect(400);
      expect(again.body).to.deep.equal({ success: false, message: ARTICLE_MESSAGES.duplicateUrl });
    });

    it('when the URL is already stored (in any spelling of the same URL), then 400 文章链接已存在 and nothing is added', async () => {
      const path = uniqueWord('dup');
      const again = uniqueWord('again');
      const first = await addArticle({ article_url: `https://example.com/${path}`, title: path });
      for (const url of [`https://example.com/${path}`, `https://EXAMPLE.com:443/${path}`]) {
        const res = await api
          .post(`${API}/articles`)
          .set(authHeaders(admin))
          .send({ title: again, article_url: url })
          .expect(400);
        expect(res.body).to.deep.equal({ success: false, message: ARTICLE_MESSAGES.duplicateUrl });
      }
      expect(await articlesMentioning(again)).to.deep.equal([]);
      expect(await articlesMentioning(path)).to.deep.equal([first]);
    });

    it('when the caller is not an admin, then 403 无权进行此操作，权限不足 and nothing is added', async () => {
      const url = `https://example.com/${uniqueWord()}`;
      const title = uniqueWord('refused');
      const res = await api
        .post(`${API}/articles`)
        .set(authHeaders(alice))
        .send({ title, article_url: url })
        .expect(403);
      expect(res.body).to.deep.equal({ success: false, message: ARTICLE_MESSAGES.notAdmin });
      expect(await articlesMentioning(title)).to.deep.equal([]);
    });

    for (const [what, body, message] of [
      ['article_url is missing', { title: 't' }, '请求参数错误: 缺少字段 article_url'],
      [
        'article_url is not http(s)',
        { title: 't', article_url: 'ftp://example.com/a' },
        '请求参数错误: article_url 格式不正确',
      ],
      ['article_url is not a URL', { title: 't', article_url: 'not a url' }, '请求参数错误: article_url 格式不正确'],
      [
        'article_url has a host the URI format allows but no URL parser takes',
        { title: 't', article_url: 'http://999.999.999.999/' },
        '请求参数错误: article_url 格式不正确',
      ],
      [
        'article_url has a port above 65535',
        { title: 't', article_url: 'http://example.com:99999/' },
        '请求参数错误: article_url 格式不正确',
      ],
      ['the title is empty', { title: '', article_url: 'https://example.com/e' }, '请求参数错误: title 不能为空'],
      [
        'the title is longer than 255 characters',
        { title: 't'.repeat(256), article_url: 'https://example.com/e' },
        '请求参数错误: title 长度不能超过 255',
      ],
      [
        'published_at is not a date-time',
        { title: 't', article_url: 'https://example.com/e', published_at: '2024-01-01' },
        '请求参数错误: published_at 格式不正确',
      ],
      [
        'published_at falls after the year 9999 in UTC',
        { title: 't', article_url: 'https://example.com/e', published_at: '9999-12-31T23:30:00-01:00' },
        '请求参数错误: published_at 超出范围',
      ],
      [
        'published_at is a leap second',
        { title: 't', article_url: 'https://example.com/e', published_at: '2016-12-31T23:59:60Z' },
        '请求参数错误: published_at 超出范围',
      ],
    ] as const) {
      it(`when ${what}, then 400 ${message}`, async () => {
        const res = await api.post(`${API}/articles`).set(authHeaders(admin)).send(body).expect(400);
        expect(res.body).to.deep.equal({ success: false, message });
      });
    }

    it('when published_at is in the year 0000 in UTC, then it is kept and sent back as it was', async () => {
      const article = await addArticle({ published_at: '0000-01-01T00:00:00Z' });
      expect(article.published_at).to.equal('0000-01-01T00:00:00.000Z');
    });

    it('when the body is not JSON, then 400 in the envelope', async () => {
      const res = await api
        .post(`${API}/articles`)
        .set(authHeaders(admin))
        .type('application/json')
        .send('{')
        .expect(400);
      expect(res.body).to.deep.equal({ success: false, message: '请求参数错误: 请求体不是合法的 JSON' });
    });
  });
});
