// AIDeer under /api/v1: the operations of openapi/aideer.yaml.
import express, { type Router } from 'express';
import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import { bindApi } from '../http/bind.ts';
import { createLimiter, limitRequests } from '../http/rateLimit.ts';
import type { Document } from 'openapi-backend';
import { loadSpec } from '../spec.ts';
import { devSecret } from '../secrets.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { aideerErrors, detail } from './http/errors.ts';
import { aideerAuthFrom, bearerAuthenticator, type AideerAuth } from './http/auth.ts';
import crypto from 'node:crypto';
import { UserStore } from './store/users.ts';
import { TaskStore } from './store/tasks.ts';
import { CreditStore } from './store/credits.ts';
import { ChatStore } from './store/chats.ts';
import { PresetStore } from './store/presets.ts';
import { LikeStore } from './store/likes.ts';
import { Users } from './domain/users.ts';
import { Credits } from './domain/credits.ts';
import { Chats } from './domain/chats.ts';
import { Presets } from './domain/presets.ts';
import { Passwords } from './domain/passwords.ts';
import { Tokens } from './domain/tokens.ts';
import { WeChat } from './adapters/wechat.ts';
import { AVATAR_MAX_BYTES, AvatarStore } from './adapters/avatars.ts';
import { usersHandlers } from './http/handlers/users.ts';
import { sessionHandlers } from './http/handlers/session.ts';
import { codesHandlers } from './http/handlers/codes.ts';
import { utilsHandlers } from './http/handlers/utils.ts';
import { tasksHandlers } from './http/handlers/tasks.ts';
import { chatsHandlers } from './http/handlers/chats.ts';
import { presetsHandlers } from './http/handlers/presets.ts';
import { likesHandlers } from './http/handlers/likes.ts';
import { ModelRouter } from './domain/models.ts';
import { Tasks } from './domain/tasks.ts';
import type { AideerHandlers } from './http/types.ts';

export interface AideerDeps {
  config: Config;
  db: Knex;
  logger: Logger;
  redis?: Redis;
}

export interface Aideer {
  router: Router;
  /** Balances and their records (tests grant credits through it). */
  credits: CreditStore;
  tasks: Tasks;
  models: ModelRouter;
  /** Creates ADMIN_USER at start-up when it is set and missing (outside DEBUG, A12). */
  ensureAdmin(): Promise<'unset' | 'exists' | 'created'>;
  /** Stops starting tasks, lets running ones finish until `deadlineAt`, then fails the rest (see Tasks.drain). */
  drain(deadlineAt: number): Promise<void>;
  /** Stops the task sweep and the tasks this process runs. */
  close(): Promise<void>;
}

/** The names of the spec's preset parameters, the only ones stored. */
function presetParameterNames(document: Document): string[] {
  const schema = document.components?.schemas?.PresetParameters;
  if (!schema || '$ref' in schema || !schema.properties)
    throw new Error('openapi/aideer.yaml: PresetParameters lists no properties');
  return Object.keys(schema.properties);
}

export async function createAideer({ config, db, logger, redis }: AideerDeps): Promise<Aideer> {
  const document = loadSpec('aideer');
  const userStore = new UserStore(db);
  const credits = new CreditStore(db);
  const chatStore = new ChatStore(db);
  const presetStore = new PresetStore(db);
  const passwords = new Passwords(config.bcryptRounds);
  const tokens = new Tokens({
    secret: config.jwtSecret ?? devSecret(config.dataDir, 'jwtSecret'),
    accessMinutes: config.jwtAccessTokenExpires,
    refreshMinutes: config.jwtRefreshTokenExpires,
  });
  const wechat = new WeChat(db, {
    baseUrl: config.wechatApiBaseUrl,
    appId: config.wechatAppId,
    secret: config.wechatSecret,
  });
  const users = new Users(userStore, passwords, new AvatarStore(config.staticDir));
  const admin = { user: config.adminUser, password: config.adminPasswd };
  const chats = new Chats({ chats: chatStore, presets: presetStore });
  // Only the spec's parameter names are stored (the validator keeps keys it does not know).
  const presets = new Presets(presetStore, presetParameterNames(document));
  const models = new ModelRouter(config);
  const pingMs = config.ssePingSeconds * 1000;
  const tasks = new Tasks(
    new TaskStore(db, crypto.randomUUID()),
    { chats: chatStore, credits, router: models, logger },
    {
      progressWriteMs: config.taskProgressWriteMs,
      maxAttempts: config.taskMaxAttempts,
      runnerLeaseMs: config.taskLeaseSeconds * 1000,
      maxActivePerUser: config.maxActiveTasksPerUser,
      ttlMs: config.taskTtlSeconds * 1000,
      titlePrompt: config.titleGenerationPrompt,
      streamLeaseMs: pingMs * 2 + 5000,
    },
  );
  // Tasks a stopped server left running are failed before anything is served.
  await tasks.startMaintenance();

  const handlers = {
    ...usersHandlers({ users, credits: new Credits(credits), publicBaseUrl: config.publicBaseUrl }),
    ...sessionHandlers({ users, userStore, tokens, wechat }),
    ...codesHandlers({ credits: new Credits(credits) }),
    ...utilsHandlers({ db, debug: config.debug, users, admin }),
    ...tasksHandlers({ tasks, pingMs }),
    ...chatsHandlers({ chats }),
    ...presetsHandlers({ presets }),
    ...likesHandlers({ likes: new LikeStore(db) }),
  } satisfies AideerHandlers;

  const authenticate = bearerAuthenticator(userStore, tokens);
  const api = await bindApi<AideerAuth>({
    name: 'AIDeer (openapi/aideer.yaml)',
    document,
    // bindApi takes handlers of any operation; `satisfies` above checked each against its own.
    handlers: handlers as never,
    securityHandlers: { OAuth2PasswordBearer: authenticate },
    authFrom: aideerAuthFrom,
    errors: aideerErrors,
    logger,
    fileLimitBytes: AVATAR_MAX_BYTES,
  });

  const router = express.Router();
  // The public code lookup is rate-limited per address (A8), so codes cannot be enumerated.
  router.get(
    '/codes/:code',
    limitRequests(createLimiter('aideer-code-lookup', config.codeLookupRateLimit, 60, redis), () =>
      detail(429, 'Too many requests'),
    ),
  );
  router.use(api);

  return {
    router,
    credits,
    tasks,
    models,
    drain: (deadlineAt) => tasks.drain(deadlineAt),
    close: () => tasks.stop(),
    async ensureAdmin() {
      const created = await users.ensureAdmin(admin);
      return typeof created === 'string' ? created : 'created';
    },
  };
}
