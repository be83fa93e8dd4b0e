// One-API under /api: header auth, per-IP limits, and the operations of openapi/oneapi.yaml.
import express, { type Router } from 'express';
import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import { bindApi } from '../http/bind.ts';
import { createLimiter, limitRequests } from '../http/rateLimit.ts';
import { loadSpec } from '../spec.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { devSecret } from '../secrets.ts';
import { Accounts } from './accounts.ts';
import { headerAuthenticator, type OneApiAuth } from './auth.ts';
import { fail, MESSAGES, oneapiErrors } from './envelope.ts';
import { logSender, webhookSender } from './sms.ts';
import { userHandlers } from './handlers/user.ts';
import { Subscriptions } from './subscriptions.ts';
import { Articles } from './articles.ts';
import { FeedIngester, SAMPLE_FEED } from './feeds.ts';
import { subscriptionHandlers } from './handlers/subscriptions.ts';
import { articleHandlers } from './handlers/articles.ts';
import { Topics } from './topics.ts';
import { Channels } from './channels.ts';
import { topicHandlers } from './handlers/topics.ts';
import type { OneApiHandlers } from './types.ts';

export interface OneApiDeps {
  config: Config;
  db: Knex;
  logger: Logger;
  redis?: Redis;
}

/** Paths of the sign-in routes that share one per-IP limit (O12). */
const SIGNIN_PATHS = new Set(['/phone_verification', '/user/register', '/user/login']);

export async function createOneApi({ config, db, logger, redis }: OneApiDeps): Promise<{ router: Router; accounts: Accounts; feeds: FeedIngester }> {
  const accounts = new Accounts(db, {
    secret: config.oneapiSecret ?? devSecret(config.dataDir, 'oneapiSecret'),
    codeMode: config.phoneCodeMode,
    codeTtlSeconds: config.phoneCodeTtlSeconds,
    codeMaxAttempts: config.phoneCodeMaxAttempts,
    codeCooldownSeconds: config.phoneCodeCooldownSeconds,
    tokenTtlDays: config.oneapiTokenTtlDays,
  });
  // The log sender shows codes only where nothing else would: random codes outside production.
  const sms = config.smsSender === 'webhook' ? webhookSender(config.smsWebhookUrl!) : logSender(logger, !config.isProduction && config.phoneCodeMode === 'random');
  const authenticate = headerAuthenticator(accounts);
  const channels = new Channels(config.oneapiChannels, { echoDelayMs: config.llmEchoDelayMs });
  logger.info({ channels: channels.describe() }, 'One-API topic channels');
  const subscriptions = new Subscriptions(db);
  const articles = new Articles(db);
  const feeds = new FeedIngester(
    articles,
    { feeds: [...(config.feedSample ? [SAMPLE_FEED] : []), ...config.feedUrls], refreshSeconds: config.feedRefreshSeconds, timeoutMs: config.feedTimeoutSeconds * 1000 },
    logger,
  );

  const handlers = {
    ...userHandlers({ accounts, sms, returnCode: config.phoneCodeMode === 'fixed', cooldownSeconds: config.phoneCodeCooldownSeconds }),
    ...subscriptionHandlers({ subscriptions, articles }),
    ...articleHandlers({ articles }),
    ...topicHandlers({ topics: new Topics(db), channels, historySize: config.oneapiTopicHistory, logger }),
  } satisfies OneApiHandlers;

  const api = await bindApi<OneApiAuth>({
    name: 'One-API (openapi/oneapi.yaml)',
    document: loadSpec('oneapi'),
    handlers: handlers as never,
    securityHandlers: { AccessToken: authenticate, UserId: authenticate },
    authFrom: (security) => security.AccessToken as OneApiAuth,
    errors: oneapiErrors,
    logger,
  });

  const router = express.Router();
  const tooMany = () => fail(429, MESSAGES.tooManyRequests);
  router.use(limitRequests(createLimiter('oneapi-global', config.globalRateLimit, config.globalRateWindowSeconds, redis), tooMany));
  router.use(limitRequests(createLimiter('oneapi-signin', config.signinRateLimit, config.signinRateWindowSeconds, redis), tooMany, (req) => SIGNIN_PATHS.has(req.path.replace(/\/+$/, ''))));
  router.use(api);
  // Started last: nothing is left running if binding refuses to start.
  feeds.start();
  return { router, accounts, feeds };
}
