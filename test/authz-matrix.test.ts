// The authorisation matrix: every operation of both specs × every kind of caller gets the status
// its spec documents for that caller, a refused request changes nothing, and no answer to anyone
// but the owner carries the owner's data. The operations are read from the two YAML documents, so
// an operation added to a spec without a row here fails the run. AIDeer has no ban: its "banned
// user" is a deleted account whose token has not expired. Beside the matrix, every signed-in
// operation is swept with forged and misused credentials.
import crypto from 'node:crypto';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import sharp from 'sharp';
import { contract } from './helpers/contract.ts';
import { bodyOf, client, sse, type Client, type Ok } from './helpers/http.ts';
import type { operations } from '../generated/aideer.ts';
import type { operations as oneapi } from '../generated/oneapi.ts';
import { startServer, type TestServer } from './helpers/server.ts';
import { V1, giveCredits, mintToken, signUp, signUpAdmin, uniqueName, type AideerUser } from './helpers/aideer.ts';
import { API, authHeaders, login, newSession, requestCode, uniquePhone, type Session } from './helpers/oneapi.ts';
import { startFakeWeChat, type FakeWeChat } from './helpers/fakeWeChat.ts';
import { ROLE, STATUS, sha256 } from '../src/oneapi/domain/accounts.ts';
import { MESSAGES } from '../src/oneapi/http/envelope.ts';

const CALLERS = [
  'anonymous',
  'garbage token',
  'expired token',
  'banned user',
  'another user',
  'owner',
  'admin',
] as const;
type Caller = (typeof CALLERS)[number];
type Statuses = Record<Caller, number>;

/** What an answer to a caller other than the owner may carry of the owner's by design. */
type Reveal =
  /** The owner's public profile (user name, id): AIDeer profiles are readable by any signed-in user. */
  | 'profile'
  /** The owner's conversation text: a shared chat, or a task whose id is its capability. */
  | 'content'
  /** A token for the owner: the caller proved the owner's password or phone code. */
  | 'token'
  /** The owner's phone: the caller logged in with it. */
  | 'phone';

interface Secret {
  kind: Reveal | 'password';
  value: string;
}

interface Answer {
  status: number;
  body: unknown;
  text: string;
}

interface Cell<Owner> {
  caller: Caller;
  owner: Owner;
  /** The caller's credentials (none for anonymous). */
  auth: Record<string, string>;
  /** The owner's strings nobody else may see, added to by the set-ups. */
  secrets: Secret[];
}

interface Row<C> {
  operationId: string;
  /** Which case of the operation, when it has several rows. */
  variant?: string;
  expect: Statuses;
  reveals?: Reveal[];
  /** The cells change the owner, or would together fill its task cap: each gets an owner of its own. */
  ownerPerCell?: true;
  /** Makes what the request needs, then sends it with the caller's credentials. */
  call(cell: C): Promise<Answer>;
  /** After a refusal: the owner's resource is as it was. */
  intact?(cell: C): Promise<unknown>;
}

const everyone = (status: number): Statuses => Object.fromEntries(CALLERS.map((c) => [c, status])) as Statuses;

/** Finds the owner's data in an answer to someone else; returns what leaked. */
function leaks(
  answer: Answer,
  owner: { id: number; username: string; phone?: string },
  secrets: Secret[],
  allowed: Set<string>,
): string[] {
  const found: string[] = [];
  const text = answer.text || JSON.stringify(answer.body ?? '');
  for (const s of secrets)
    if (!allowed.has(s.kind) && text.includes(s.value)) found.push(`${s.kind} ${s.value.slice(0, 24)}`);
  const walk = (node: unknown) => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    if (!allowed.has('profile')) {
      if (o.username === owner.username) found.push(`username ${owner.username}`);
      for (const key of ['user_id', 'owner_id']) if (o[key] === owner.id) found.push(`${key} ${owner.id}`);
    }
    if (!allowed.has('phone') && owner.phone && o.phone === owner.phone) found.push(`phone ${owner.phone}`);
    Object.values(o).forEach(walk);
  };
  walk(answer.body);
  return found;
}

const answerOf = async (test: PromiseLike<{ status: number; body: unknown; text: string }>): Promise<Answer> => {
  const res = await test;
  return { status: res.status, body: res.body, text: res.text ?? '' };
};

const ZERO_UUID = '00000000-0000-4000-8000-000000000000';

const marker = (what: string) => `${what}-${crypto.randomBytes(6).toString('hex')}`;

let server: TestServer;
let api: Client;
let wechat: FakeWeChat;

// ── AIDeer ──────────────────────────────────────────────────────────────────────────────────────

interface AideerCell extends Cell<AideerUser> {
  /** The caller as a user, when it is one (another user, owner, admin). */
  self?: AideerUser;
  other: AideerUser;
  admin: AideerUser;
  deleted: AideerUser;
}

const message = (role: 'system' | 'user', content: string) => ({ role, type: 'text', content });

/** The owner's preset, holding a secret prompt. */
async function ownerPreset(cell: AideerCell, visibility = 'private'): Promise<string> {
  const secret = marker('preset-prompt');
  cell.secrets.push({ kind: 'content', value: secret });
  const res = await api
    .post(`${V1}/presets`)
    .set(cell.owner.bearer)
    .send({
      title: 'Preset',
      visibility,
      messages: [message('system', secret)],
      parameters: { model: 'deepseek-chat' },
    })
    .expect(200);
  return bodyOf<Ok<operations['createPreset']>>(res).id;
}

/** The owner's chat, holding a secret message. */
async function ownerChat(cell: AideerCell, visibility = 'private'): Promise<string> {
  const preset = await ownerPreset(cell);
  const secret = marker('chat-message');
  cell.secrets.push({ kind: 'content', value: secret });
  const res = await api
    .post(`${V1}/chats`)
    .set(cell.owner.bearer)
    .send({ preset_id: preset, title: 'Chat', visibility, messages: [message('user', secret)] })
    .expect(200);
  return bodyOf<Ok<operations['createChat']>>(res).id;
}

/** A task of the owner's that has finished. */
async function ownerTask(cell: AideerCell): Promise<string> {
  await giveCredits(server, cell.owner.id, 1000);
  const chat = await ownerChat(cell);
  const created = bodyOf<Ok<operations['createTask']>>(
    await api.post(`${V1}/tasks`).set(cell.owner.bearer).send({ chat_id: chat, type: 'chat_generation' }).expect(200),
  );
  const stream = await sse(server.url, `${V1}/tasks/${created.task_id}/stream`);
  await stream.done;
  expect(stream.events.at(-2)?.data?.status).to.equal('finished');
  return created.task_id;
}

async function newCode(value = 5): Promise<string> {
  const code = marker('code').toUpperCase();
  const res = await api.post(`${V1}/codes`).set(adminBearer()).send({ redeem_code: code, value }).expect(200);
  return bodyOf<Ok<operations['createRedeemCode']>>(res).redeem_code;
}

let aideerAdmin: AideerUser | undefined;
const adminBearer = () => aideerAdmin!.bearer;

const signedIn = (owner: number, other = owner, admin = owner): Statuses => ({
  anonymous: 401,
  'garbage token': 401,
  'expired token': 401,
  'banned user': 401,
  'another user': other,
  owner,
  admin,
});
const adminOnly = (admin: number): Statuses => signedIn(403, 403, admin);

const ownerChatReadable = async (cell: AideerCell & { chat?: string }) => {
  const res = await api.get(`${V1}/chats/${cell.chat}`).set(cell.owner.bearer).expect(200);
  expect(JSON.stringify(bodyOf<Ok<operations['readChat']>>(res).messages)).to.include('chat-message-');
};

const imagePromise = sharp({ create: { width: 8, height: 8, channels: 3, background: '#4a7' } })
  .png()
  .toBuffer();

type AideerRow = Row<AideerCell & { chat?: string; preset?: string; code?: string }>;

const aideerRows: AideerRow[] = [
  {
    operationId: 'listUsers',
    expect: adminOnly(200),
    call: (c) => answerOf(api.get(`${V1}/users`).query({ limit: 100 }).set(c.auth)),
  },
  {
    operationId: 'createUser',
    // Sign-up is open; a token that is sent must be valid (A2).
    expect: { ...everyone(200), 'garbage token': 401, 'expired token': 401, 'banned user': 401 },
    call: (c) =>
      answerOf(api.post(`${V1}/users`).set(c.auth).send({ username: uniqueName(), password: 'pass-word-1' })),
  },
  { operationId: 'readUserMe', expect: signedIn(200), call: (c) => answerOf(api.get(`${V1}/users/me`).set(c.auth)) },
  {
    operationId: 'updateMyPassword',
    expect: signedIn(200),
    // The same password again: the shared callers keep theirs.
    call: (c) =>
      answerOf(
        api
          .put(`${V1}/users/me/password`)
          .set(c.auth)
          .send({ old_password: c.self?.password ?? 'pass-word-1', new_password: c.self?.password ?? 'pass-word-1' }),
      ),
    intact: async (c) =>
      void (await api
        .post(`${V1}/session/oauth2/token`)
        .type('form')
        .send({ username: c.owner.username, password: c.owner.password })
        .expect(200)),
  },
  {
    operationId: 'getMyAvatar',
    expect: signedIn(307),
    call: (c) => answerOf(api.get(`${V1}/users/me/avatar`).set(c.auth).redirects(0)),
  },
  {
    operationId: 'setMyAvatar',
    expect: signedIn(200),
    call: async (c) =>
      answerOf(
        api
          .post(`${V1}/users/me/avatar`)
          .set(c.auth)
          .attach('avatar_file', await imagePromise, 'a.png'),
      ),
  },
  {
    operationId: 'getMyCredits',
    expect: signedIn(200),
    call: (c) => answerOf(api.get(`${V1}/users/me/credits`).set(c.auth)),
  },
  {
    operationId: 'redeemCredits',
    expect: signedIn(200),
    call: async (c) =>
      answerOf(
        api
          .post(`${V1}/users/me/credits`)
          .set(c.auth)
          .send({ redeem_code: await newCode() }),
      ),
  },
  {
    operationId: 'readMyLikes',
    expect: signedIn(200),
    call: async (c) => {
      const [preset, chat] = [await ownerPreset(c), await ownerChat(c)];
      // The caller likes the owner's private preset and chat: its likes must still show only ids.
      if (c.self) {
        await api.post(`${V1}/users/me/likes/preset/${preset}`).set(c.self.bearer).expect(200);
        await api.post(`${V1}/users/me/likes/chat/${chat}`).set(c.self.bearer).expect(200);
      }
      return answerOf(api.get(`${V1}/users/me/likes`).set(c.auth));
    },
  },
  // Any existing preset or chat may be liked, whatever its owner or visibility (as the original, A13).
  {
    operationId: 'likePreset',
    expect: signedIn(200),
    call: async (c) => answerOf(api.post(`${V1}/users/me/likes/preset/${await ownerPreset(c)}`).set(c.auth)),
  },
  {
    operationId: 'likeChat',
    expect: signedIn(200),
    call: async (c) => answerOf(api.post(`${V1}/users/me/likes/chat/${await ownerChat(c)}`).set(c.auth)),
  },
  {
    operationId: 'unlikePreset',
    variant: "the owner's like",
    expect: signedIn(200, 404, 404),
    call: async (c) => {
      c.preset = await ownerPreset(c);
      await api.post(`${V1}/users/me/likes/preset/${c.preset}`).set(c.owner.bearer).expect(200);
      return answerOf(api.delete(`${V1}/users/me/likes/preset/${c.preset}`).set(c.auth));
    },
    intact: async (c) =>
      expect(
        bodyOf<Ok<operations['readMyLikes']>>(await api.get(`${V1}/users/me/likes`).set(c.owner.bearer).expect(200))
          .preset_ids,
      ).to.include(c.preset),
  },
  {
    operationId: 'unlikeChat',
    variant: "the owner's like",
    expect: signedIn(200, 404, 404),
    call: async (c) => {
      c.chat = await ownerChat(c);
      await api.post(`${V1}/users/me/likes/chat/${c.chat}`).set(c.owner.bearer).expect(200);
      return answerOf(api.delete(`${V1}/users/me/likes/chat/${c.chat}`).set(c.auth));
    },
    intact: async (c) =>
      expect(
        bodyOf<Ok<operations['readMyLikes']>>(await api.get(`${V1}/users/me/likes`).set(c.owner.bearer).expect(200))
          .chat_ids,
      ).to.include(c.chat),
  },
  // Profiles are readable by any signed-in user (as the original).
  {
    operationId: 'readUser',
    expect: signedIn(200),
    reveals: ['profile'],
    call: (c) => answerOf(api.get(`${V1}/users/${c.owner.id}`).set(c.auth)),
  },
  {
    operationId: 'getUserAvatar',
    expect: signedIn(307),
    reveals: ['profile'],
    call: (c) => answerOf(api.get(`${V1}/users/${c.owner.id}/avatar`).set(c.auth).redirects(0)),
  },
  {
    operationId: 'updateUser',
    ownerPerCell: true,
    // Users update themselves; admins anyone.
    expect: signedIn(200, 403, 200),
    call: (c) =>
      answerOf(
        api
          .put(`${V1}/users/${c.owner.id}`)
          .set(c.auth)
          .send({ username: uniqueName('renamed') }),
      ),
    intact: async (c) =>
      expect(
        bodyOf<Ok<operations['readUserMe']>>(await api.get(`${V1}/users/me`).set(c.owner.bearer).expect(200)).username,
      ).to.equal(c.owner.username),
  },
  {
    operationId: 'deleteUser',
    ownerPerCell: true,
    expect: adminOnly(200),
    call: (c) => answerOf(api.delete(`${V1}/users/${c.owner.id}`).set(c.auth)),
    intact: async (c) => void (await api.get(`${V1}/users/me`).set(c.owner.bearer).expect(200)),
  },
  {
    operationId: 'resetUserPassword',
    ownerPerCell: true,
    expect: adminOnly(200),
    call: (c) =>
      answerOf(api.put(`${V1}/users/${c.owner.id}/password`).set(c.auth).send({ new_password: 'taken-over-1' })),
    intact: async (c) =>
      void (await api
        .post(`${V1}/session/oauth2/token`)
        .type('form')
        .send({ username: c.owner.username, password: c.owner.password })
        .expect(200)),
  },
  {
    operationId: 'loginForAccessToken',
    variant: "with the owner's password",
    expect: everyone(200),
    reveals: ['token'],
    call: (c) =>
      answerOf(
        api
          .post(`${V1}/session/oauth2/token`)
          .set(c.auth)
          .type('form')
          .send({ username: c.owner.username, password: c.owner.password }),
      ),
  },
  {
    operationId: 'wechatLogin',
    expect: everyone(200),
    call: (c) => {
      const code = marker('wx-code');
      wechat.sessions.set(code, { openid: marker('openid'), session_key: marker('key') });
      return answerOf(api.get(`${V1}/session/wechat/token`).query({ code }).set(c.auth));
    },
  },
  {
    operationId: 'wechatRefresh',
    variant: 'each caller with a refresh token of its own; the owner a WeChat user',
    // Refresh tokens only: another user's (or an admin's) is no WeChat session, so 401.
    expect: { ...signedIn(200, 401, 401) },
    call: async (c) => {
      const code = marker('wx-code');
      wechat.sessions.set(code, { openid: marker('openid'), session_key: marker('key') });
      const session = bodyOf<Ok<operations['wechatLogin']>>(
        await api.get(`${V1}/session/wechat/token`).query({ code }).expect(200),
      );
      c.secrets.push({ kind: 'token', value: session.refresh_token }, { kind: 'token', value: session.access_token });
      const sub = (u: { id: number }) => ({ sub: String(u.id), refresh: true });
      const wechatUser = jwt.decode(session.refresh_token, { json: true })!.sub;
      const refresh: Record<Caller, string | undefined> = {
        anonymous: undefined,
        'garbage token': 'not-a-token',
        'expired token': mintToken({ sub: wechatUser, refresh: true }, { expiresIn: -60 }),
        'banned user': mintToken(sub(c.deleted)),
        'another user': mintToken(sub(c.other)),
        owner: session.refresh_token,
        admin: mintToken(sub(c.admin)),
      };
      const token = refresh[c.caller];
      return answerOf(api.get(`${V1}/session/wechat/refresh`).set(token ? { Authorization: `Bearer ${token}` } : {}));
    },
  },
  {
    operationId: 'listChats',
    expect: signedIn(200),
    call: async (c) => {
      await ownerChat(c);
      return answerOf(api.get(`${V1}/chats`).query({ limit: 100 }).set(c.auth));
    },
  },
  {
    operationId: 'createChat',
    variant: "on the owner's private preset",
    // As the original: a chat may use any existing preset; its answer holds the chat's messages only.
    expect: signedIn(200),
    call: async (c) =>
      answerOf(
        api
          .post(`${V1}/chats`)
          .set(c.auth)
          .send({ preset_id: await ownerPreset(c), title: 'Mine', messages: [message('user', 'hello')] }),
      ),
  },
  {
    operationId: 'readChat',
    variant: 'a private chat',
    // No admin bypass for reading (as the original).
    expect: signedIn(200, 403, 403),
    call: async (c) => answerOf(api.get(`${V1}/chats/${await ownerChat(c)}`).set(c.auth)),
  },
  {
    operationId: 'readChat',
    variant: 'a shared chat: the reader gets a private copy',
    expect: signedIn(200),
    reveals: ['content'],
    call: async (c) => answerOf(api.get(`${V1}/chats/${await ownerChat(c, 'shared')}`).set(c.auth)),
  },
  {
    operationId: 'updateChat',
    expect: signedIn(200, 403, 200),
    call: async (c) => {
      c.chat = await ownerChat(c);
      const preset = await ownerPreset(c);
      return answerOf(
        api
          .put(`${V1}/chats/${c.chat}`)
          .set(c.auth)
          .send({ preset_id: preset, title: 'Replaced', messages: [message('user', 'replaced')] }),
      );
    },
    intact: ownerChatReadable,
  },
  {
    operationId: 'deleteChat',
    expect: signedIn(200, 403, 200),
    call: async (c) => answerOf(api.delete(`${V1}/chats/${(c.chat = await ownerChat(c))}`).set(c.auth)),
    intact: ownerChatReadable,
  },
  {
    operationId: 'listPresets',
    expect: signedIn(200),
    call: async (c) => {
      await ownerPreset(c);
      return answerOf(api.get(`${V1}/presets`).query({ limit: 100 }).set(c.auth));
    },
  },
  {
    operationId: 'createPreset',
    expect: signedIn(200),
    call: (c) =>
      answerOf(
        api
          .post(`${V1}/presets`)
          .set(c.auth)
          .send({ title: 'Mine', messages: [message('system', 'be brief')] }),
      ),
  },
  {
    operationId: 'readPreset',
    variant: 'a private preset',
    expect: signedIn(200, 403, 403),
    call: async (c) => answerOf(api.get(`${V1}/presets/${await ownerPreset(c)}`).set(c.auth)),
  },
  {
    operationId: 'updatePreset',
    expect: signedIn(200, 403, 200),
    call: async (c) =>
      answerOf(
        api
          .put(`${V1}/presets/${(c.preset = await ownerPreset(c))}`)
          .set(c.auth)
          .send({ title: 'Replaced', messages: [message('system', 'replaced')] }),
      ),
    intact: async (c) =>
      expect(
        JSON.stringify(
          bodyOf<Ok<operations['readPreset']>>(
            await api.get(`${V1}/presets/${c.preset}`).set(c.owner.bearer).expect(200),
          ).messages,
        ),
      ).to.include('preset-prompt-'),
  },
  {
    operationId: 'deletePreset',
    expect: signedIn(200, 403, 200),
    call: async (c) => answerOf(api.delete(`${V1}/presets/${(c.preset = await ownerPreset(c))}`).set(c.auth)),
    intact: async (c) => void (await api.get(`${V1}/presets/${c.preset}`).set(c.owner.bearer).expect(200)),
  },
  {
    operationId: 'createRedeemCode',
    expect: adminOnly(200),
    call: (c) => {
      c.code = marker('code').toUpperCase();
      return answerOf(api.post(`${V1}/codes`).set(c.auth).send({ redeem_code: c.code, value: 5 }));
    },
    intact: async (c) => void (await api.get(`${V1}/codes/${c.code}`).expect(422)),
  },
  // Public as the original, and rate-limited (A8).
  {
    operationId: 'readRedeemCode',
    expect: everyone(200),
    call: async (c) => answerOf(api.get(`${V1}/codes/${await newCode()}`).set(c.auth)),
  },
  {
    operationId: 'deleteRedeemCode',
    expect: adminOnly(200),
    call: async (c) => answerOf(api.delete(`${V1}/codes/${(c.code = await newCode())}`).set(c.auth)),
    intact: async (c) => void (await api.get(`${V1}/codes/${c.code}`).expect(200)),
  },
  {
    operationId: 'createTask',
    variant: "on the owner's chat",
    // No admin bypass for tasks on another's chat (as the original); the others have credits.
    expect: signedIn(200, 403, 403),
    call: async (c) => {
      await giveCredits(server, c.owner.id, 1000);
      return answerOf(
        api
          .post(`${V1}/tasks`)
          .set(c.auth)
          .send({ chat_id: (c.chat = await ownerChat(c)), type: 'chat_generation' }),
      );
    },
    intact: async (c) => expect(await server.db('aideer_tasks').where({ chat_id: c.chat })).to.have.length(0),
  },
  // Tasks are public by id (security: []): the random id is the capability, as in the original.
  {
    operationId: 'readTask',
    ownerPerCell: true,
    expect: everyone(200),
    call: async (c) => answerOf(api.get(`${V1}/tasks/${await ownerTask(c)}`).set(c.auth)),
  },
  {
    operationId: 'deleteTask',
    ownerPerCell: true,
    variant: 'a finished task',
    expect: everyone(200),
    call: async (c) => answerOf(api.delete(`${V1}/tasks/${await ownerTask(c)}`).set(c.auth)),
  },
  {
    operationId: 'streamTask',
    ownerPerCell: true,
    variant: 'a finished task',
    expect: everyone(200),
    reveals: ['content'],
    call: async (c) => {
      const stream = await sse(server.url, `${V1}/tasks/${await ownerTask(c)}/stream`, c.auth);
      await stream.done;
      return { status: stream.status, body: stream.body ?? stream.events, text: JSON.stringify(stream.events) };
    },
  },
  // The debug helpers exist only with DEBUG=true (A12); this server runs without.
  ...(['initDatabase', 'createAdmin', 'dropDatabase'] as const).map((operationId): AideerRow => ({
    operationId,
    variant: 'DEBUG off',
    expect: everyone(404),
    call: (c) =>
      answerOf(
        api
          .get(`${V1}/utils/${{ initDatabase: 'init', createAdmin: 'admin', dropDatabase: 'drop' }[operationId]}`)
          .set(c.auth),
      ),
  })),
];

// ── One-API ─────────────────────────────────────────────────────────────────────────────────────

interface OneApiCell extends Cell<Session> {
  self?: Session;
  banned: Session;
}

/** Signed-in operations: banned users are 403 once their token is recognised (O2). */
const member = (owner: number, other = owner, admin = owner): Statuses => ({
  anonymous: 401,
  'garbage token': 401,
  'expired token': 401,
  'banned user': 403,
  'another user': other,
  owner,
  admin,
});
/** The owner's topic or subscription: another user's is 403, with no admin bypass (O8). */
const ownedOnly = member(200, 403, 403);

async function ownerTopic(cell: OneApiCell): Promise<number> {
  const name = marker('topic');
  const said = marker('said');
  cell.secrets.push({ kind: 'content', value: name }, { kind: 'content', value: said });
  const topic = bodyOf<Ok<oneapi['createTopic']>>(
    await api.post(`${API}/topics`).set(authHeaders(cell.owner)).send({ topic_name: name, model: 'echo' }).expect(200),
  );
  await api
    .post(`${API}/topics/${topic.data.id}/messages`)
    .set(authHeaders(cell.owner))
    .send({ content: said })
    .expect(200);
  return topic.data.id;
}

async function ownerSubscription(cell: OneApiCell): Promise<number> {
  const name = marker('sub');
  cell.secrets.push({ kind: 'content', value: name });
  return bodyOf<Ok<oneapi['createSubscription']>>(
    await api.post(`${API}/subscriptions`).set(authHeaders(cell.owner)).send({ topic_name: name }).expect(200),
  ).data.id;
}

const messageCount = async (c: OneApiCell & { topic?: number }) =>
  bodyOf<Ok<oneapi['listTopicMessages']>>(
    await api.get(`${API}/topics/${c.topic}/messages`).set(authHeaders(c.owner)).expect(200),
  ).data.total;

const subscriptionStatus = async (c: OneApiCell & { subscription?: number }) => {
  const list = bodyOf<Ok<oneapi['listSubscriptions']>>(
    await api.get(`${API}/subscriptions`).query({ size: 100 }).set(authHeaders(c.owner)).expect(200),
  ).data.subscriptions;
  return list.find((s) => s.id === c.subscription)?.status;
};

type OneApiRow = Row<OneApiCell & { topic?: number; subscription?: number }>;

const oneApiRows: OneApiRow[] = [
  // Sign-in routes take no credentials: whatever a caller sends is ignored.
  {
    operationId: 'sendPhoneVerification',
    expect: everyone(200),
    call: (c) =>
      answerOf(api.get(`${API}/phone_verification`).query({ phone: uniquePhone(), purpose: 'register' }).set(c.auth)),
  },
  {
    operationId: 'registerUser',
    expect: everyone(200),
    call: async (c) => {
      const phone = uniquePhone();
      return answerOf(
        api
          .post(`${API}/user/register`)
          .set(c.auth)
          .send({ phone, phone_verification_code: await requestCode(api, phone, 'register') }),
      );
    },
  },
  {
    operationId: 'loginUser',
    ownerPerCell: true,
    variant: "with the caller's own phone (the owner's for callers that are no user)",
    expect: { ...everyone(200), 'banned user': 403 },
    reveals: ['token', 'phone', 'profile'],
    call: async (c) => {
      const phone = (c.caller === 'banned user' ? c.banned : (c.self ?? c.owner)).phone;
      return answerOf(
        api
          .post(`${API}/user/login`)
          .set(c.auth)
          .send({ phone, phone_verification_code: await requestCode(api, phone, 'login') }),
      );
    },
  },
  { operationId: 'getSelf', expect: member(200), call: (c) => answerOf(api.get(`${API}/user/self`).set(c.auth)) },
  {
    operationId: 'updateSelf',
    ownerPerCell: true,
    expect: member(200),
    call: (c) => answerOf(api.put(`${API}/user/self`).set(c.auth).send({ school: 'Matrix school' })),
    intact: async (c) =>
      expect(
        bodyOf<Ok<oneapi['getSelf']>>(await api.get(`${API}/user/self`).set(authHeaders(c.owner)).expect(200)).data
          .school,
      ).to.not.equal('Matrix school'),
  },
  {
    operationId: 'logoutUser',
    ownerPerCell: true,
    expect: member(200),
    call: (c) => answerOf(api.get(`${API}/user/logout`).set(c.auth)),
    intact: async (c) => void (await api.get(`${API}/user/self`).set(authHeaders(c.owner)).expect(200)),
  },
  {
    operationId: 'listTopics',
    expect: member(200),
    call: async (c) => {
      await ownerTopic(c);
      return answerOf(api.get(`${API}/topics`).query({ size: 100 }).set(c.auth));
    },
  },
  {
    operationId: 'createTopic',
    expect: member(200),
    call: (c) => answerOf(api.post(`${API}/topics`).set(c.auth).send({ topic_name: 'Mine', model: 'echo' })),
  },
  {
    operationId: 'deleteTopic',
    expect: ownedOnly,
    call: async (c) => answerOf(api.delete(`${API}/topics/${(c.topic = await ownerTopic(c))}`).set(c.auth)),
    intact: async (c) => expect(await messageCount(c)).to.equal(2),
  },
  {
    operationId: 'listTopicMessages',
    expect: ownedOnly,
    call: async (c) => answerOf(api.get(`${API}/topics/${await ownerTopic(c)}/messages`).set(c.auth)),
  },
  {
    operationId: 'sendTopicMessage',
    expect: ownedOnly,
    call: async (c) =>
      answerOf(
        api
          .post(`${API}/topics/${(c.topic = await ownerTopic(c))}/messages`)
          .set(c.auth)
          .send({ content: 'hello' }),
      ),
    intact: async (c) => expect(await messageCount(c)).to.equal(2),
  },
  {
    operationId: 'listSubscriptions',
    expect: member(200),
    call: async (c) => {
      await ownerSubscription(c);
      return answerOf(api.get(`${API}/subscriptions`).query({ size: 100 }).set(c.auth));
    },
  },
  {
    operationId: 'createSubscription',
    expect: member(200),
    call: (c) =>
      answerOf(
        api
          .post(`${API}/subscriptions`)
          .set(c.auth)
          .send({ topic_name: marker('mine') }),
      ),
  },
  {
    operationId: 'deleteSubscription',
    expect: ownedOnly,
    call: async (c) =>
      answerOf(api.delete(`${API}/subscriptions/${(c.subscription = await ownerSubscription(c))}`).set(c.auth)),
    intact: async (c) => expect(await subscriptionStatus(c)).to.equal(1),
  },
  {
    operationId: 'cancelSubscription',
    expect: ownedOnly,
    call: async (c) =>
      answerOf(api.put(`${API}/subscriptions/${(c.subscription = await ownerSubscription(c))}/cancel`).set(c.auth)),
    intact: async (c) => expect(await subscriptionStatus(c)).to.equal(1),
  },
  {
    operationId: 'reactivateSubscription',
    variant: 'a cancelled subscription',
    expect: ownedOnly,
    call: async (c) => {
      c.subscription = await ownerSubscription(c);
      await api.put(`${API}/subscriptions/${c.subscription}/cancel`).set(authHeaders(c.owner)).expect(200);
      return answerOf(api.put(`${API}/subscriptions/${c.subscription}/reactivate`).set(c.auth));
    },
    intact: async (c) => expect(await subscriptionStatus(c)).to.equal(0),
  },
  {
    operationId: 'listSubscriptionArticles',
    expect: ownedOnly,
    call: async (c) => answerOf(api.get(`${API}/subscriptions/${await ownerSubscription(c)}/articles`).set(c.auth)),
  },
  {
    operationId: 'createArticle',
    // Admins (role ≥ 10) only (O11).
    expect: member(403, 403, 200),
    call: (c) =>
      answerOf(
        api
          .post(`${API}/articles`)
          .set(c.auth)
          .send({ title: 'Matrix', article_url: `https://example.com/${marker('a')}` }),
      ),
  },
];

/**
 * One row's seven cells, run at once on fresh resources of one owner; then one test per
 * cell: the documented status, no data of the owner's unless the row reveals it, and after a
 * refusal the owner's resource as it was.
 */
function cellsOf<O extends { id: number; username: string; phone?: string }, C extends Cell<O>>(
  row: Row<C>,
  newOwner: () => Promise<O>,
  makeCell: (caller: Caller, owner: O) => C | Promise<C>,
  opts: { title: (caller: Caller) => string; adminSees: Reveal[]; refusals: Partial<Record<Caller, unknown>> },
): void {
  describe(`${row.operationId}${row.variant ? ` (${row.variant})` : ''}`, () => {
    const outcomes = new Map<Caller, { cell: C; answer: Answer } | { error: unknown }>();
    before(async () => {
      const shared = row.ownerPerCell ? undefined : await newOwner();
      await Promise.all(
        CALLERS.map(async (caller) => {
          try {
            const cell = await makeCell(caller, shared ?? (await newOwner()));
            outcomes.set(caller, { cell, answer: await row.call(cell) });
          } catch (error) {
            outcomes.set(caller, { error });
          }
        }),
      );
    });
    for (const caller of CALLERS) {
      it(`when ${opts.title(caller)} calls it, then ${row.expect[caller]}`, async () => {
        const outcome = outcomes.get(caller)!;
        if ('error' in outcome) throw outcome.error;
        const { cell, answer } = outcome;
        expect(answer.status, JSON.stringify(answer.body)).to.equal(row.expect[caller]);
        // Refused for the reason the caller gives: no token, a bad one, a gone or banned user.
        if (answer.status === 401 || answer.status === 403) {
          if (caller in opts.refusals) expect(answer.body).to.deep.equal(opts.refusals[caller]);
        }
        if (caller !== 'owner') {
          const allowed = new Set<string>([...(row.reveals ?? []), ...(caller === 'admin' ? opts.adminSees : [])]);
          expect(leaks(answer, cell.owner, cell.secrets, allowed), "the owner's data in the answer").to.deep.equal([]);
        }
        if (answer.status >= 400 && row.intact) await row.intact(cell);
      });
    }
  });
}

describe('Authorisation matrix', () => {
  before(async () => {
    wechat = await startFakeWeChat();
    server = await startServer({
      LLM_ECHO_DELAY_MS: '0',
      WECHAT_APPID: 'wx-test-app',
      WECHAT_SECRET: 'wx-test-secret',
      WECHAT_API_BASE_URL: wechat.url,
    });
    api = client(server.url);
  });
  after(async () => {
    await server.close();
    await wechat.close();
  });

  it('when an operation is in either spec, then the matrix has a row for it, with documented statuses only', () => {
    const rows = new Map<string, Statuses[]>();
    for (const [name, list] of [
      ['aideer', aideerRows],
      ['oneapi', oneApiRows],
    ] as const) {
      for (const row of list as Row<unknown>[])
        rows.set(`${name} ${row.operationId}`, [...(rows.get(`${name} ${row.operationId}`) ?? []), row.expect]);
    }
    const operations = contract.operations();
    const missing = operations
      .filter((op) => !rows.has(`${op.api} ${op.operationId}`))
      .map((op) => `${op.api} ${op.operationId}`);
    expect(missing, 'operations without a row').to.deep.equal([]);
    const known = new Set(operations.map((op) => `${op.api} ${op.operationId}`));
    expect(
      [...rows.keys()].filter((k) => !known.has(k)),
      'rows of no operation',
    ).to.deep.equal([]);
    for (const op of operations) {
      const security: Record<string, string[]>[] = op.operation.security ?? contract.docs[op.api].security ?? [];
      const schemes = security.filter((alternative) => Object.keys(alternative).length > 0);
      for (const statuses of rows.get(`${op.api} ${op.operationId}`)!) {
        const where = `${op.operationId}: ${JSON.stringify(statuses)}`;
        for (const [caller, status] of Object.entries(statuses))
          expect(op.responses, `${op.operationId} for ${caller}`).to.have.property(String(status));
        // The table agrees with the spec's security: public operations ignore credentials, signed-in
        // ones refuse callers without any, and the admin scope refuses everyone else.
        if (schemes.length === 0)
          expect([statuses['garbage token'], statuses['expired token']], where).to.deep.equal([
            statuses.anonymous,
            statuses.anonymous,
          ]);
        if (schemes.length === security.length && schemes.length > 0) expect(statuses.anonymous, where).to.equal(401);
        if (schemes.some((alternative) => Object.values(alternative).flat().includes('admin')))
          expect([statuses.owner, statuses['another user']], where).to.deep.equal([403, 403]);
      }
    }
  });

  describe('forged and misused credentials, on every signed-in operation', () => {
    // Path parameters by name: auth is checked before the request is validated, but a real shape
    // keeps the answer about the credentials alone.
    const sample: Record<string, string> = {
      chat_id: ZERO_UUID,
      preset_id: ZERO_UUID,
      task_id: ZERO_UUID,
      user_id: '1',
      id: '1',
      code: 'NO-SUCH-CODE',
    };
    const signedInOperations = (name: 'aideer' | 'oneapi') =>
      contract.operations().filter((op) => {
        if (op.api !== name) return false;
        const doc = contract.docs[name];
        const security: Record<string, string[]>[] = op.operation.security ?? doc.security ?? [];
        // Where `{}` is an alternative (AIDeer sign-up) the token is optional: the matrix covers it.
        return security.length > 0 && security.every((alternative) => Object.keys(alternative).length > 0);
      });
    const send = (
      op: { api: string; method: string; template: string },
      headers: Record<string, string>,
      query: Record<string, string> = {},
    ) =>
      answerOf(
        (api as unknown as Record<string, (path: string) => ReturnType<Client['get']>>)
          [op.method](
            `${op.api === 'aideer' ? V1 : API}${op.template.replace(/\{(\w+)\}/g, (_, p: string) => sample[p] ?? '1')}`,
          )
          .query(query)
          .set(headers)
          .redirects(0),
      );

    it('when an AIDeer token is forged, of the wrong kind, or not in the header, then every signed-in operation refuses it and reveals nothing', async () => {
      const user = await signUp(api);
      const sub = String(user.id);
      const [header, payload] = user.token.split('.');
      // wechatRefresh takes refresh tokens: its forgeries are refresh tokens, so the kind check passes.
      const kinds = (refresh: boolean): [string, Record<string, string>, Record<string, string>?][] => {
        const claims = (c: Record<string, unknown>) => (refresh ? { ...c, refresh: true } : c);
        return [
          [
            'signed with another key',
            {
              Authorization: `Bearer ${mintToken(claims({ sub }), { expiresIn: 600 }, 'another-key-0123456789abcdefghijklmnopq')}`,
            },
          ],
          [
            'unsigned (alg none)',
            { Authorization: `Bearer ${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${payload}.` },
          ],
          ['with its signature cut off', { Authorization: `Bearer ${header}.${payload}.` }],
          ['of no user', { Authorization: `Bearer ${mintToken(claims({ sub: '2147483646' }))}` }],
          ['with a subject that is no id', { Authorization: `Bearer ${mintToken(claims({ sub: user.username }))}` }],
          [
            'as Basic credentials',
            { Authorization: `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}` },
          ],
          ['in the query string', {}, { access_token: user.token }],
        ];
      };
      const ops = signedInOperations('aideer');
      expect(ops).to.have.length.above(0);
      await Promise.all(
        ops.flatMap((op) => [
          ...kinds(op.operationId === 'wechatRefresh').map(async ([kind, headers, query]) => {
            const answer = await send(op, headers, query);
            expect(answer.status, `${op.operationId}, a token ${kind}: ${answer.text}`).to.equal(401);
            expect(answer.text, `${op.operationId}, a token ${kind}`).to.not.include(user.username);
          }),
          // A refresh token only refreshes; everything else needs an access token (A11).
          (async () => {
            const wrongKind = mintToken({ sub, ...(op.operationId === 'wechatRefresh' ? {} : { refresh: true }) });
            const answer = await send(op, { Authorization: `Bearer ${wrongKind}` });
            expect(answer.status, `${op.operationId}, a token of the wrong kind: ${answer.text}`).to.equal(400);
            expect(answer.body)
              .to.have.property('detail')
              .that.matches(/^Could not validate credentials: (Access|Refresh) token required$/);
          })(),
        ]),
      );
    });

    it('when a signed-in request fails validation, then its 422 echoes none of its headers (the token least of all)', async () => {
      const user = await signUp(api);
      const withBody = contract.operations().filter((op) => op.api === 'aideer' && op.operation.requestBody?.required);
      expect(withBody).to.have.length.above(0);
      await Promise.all(
        withBody.map(async (op) => {
          const answer = await send(op, { ...user.bearer, Cookie: 'session=cookie-secret' });
          // Admin-only operations refuse a plain user before looking at the body.
          expect(answer.status, `${op.operationId}: ${answer.text}`).to.be.oneOf([403, 422]);
          expect(answer.text, op.operationId).to.not.include(user.token).and.not.include('cookie-secret');
          if (answer.status === 422)
            expect((answer.body as { detail: unknown[] }).detail).to.deep.include({
              type: 'missing',
              loc: ['body'],
              msg: 'Field required',
              input: null,
            });
        }),
      );
    });

    it('when One-API credentials are mismatched, incomplete or logged out, then every signed-in operation answers 401 and reveals nothing', async () => {
      const owner = await newSession(api);
      const other = await newSession(api);
      const loggedOut = await login(api, owner.phone);
      await api.get(`${API}/user/logout`).set(authHeaders(loggedOut)).expect(200);
      const kinds: [string, Record<string, string>][] = [
        ["another user's token with the owner's UserID", { Authorization: other.token, UserID: String(owner.id) }],
        ["the owner's token with another user's UserID", { Authorization: owner.token, UserID: String(other.id) }],
        ["the owner's token without UserID", { Authorization: owner.token }],
        ['a UserID that is no id', { Authorization: owner.token, UserID: `${owner.id}abc` }],
        ['a UserID alone', { UserID: String(owner.id) }],
        ['a logged-out token', authHeaders(loggedOut)],
        ['an empty Bearer', { Authorization: 'Bearer ', UserID: String(owner.id) }],
      ];
      const ops = signedInOperations('oneapi');
      expect(ops).to.have.length.above(0);
      await Promise.all(
        ops.flatMap((op) =>
          kinds.map(async ([kind, headers]) => {
            const answer = await send(op, headers);
            expect(answer.status, `${op.operationId}, ${kind}: ${answer.text}`).to.equal(401);
            for (const secret of [owner.phone, owner.token, other.phone, other.token])
              expect(answer.text, `${op.operationId}, ${kind}`).to.not.include(secret);
          }),
        ),
      );
      // Bearer is accepted as well as the raw token (O3), and the owner's session is untouched.
      await api
        .get(`${API}/user/self`)
        .set({ Authorization: `Bearer ${owner.token}`, UserID: String(owner.id) })
        .expect(200);
    });
  });

  describe('AIDeer', () => {
    let other: AideerUser;
    let admin: AideerUser;
    let deleted: AideerUser;
    before(async () => {
      other = await signUp(api);
      admin = await signUpAdmin(api, server);
      deleted = await signUp(api);
      aideerAdmin = admin;
      await api.delete(`${V1}/users/${deleted.id}`).set(admin.bearer).expect(200);
      // Enough for any task: otherwise another user's task would stop at 402 before ownership.
      await giveCredits(server, other.id, 1_000_000);
    });

    const makeCell = (caller: Caller, owner: AideerUser): AideerCell => {
      const tokens: Record<Caller, string | undefined> = {
        anonymous: undefined,
        'garbage token': 'not-a-token',
        'expired token': mintToken({ sub: String(owner.id) }, { expiresIn: -60 }),
        // AIDeer has no ban: the nearest is an account deleted while its token is unexpired.
        'banned user': deleted.token,
        'another user': other.token,
        owner: owner.token,
        admin: admin.token,
      };
      const token = tokens[caller];
      return {
        caller,
        owner,
        self: ({ 'another user': other, owner, admin } as Partial<Record<Caller, AideerUser>>)[caller],
        auth: token ? { Authorization: `Bearer ${token}` } : {},
        secrets: [
          { kind: 'token', value: owner.token },
          { kind: 'password', value: owner.password },
        ],
        other,
        admin,
        deleted,
      };
    };
    // Admins manage users: they see profiles, never tokens, passwords or private text.
    const refusals = {
      anonymous: { detail: 'Not authenticated' },
      'garbage token': { detail: 'Could not validate credentials: Invalid token' },
      'expired token': { detail: 'Could not validate credentials: Invalid token' },
      'banned user': { detail: 'Could not validate credentials: User not found' },
    };
    for (const row of aideerRows)
      cellsOf(row, () => signUp(api), makeCell, {
        title: (caller) => (caller === 'banned user' ? 'a deleted user' : caller),
        adminSees: ['profile'],
        refusals,
      });
  });

  describe('One-API', () => {
    let other: Session;
    let admin: Session;
    let banned: Session;
    before(async () => {
      other = await newSession(api);
      admin = await newSession(api);
      banned = await newSession(api);
      await server.db('oneapi_users').where({ id: admin.id }).update({ role: ROLE.admin });
      await server.db('oneapi_users').where({ id: banned.id }).update({ status: STATUS.banned });
    });

    const refusals = {
      anonymous: { success: false, message: MESSAGES.noToken },
      'garbage token': { success: false, message: MESSAGES.badToken },
      'expired token': { success: false, message: MESSAGES.badToken },
      'banned user': { success: false, message: MESSAGES.banned },
    };
    for (const row of oneApiRows) {
      const makeCell = async (caller: Caller, owner: Session): Promise<OneApiCell> => {
        // Logging out ends the session it is called with: those cells get sessions of their own.
        const fresh = async (s: Session) => (row.operationId === 'logoutUser' ? login(api, s.phone) : s);
        const self =
          caller === 'another user'
            ? await fresh(other)
            : caller === 'admin'
              ? await fresh(admin)
              : caller === 'owner'
                ? owner
                : caller === 'banned user'
                  ? banned
                  : undefined;
        let auth: Record<string, string> = self ? authHeaders(self) : {};
        if (caller === 'garbage token') auth = { Authorization: 'not-a-token', UserID: String(owner.id) };
        if (caller === 'expired token') {
          const old = await login(api, owner.phone);
          await server
            .db('oneapi_tokens')
            .where({ token_hash: sha256(old.token) })
            .update({ expires_at: Date.now() - 1000 });
          auth = authHeaders(old);
        }
        return {
          caller,
          owner,
          self,
          auth,
          secrets: [
            { kind: 'token', value: owner.token },
            { kind: 'phone', value: owner.phone },
          ],
          banned,
        };
      };
      cellsOf(row, () => newSession(api), makeCell, { title: (caller) => caller, adminSees: [], refusals });
    }
  });
});
