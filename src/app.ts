// Builds the express app serving both APIs (decision G1). No listening, no process state: the
// entry point and the tests call this with their own config and database.
import crypto from 'node:crypto';
import express, { type Express } from 'express';
import cors from 'cors';
import helmet from 'helmet';
import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import path from 'node:path';
import { createAideer, type Aideer } from './aideer/index.ts';
import { ROOT } from './spec.ts';
import { createOneApi } from './oneapi/index.ts';
import { oneapiErrors } from './oneapi/http/envelope.ts';
import { aideerErrors } from './aideer/http/errors.ts';
import { createDocs } from './docs.ts';
import type { Accounts } from './oneapi/domain/accounts.ts';
import type { FeedIngester } from './oneapi/domain/feeds.ts';

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
    log: Logger;
  }
}

export interface AppOptions {
  config: Config;
  db: Knex;
  logger: Logger;
}

export interface App {
  app: Express;
  aideer?: Aideer;
  oneapi?: { accounts: Accounts; feeds: FeedIngester };
  /**
   * Shutdown, the app's part: from now on isDraining() is true; AIDeer's tasks may finish until
   * `deadlineAt` (ms since the epoch), then the rest are failed. Requests in flight are the HTTP
   * server's to wait for (src/http/server.ts).
   */
  drain(deadlineAt: number): Promise<void>;
  /** True once drain() has been called: the instance is going away (for a readiness check). */
  isDraining(): boolean;
  close(): Promise<void>;
}

/** Longest a `/readyz` waits for the database before it answers 503. */
const READY_TIMEOUT_MS = 2000;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const API_CSP = { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] };

export async function createApp({ config, db, logger }: AppOptions): Promise<App> {
  // Loaded only when used: it is one of the heavier imports at start-up.
  const redis: Redis | undefined = config.redisUrl
    ? new (await import('ioredis')).Redis(config.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false })
    : undefined;
  redis?.on('error', (err) => logger.warn({ err: err.message }, 'redis unavailable; rate limits fall back to memory'));
  // Shared limits count from the first request: serve once Redis answers, or once it has failed.
  if (redis) {
    await new Promise<void>((resolve) => {
      const settled = () => {
        redis.off('ready', settled).off('error', settled);
        resolve();
      };
      redis.once('ready', settled).once('error', settled);
    });
  }

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);

  // Health for load balancers, outside both APIs (their auth, limits and logs): first, and cheap.
  let draining = false;
  app.get('/livez', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    res.set('Cache-Control', 'no-store');
    if (draining) return void res.status(503).json({ status: 'draining' });
    let timer: NodeJS.Timeout | undefined;
    const answered = await Promise.race([
      db.raw('select 1').then(
        () => true,
        () => false,
      ),
      new Promise<false>((resolve) => (timer = setTimeout(resolve, READY_TIMEOUT_MS, false))),
    ]);
    clearTimeout(timer);
    if (draining) return void res.status(503).json({ status: 'draining' });
    if (!answered) return void res.status(503).json({ status: 'database unavailable' });
    res.json({ status: 'ok' });
  });

  // Request id (decision G10) and one JSON log line per request. The query string is left out:
  // it can carry one-time codes. The id goes in as a field; `req.log`, a child logger carrying it,
  // is made only for a request that logs something of its own.
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: express.Request & { _log?: Logger }) {
      return (this._log ??= logger.child({ reqId: this.id }));
    },
    set(this: express.Request & { _log?: Logger }, value: Logger) {
      this._log = value;
    },
  });
  // Security headers on every answer. The APIs answer JSON only, so their policy allows nothing;
  // the docs pages set their own (src/docs.ts). Helmet's headers do not depend on the request:
  // they are taken from it once, here, and set with the request id in one middleware.
  const securityHeaders = staticHeaders(
    helmet({
      contentSecurityPolicy: { useDefaults: false, directives: API_CSP },
      frameguard: { action: 'deny' },
      referrerPolicy: { policy: 'no-referrer' },
      // Browsers ignore it, with a console error, on an origin that is not https: sent below only there.
      crossOriginOpenerPolicy: false,
    }),
  );
  const logRequests = logger.isLevelEnabled('info');
  app.use((req, res, next) => {
    const given = req.headers['x-request-id'];
    req.id = typeof given === 'string' && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    res.setHeader('X-Request-Id', req.id);
    if (logRequests) {
      const started = process.hrtime.bigint();
      res.once('finish', () => {
        logger.info(
          {
            reqId: req.id,
            method: req.method,
            path: req.originalUrl.split('?')[0],
            status: res.statusCode,
            operationId: res.locals.operationId,
            ms: Number(process.hrtime.bigint() - started) / 1e6,
          },
          'request',
        );
      });
    }
    for (let i = 0; i < securityHeaders.length; i++) res.setHeader(securityHeaders[i][0], securityHeaders[i][1]);
    if (req.secure) res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    next();
  });
  // Any origin means `*`, which browsers never combine with credentials; a listed origin is echoed
  // back, and only it may send them; others get no CORS headers (`[]` matches no origin).
  const exposedHeaders = ['X-Request-Id', 'Retry-After', 'WWW-Authenticate', 'Location'];
  const listed = new Set(config.corsOrigins === '*' ? [] : config.corsOrigins);
  if (config.corsOrigins === '*') {
    // With any origin, cors's headers on an actual (not preflight) request depend on nothing in
    // it: taken from cors once; preflights go through cors itself.
    const anyOrigin = cors({ origin: '*', exposedHeaders });
    const actualHeaders = staticHeaders(anyOrigin, { method: 'GET', headers: {} });
    app.use((req, res, next) => {
      if (req.method === 'OPTIONS') return anyOrigin(req, res, next);
      for (let i = 0; i < actualHeaders.length; i++) res.setHeader(actualHeaders[i][0], actualHeaders[i][1]);
      next();
    });
  } else {
    app.use(
      cors((req, done) =>
        done(
          null,
          listed.has(req.headers.origin ?? '') ? { origin: true, credentials: true, exposedHeaders } : { origin: [] },
        ),
      ),
    );
  }

  // Docs and the served documents sit outside both contracts, so they go before the API routers.
  const docs = createDocs(config);
  if (docs) app.use(docs);

  let oneapi: App['oneapi'];
  let aideer: App['aideer'];
  if (config.enableAideer) {
    aideer = await createAideer({ config, db, logger, redis });
    app.use('/api/v1', aideer.router);
    // Uploaded avatars, then the bundled files (the default avatar). Uploads are content-addressed.
    // Avatars are shown by web apps on other origins, in <img> tags.
    app.use(
      '/static',
      helmet.crossOriginResourcePolicy({ policy: 'cross-origin' }),
      express.static(config.staticDir, { maxAge: '1d' }),
      express.static(path.join(ROOT, 'static'), { maxAge: '1d' }),
    );
  }
  if (config.enableOneapi) {
    const created = await createOneApi({ config, db, logger, redis });
    app.use('/api', created.router);
    oneapi = { accounts: created.accounts, feeds: created.feeds };
  }
  app.use((_req, res) => {
    res.status(404).json({ detail: 'Not Found' });
  });
  // A fault outside the API routers' own handling (e.g. a rate limiter's store failing): JSON in
  // the shape of the API the path belongs to, never express's HTML page.
  app.use((err: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) => {
    (req.log ?? logger).error({ err }, 'request failed');
    if (res.headersSent) return void res.end();
    const { status, body } = (
      req.path.startsWith('/api/') && !req.path.startsWith('/api/v1/') ? oneapiErrors : aideerErrors
    ).internal();
    res.status(status).json(body);
  });

  return {
    app,
    aideer,
    oneapi,
    async drain(deadlineAt) {
      draining = true;
      await aideer?.drain(deadlineAt);
    },
    isDraining: () => draining,
    async close() {
      await aideer?.close();
      await oneapi?.feeds.stop();
      redis?.disconnect();
    },
  };
}

/**
 * The headers a middleware sets whatever the request (helmet's, configured without nonces; cors's
 * with any origin), as it sets them: run once against a response that records them. Refuses a middleware that does
 * anything else, so a change of options cannot silently turn into a header set per request.
 */
function staticHeaders(
  middleware: express.RequestHandler,
  req: object = { headers: {} },
): [string, string | string[]][] {
  const headers: [string, string | string[]][] = [];
  let done = false;
  const res = {
    setHeader(name: string, value: string | string[]) {
      headers.push([name, value]);
      return res;
    },
    removeHeader() {},
  };
  // A stand-in request and response: the middleware only sets and removes headers on them, and
  // express's types want the whole of both.
  middleware(req as express.Request, res as unknown as express.Response, (err?: unknown) => {
    if (err) throw err instanceof Error ? err : new Error('header middleware failed', { cause: err });
    done = true;
  });
  if (!done) throw new Error('security headers: the middleware did not complete at once');
  return headers;
}
