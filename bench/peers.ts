// The peers, one per process (PEER=bare|express|express-oav|fastify), doing the project's read work
// over the same rows with the same JSON: One-API `GET /api/user/self` (sha256 of the token, a join
// of tokens and users), AIDeer `GET /api/v1/users/me` (HS256 JWT, a user read) and
// `GET /api/v1/chats?limit=10` (the chats and their messages), and the validation failure of
// `GET /api/phone_verification?phone=abc`. `bare` answers every path from a Map.
import crypto from 'node:crypto';
import http from 'node:http';
import jwt from 'jsonwebtoken';
import express from 'express';
import type { FastifyReply } from 'fastify';
import { createDb, prepare } from '../src/db.ts';
import { loadSpec } from '../src/spec.ts';
import type { ChatRow, MessageRow, UserRow } from '../src/aideer/store/rows.ts';
import { chatRead, userRead } from '../src/aideer/http/wire.ts';

// Node types every variable as possibly unset; run.ts sets all of these for a peer's process.
const { PEER, PORT, DATABASE_URL, DATA_DIR, JWT_SECRET, BARE_TOKEN, BARE_USER } = process.env as Record<string, string>;
const port = Number(PORT);
const jwtKey = crypto.createSecretKey(Buffer.from(JWT_SECRET));

interface OneApiUserRow {
  id: number;
  username: string;
  display_name: string;
  role: number;
  status: number;
  group: string;
  school: string;
  college: string;
  phone: string;
}

interface ChatsRead {
  chats: ChatRow[];
  messages: MessageRow[];
}

/** The reads every peer makes, as prepared statements or through knex. */
interface Store {
  oneapiUser(tokenHash: string, now: number): Promise<OneApiUserRow | undefined> | OneApiUserRow | undefined;
  aideerUser(id: number): Promise<UserRow | undefined> | UserRow | undefined;
  chats(ownerId: number, limit: number): Promise<ChatsRead> | ChatsRead;
}

const SELF_SQL =
  'SELECT u.id, u.username, u.display_name, u.role, u.status, u."group", u.school, u.college, u.phone FROM oneapi_tokens t JOIN oneapi_users u ON u.id = t.user_id WHERE t.token_hash = ? AND t.expires_at > ?';
const USER_SQL = 'SELECT * FROM aideer_users WHERE id = ?';
const CHATS_SQL = 'SELECT * FROM aideer_chats WHERE owner_id = ? ORDER BY create_time DESC, id DESC LIMIT ?';
const MESSAGES_SQL = `SELECT * FROM aideer_messages WHERE chat_id IN (SELECT id FROM aideer_chats WHERE owner_id = ? ORDER BY create_time DESC, id DESC LIMIT ?) ORDER BY chat_id, position`;

/** The project's own helper (src/db.ts): statements prepared once per pooled connection. */
function preparedStore(): Store {
  const db = createDb({ databaseUrl: DATABASE_URL || undefined, dataDir: DATA_DIR });
  const self = prepare<OneApiUserRow>(db, SELF_SQL);
  const user = prepare<UserRow>(db, USER_SQL);
  const chats = prepare<ChatRow>(db, CHATS_SQL);
  const messages = prepare<MessageRow>(db, MESSAGES_SQL);
  return {
    oneapiUser: (hash, now) => self.first(hash, now),
    aideerUser: (id) => user.first(id),
    chats: async (owner, limit) => ({
      chats: await chats.all(owner, limit),
      messages: await messages.all(owner, limit),
    }),
  };
}

function knexStore(): Store {
  const db = createDb({ databaseUrl: DATABASE_URL || undefined, dataDir: DATA_DIR });
  return {
    oneapiUser: (hash, now) =>
      db('oneapi_tokens as t')
        .join('oneapi_users as u', 'u.id', 't.user_id')
        .select(
          'u.id',
          'u.username',
          'u.display_name',
          'u.role',
          'u.status',
          'u.group',
          'u.school',
          'u.college',
          'u.phone',
        )
        .where('t.token_hash', hash)
        .andWhere('t.expires_at', '>', now)
        .first(),
    aideerUser: (id) => db('aideer_users').where({ id }).first(),
    chats: async (owner, limit) => {
      const chats = await db('aideer_chats')
        .where({ owner_id: owner })
        .orderBy([
          { column: 'create_time', order: 'desc' },
          { column: 'id', order: 'desc' },
        ])
        .limit(limit);
      const messages = chats.length
        ? await db('aideer_messages')
            .whereIn(
              'chat_id',
              chats.map((c: { id: string }) => c.id),
            )
            .orderBy(['chat_id', 'position'])
        : [];
      return { chats, messages };
    },
  };
}

// ── the work itself, shared by the framework peers ──

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
type Reply = { status: number; body: unknown };
const envelope = (status: number, message: string): Reply => ({ status, body: { success: false, message } });

/** `userId` is the UserID header as the frameworks give it: a repeated header (an array) matches no id. */
async function self(
  store: Store,
  authorization: string | undefined,
  userId: string | string[] | undefined,
): Promise<Reply> {
  const token = (authorization ?? '').replace(/^Bearer\s+/i, '').trim();
  if (!token) return envelope(401, '未提供访问令牌');
  const user = await store.oneapiUser(sha256(token), Date.now());
  if (!user || String(user.id) !== userId) return envelope(401, '访问令牌无效');
  if (user.status === 2) return envelope(403, '用户已被封禁');
  return { status: 200, body: { success: true, message: '', data: { ...user, access_token: token } } };
}

async function aideerCaller(store: Store, authorization: string | undefined): Promise<UserRow | undefined> {
  const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : '';
  try {
    // verify answers a string only for a token whose payload is no JSON object; the project signs claims.
    const claims = jwt.verify(token, jwtKey, { algorithms: ['HS256'] }) as jwt.JwtPayload;
    return (await store.aideerUser(Number(claims.sub))) ?? undefined;
  } catch {
    return undefined;
  }
}

const unauthorized: Reply = { status: 401, body: { detail: 'Could not validate credentials: Invalid token' } };

async function me(store: Store, authorization: string | undefined): Promise<Reply> {
  const u = await aideerCaller(store, authorization);
  if (!u) return unauthorized;
  return { status: 200, body: userRead(u) };
}

async function chats(store: Store, authorization: string | undefined, limit: number): Promise<Reply> {
  const u = await aideerCaller(store, authorization);
  if (!u) return unauthorized;
  const { chats, messages } = await store.chats(u.id, limit);
  // Keyed as the messages' chat_id is typed: the list reads no preset's message (chat_id null).
  const byChat = new Map<string | null, MessageRow[]>(chats.map((c) => [c.id, []]));
  for (const m of messages) byChat.get(m.chat_id)?.push(m);
  return { status: 200, body: chats.map((chat) => chatRead({ chat, messages: byChat.get(chat.id) ?? [] })) };
}

const PHONE = /^1[3-9]\d{9}$/;
const phoneRefused: Reply = envelope(400, '手机号格式不正确');
const phoneOk: Reply = { status: 200, body: { success: true, message: '验证码发送成功' } };

// ── the peers ──

function bare(): http.Server {
  const users = new Map([[BARE_TOKEN, BARE_USER]]);
  return http.createServer((req, res) => {
    const user = users.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
    res.writeHead(user ? 200 : 401, { 'Content-Type': 'application/json' });
    res.end(user ?? '{"success":false}');
  });
}

function expressPeer(store: Store, validated: boolean): Promise<http.Server> | http.Server {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const send = (res: express.Response, r: Reply) => res.status(r.status).json(r.body);
  const routes = () => {
    app.get('/api/user/self', async (req, res) =>
      send(res, await self(store, req.headers.authorization, req.headers.userid)),
    );
    app.get('/api/v1/users/me', async (req, res) => send(res, await me(store, req.headers.authorization)));
    app.get('/api/v1/chats', async (req, res) =>
      send(res, await chats(store, req.headers.authorization, Number(req.query.limit ?? 10))),
    );
    app.get('/api/phone_verification', (req, res) => {
      // String() of whatever the query parser gave: a string, an array of them for a repeated key
      // (joined with commas), or an object, which reads "[object Object]" and so is no phone.
      const phone: unknown = req.query.phone;
      return send(res, validated || PHONE.test(String(phone)) ? phoneOk : phoneRefused);
    });
  };
  if (!validated) {
    routes();
    return http.createServer(app);
  }
  return (async () => {
    const oav = await import('express-openapi-validator');
    // The CommonJS exports, named or (when Node's import finds no names) on `default`.
    const middleware = oav.middleware ?? oav.default.middleware;
    type ApiSpec = Exclude<Parameters<typeof middleware>[0]['apiSpec'], string>;
    const { default: RefParser } = await import('@apidevtools/json-schema-ref-parser');
    // Each document's `servers` URL (/api/v1, /api) places its paths; the other's are ignored. Its
    // meta-schema check refuses AIDeer's relative OAuth2 tokenUrl, which 3.1 allows in practice.
    for (const name of ['aideer', 'oneapi'] as const) {
      // dereference answers the document type it is given: here the validator's, which these 3.1 documents are.
      app.use(
        middleware({
          apiSpec: await RefParser.dereference<ApiSpec>(loadSpec(name)),
          validateApiSpec: false,
          validateRequests: true,
          validateResponses: false,
          ignoreUndocumented: true,
          validateSecurity: false,
        }),
      );
    }
    routes();
    app.use(
      (
        err: { status?: number; message: string },
        req: express.Request,
        res: express.Response,
        _next: express.NextFunction,
      ) => {
        if (!err.status || err.status >= 500) console.error(err);
        if (req.path.startsWith('/api/v1')) res.status(err.status ?? 500).json({ detail: err.message });
        else
          send(
            res,
            req.path === '/api/phone_verification' && err.status === 400
              ? phoneRefused
              : envelope(err.status ?? 500, err.message),
          );
      },
    );
    return http.createServer(app);
  })();
}

/** The parts of a dereferenced document (no `$ref` left) that the fastify peer reads. */
interface DereferencedSpec {
  paths: Record<string, { get: SpecOperation }>;
  components: { securitySchemes: Record<string, SecurityScheme> };
}

interface SpecOperation {
  parameters?: { name: string; in: string; required?: boolean; schema: unknown }[];
  security?: Record<string, string[]>[];
  responses: Record<string, { content: Record<string, { schema: unknown }> }>;
}

type SecurityScheme = { type: 'apiKey'; name: string } | { type: 'http' | 'oauth2' | 'openIdConnect' | 'mutualTLS' };

/** Route schemas from the spec: query parameters, the security headers, the 200 response. */
async function fastifyPeer(store: Store): Promise<http.Server> {
  const { default: Fastify } = await import('fastify');
  const { default: RefParser } = await import('@apidevtools/json-schema-ref-parser');
  // dereference is generic in the document it answers: the same document with every $ref replaced.
  const specs = {
    oneapi: await RefParser.dereference<DereferencedSpec>(loadSpec('oneapi')),
    aideer: await RefParser.dereference<DereferencedSpec>(loadSpec('aideer')),
  };
  const schemaOf = (api: 'oneapi' | 'aideer', p: string) => {
    const op = specs[api].paths[p].get;
    const query = (op.parameters ?? []).filter((x) => x.in === 'query');
    const headers: Record<string, unknown> = {};
    const required: string[] = [];
    for (const requirement of op.security ?? []) {
      for (const name of Object.keys(requirement)) {
        const scheme = specs[api].components.securitySchemes[name];
        const header = (scheme.type === 'apiKey' ? scheme.name : 'authorization').toLowerCase();
        headers[header] =
          scheme.type === 'apiKey' ? { type: 'string', minLength: 1 } : { type: 'string', pattern: '^Bearer ' };
        required.push(header);
      }
    }
    return {
      querystring: {
        type: 'object',
        properties: Object.fromEntries(query.map((x) => [x.name, x.schema])),
        required: query.filter((x) => x.required).map((x) => x.name),
      },
      headers: { type: 'object', properties: headers, required },
      response: { 200: op.responses['200'].content['application/json'].schema },
    };
  };
  let server!: http.Server;
  const app = Fastify({
    logger: false,
    ajv: { customOptions: { strict: false } },
    serverFactory: (handler) => (server = http.createServer(handler)),
  });
  const send = (reply: FastifyReply, r: Reply) => reply.code(r.status).send(r.body);
  app.get('/api/user/self', { schema: schemaOf('oneapi', '/user/self') }, async (req, reply) =>
    send(reply, await self(store, req.headers.authorization, req.headers.userid)),
  );
  app.get('/api/v1/users/me', { schema: schemaOf('aideer', '/users/me') }, async (req, reply) =>
    send(reply, await me(store, req.headers.authorization)),
  );
  // The route's schema gives limit its default and makes it a number (fastify's ajv coerces the query).
  const chatsSchema = { schema: schemaOf('aideer', '/chats') };
  app.get<{ Querystring: { limit: number } }>('/api/v1/chats', chatsSchema, async (req, reply) =>
    send(reply, await chats(store, req.headers.authorization, req.query.limit)),
  );
  app.get('/api/phone_verification', { schema: schemaOf('oneapi', '/phone_verification') }, async (_req, reply) =>
    send(reply, phoneOk),
  );
  app.setErrorHandler((err: { statusCode?: number; message: string; validation?: unknown }, req, reply) => {
    if (err.validation && req.url.startsWith('/api/phone_verification')) return send(reply, phoneRefused);
    return send(
      reply,
      req.url.startsWith('/api/v1')
        ? { status: err.statusCode ?? 500, body: { detail: err.message } }
        : envelope(err.statusCode ?? 500, err.message),
    );
  });
  await app.ready();
  return server;
}

const server =
  PEER === 'bare'
    ? bare()
    : PEER === 'express'
      ? expressPeer(preparedStore(), false)
      : PEER === 'express-oav'
        ? await expressPeer(knexStore(), true)
        : PEER === 'fastify'
          ? await fastifyPeer(preparedStore())
          : undefined;
if (!server) throw new Error(`unknown PEER ${PEER}`);
(await server).listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
