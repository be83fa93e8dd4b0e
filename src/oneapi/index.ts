// One-API under /api: header auth, per-IP limits, and the operations of openapi/oneapi.yaml. The
// wiring of its layers: stores (store/, the only code that knows the tables) under the domain's
// rules (domain/), under the handlers (http/), with adapters/ reaching the outside world.
import express, { type Router } from 'express';
import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import { bindApi } from '../http/bind.ts';
import { createLimiter, limitRequests } from '../http/rateLimit.ts';
import { loadSpec } from '../spec.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { devSecret } from '../secrets.ts';
import { headerAuthenticator, type OneApiAuth } from './http/auth.ts';
import { fail, MESSAGES, oneapiErrors } from './http/envelope.ts';
import { articleHandlers } from './http/handlers/articles.ts';
import { subscriptionHandlers } from './http/handlers/subscriptions.ts';
import { topicHandlers } from './http/handlers/topics.ts';
import { userHandlers } from './http/handlers/user.ts';
import type { OneApiHandlers } from './http/types.ts';
import { Accounts } from './domain/accounts.ts';
import { Articles } from './domain/articles.ts';
import { FeedIngester, SAMPLE_FEED } from './domain/feeds.ts';
import { Subscriptions } from './domain/subscriptions.ts';
import { Topics } from './domain/topics.ts';
import { AccountStore } from './store/accounts.ts';
import { ArticleStore } from './store/articles.ts';
import { SubscriptionStore } from './store/subscriptions.ts';
import { TopicStore } from './store/topics.ts';
import { Channels } from './adapters/channels.ts';
import { logSender, webhookSender } from './adapters/sms.ts';

export interface OneApiDeps {
  config: Config;
  db: Knex;
  logger: Logger;
  redis?: Redis;
}

/** Paths of the sign-in routes that share one per-IP limit (O12). */
const SIGNIN_PATHS = new Set(['/phone_verification', '/user/register', '/user/login']);

export async function createOneApi({
  config,
  db,
  logger,
  redis,
}: OneApiDeps): Promise<{ router: Router; accounts: Accounts; feeds: FeedIngester }> {
  const accounts = new Accounts(new AccountStore(db), {
    secret: config.oneapiSecret ?? devSecret(config.dataDir, 'oneapiSecret'),
    codeMode: config.phoneCodeMode,
    codeTtlSeconds: config.phoneCodeTtlSeconds,
    codeMaxAttempts: config.phoneCodeMaxAttempts,
    codeCooldownSeconds: config.phoneCodeCooldownSeconds,
    tokenTtlDays: config.oneapiTokenTtlDays,
  });
  // The log sender shows codes only where nothing else would: random codes outside production.
  const sms =
    config.smsSender === 'webhook'
      ? webhookSender(config.smsWebhookUrl!)
      : logSender(logger, !config.isProduction && config.phoneCodeMode === 'random');
  const authenticate = headerAuthenticator(accounts);
  const channels = new Channels(config.oneapiChannels, { echoDelayMs: config.llmEchoDelayMs });
  logger.info({ channels: channels.describe() }, 'One-API topic channels');
  const subscriptions = new Subscriptions(new SubscriptionStore(db));
  const articles = new Articles(new ArticleStore(db));
  const feeds = new FeedIngester(
    articles,
    {
      feeds: [...(config.feedSample ? [SAMPLE_FEED] : []), ...config.feedUrls],
      refreshSeconds: config.feedRefreshSeconds,
      timeoutMs: config.feedTimeoutSeconds * 1000,
    },
    logger,
  );

  const handlers = {
    ...userHandlers({
      accounts,
      sms,
      returnCode: config.phoneCodeMode === 'fixed',
      cooldownSeconds: config.phoneCodeCooldownSeconds,
    }),
    ...subscriptionHandlers({ subscriptions, articles }),
    ...articleHandlers({ articles }),
    ...topicHandlers({
      topics: new Topics(new TopicStore(db)),
      channels,
      historySize: config.oneapiTopicHistory,
      logger,
    }),
  } satisfies OneApiHandlers;

  const api = await bindApi<OneApiAuth>({
    name: 'One-API (openapi/oneapi.yaml)',
    document: loadSpec('oneapi'),
    // bindApi takes handlers of any operation; `satisfies` above checked each against its own.
    handlers: handlers as never,
    securityHandlers: { AccessToken: authenticate, UserId: authenticate },
    // bindApi types each scheme's result unknown; AccessToken's is what `authenticate` answers.
    authFrom: (security) => security.AccessToken as OneApiAuth,
    errors: oneapiErrors,
    logger,
  });

  const router = express.Router();
  const tooMany = () => fail(429, MESSAGES.tooManyRequests);
  router.use(
    limitRequests(
      createLimiter('oneapi-global', config.globalRateLimit, config.globalRateWindowSeconds, redis),
      tooMany,
    ),
  );
  router.use(
    limitRequests(
      createLimiter('oneapi-signin', config.signinRateLimit, config.signinRateWindowSeconds, redis),
      tooMany,
      (req) => SIGNIN_PATHS.has(req.path.replace(/\/+$/, '')),
    ),
  );
  router.use(api);
  // Started last: nothing is left running if binding refuses to start.
  feeds.start();
  return { router, accounts, feeds };
}
