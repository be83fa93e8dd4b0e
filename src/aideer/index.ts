// AIDeer under /api/v1: the operations of openapi/aideer.yaml.
import express, { type Router } from 'express';
import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import { bindApi } from '../http/bind.ts';
import { createLimiter, limitRequests } from '../http/rateLimit.ts';
import { loadSpec } from '../spec.ts';
import { devSecret } from '../secrets.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { aideerErrors, detail } from './errors.ts';
import { aideerAuthFrom, bearerAuthenticator, type AideerAuth } from './auth.ts';
import { ensureAdmin, Users } from './users.ts';
import { Passwords } from './passwords.ts';
import { Tokens } from './tokens.ts';
import { WeChat } from './wechat.ts';
import { AVATAR_MAX_BYTES, AvatarStore } from './avatars.ts';
import { usersHandlers } from './handlers/users.ts';
import { sessionHandlers } from './handlers/session.ts';
import { codesHandlers } from './handlers/codes.ts';
import { utilsHandlers } from './handlers/utils.ts';
import { tasksHandlers } from './handlers/tasks.ts';
import { Chats, Likes, Presets } from './chats.ts';
import { chatsHandlers } from './handlers/chats.ts';
import { presetsHandlers } from './handlers/presets.ts';
import { likesHandlers } from './handlers/likes.ts';
import { ModelRouter } from './models.ts';
import { Tasks } from './tasks.ts';
import type { AideerHandlers } from './types.ts';

export interface AideerDeps {
  config: Config;
  db: Knex;
  logger: Logger;
  redis?: Redis;
}

export interface Aideer {
  router: Router;
  users: Users;
  tasks: Tasks;
  models: ModelRouter;
  /** Creates ADMIN_USER at start-up when it is set and missing (outside DEBUG, A12). */
  ensureAdmin(): Promise<'unset' | 'exists' | 'created'>;
  /** Stops starting tasks, lets running ones finish until `deadlineAt`, then fails the rest (see Tasks.drain). */
  drain(deadlineAt: number): Promise<void>;
  /** Stops the task sweep and the tasks this process runs. */
  close(): Promise<void>;
}

export async function createAideer({ config, db, logger, redis }: AideerDeps): Promise<Aideer> {
  const users = new Users(db);
  const passwords = new Passwords(config.bcryptRounds);
  const tokens = new Tokens({ secret: config.jwtSecret ?? devSecret(config.dataDir, 'jwtSecret'), accessMinutes: config.jwtAccessTokenExpires, refreshMinutes: config.jwtRefreshTokenExpires });
  const wechat = new WeChat(db, { baseUrl: config.wechatApiBaseUrl, appId: config.wechatAppId, secret: config.wechatSecret });
  const avatars = new AvatarStore(config.staticDir);
  const admin = { user: config.adminUser, password: config.adminPasswd };
  const chats = new Chats(db);
  const presets = new Presets(db);
  const likes = new Likes(db);
  const models = new ModelRouter(config);
  const pingMs = config.ssePingSeconds * 1000;
  const tasks = new Tasks(db, { chats, users, router: models, logger }, {
    progressWriteMs: config.taskProgressWriteMs,
    maxAttempts: config.taskMaxAttempts,
    runnerLeaseMs: config.taskLeaseSeconds * 1000,
    maxActivePerUser: config.maxActiveTasksPerUser,
    ttlMs: config.taskTtlSeconds * 1000,
    titlePrompt: config.titleGenerationPrompt,
    streamLeaseMs: pingMs * 2 + 5000,
  });
  // Tasks a stopped server left running are failed before anything is served.
  await tasks.startMaintenance();

  const handlers = {
    ...usersHandlers({ users, passwords, avatars, publicBaseUrl: config.publicBaseUrl }),
    ...sessionHandlers({ users, passwords, tokens, wechat }),
    ...codesHandlers({ users }),
    ...utilsHandlers({ db, debug: config.debug, users, passwords, admin }),
    ...tasksHandlers({ tasks, chats, pingMs }),
    ...chatsHandlers({ chats, presets }),
    ...presetsHandlers({ presets }),
    ...likesHandlers({ likes }),
  } satisfies AideerHandlers;

  const authenticate = bearerAuthenticator(users, tokens);
  const api = await bindApi<AideerAuth>({
    name: 'AIDeer (openapi/aideer.yaml)',
    document: loadSpec('aideer'),
    handlers: handlers as never,
    securityHandlers: { OAuth2PasswordBearer: authenticate },
    authFrom: aideerAuthFrom,
    errors: aideerErrors,
    logger,
    fileLimitBytes: AVATAR_MAX_BYTES,
  });

  const router = express.Router();
  // The public code lookup is rate-limited per address (A8), so codes cannot be enumerated.
  router.get('/codes/:code', limitRequests(createLimiter('aideer-code-lookup', config.codeLookupRateLimit, 60, redis), () => detail(429, 'Too many requests')));
  router.use(api);

  return {
    router,
    users,
    tasks,
    models,
    drain: (deadlineAt) => tasks.drain(deadlineAt),
    close: () => tasks.stop(),
    async ensureAdmin() {
      const created = await ensureAdmin(users, passwords, admin);
      return typeof created === 'string' ? created : 'created';
    },
  };
}
