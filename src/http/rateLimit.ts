// Per-key request limits. Counters live in memory on one instance, or in Redis when REDIS_URL is
// set so several instances share them (with an in-memory fallback while Redis is unreachable).
import { createRequire } from 'node:module';
import type * as flexible from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';
import type { Request, RequestHandler } from 'express';
import type { RawResult } from './types.ts';

// The three classes used, each from its own file: the package's index loads every store it
// supports (Mongo, MySQL, Dynamo, Etcd, Prisma...), three to four times the load time of these.
const load = createRequire(import.meta.url);
// require() returns any; each file exports the class its type in the package index names.
const RateLimiterMemory = load('rate-limiter-flexible/lib/RateLimiterMemory.js') as typeof flexible.RateLimiterMemory;
const RateLimiterRedis = load('rate-limiter-flexible/lib/RateLimiterRedis.js') as typeof flexible.RateLimiterRedis;
const RateLimiterRes = load('rate-limiter-flexible/lib/RateLimiterRes.js') as typeof flexible.RateLimiterRes;
type RateLimiterAbstract = flexible.RateLimiterAbstract;

export interface Limiter {
  /** Counts one request for `key`; answers how long to wait when the limit is exceeded. */
  hit(key: string): Promise<{ allowed: true } | { allowed: false; retryAfterSeconds: number }>;
}

export function createLimiter(name: string, points: number, durationSeconds: number, redis?: Redis): Limiter {
  const memory = new RateLimiterMemory({ keyPrefix: name, points, duration: durationSeconds });
  const limiter: RateLimiterAbstract = redis
    ? new RateLimiterRedis({
        storeClient: redis,
        keyPrefix: `rl:${name}`,
        points,
        duration: durationSeconds,
        insuranceLimiter: memory,
        rejectIfRedisNotReady: true,
      })
    : memory;
  return {
    async hit(key) {
      try {
        await limiter.consume(key);
        return { allowed: true };
      } catch (res) {
        if (res instanceof RateLimiterRes)
          return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)) };
        throw res;
      }
    },
  };
}

/**
 * Middleware counting each request it `applies` to against the client address (behind
 * TRUST_PROXY, the proxy's client); past the limit it answers `refusal` (the API's own 429 shape)
 * with Retry-After.
 */
export function limitRequests(
  limiter: Limiter,
  refusal: () => RawResult,
  applies: (req: Request) => boolean = () => true,
): RequestHandler {
  return (req, res, next) => {
    if (!applies(req)) return next();
    limiter.hit(req.ip ?? 'unknown').then((r) => {
      if (r.allowed) return next();
      const { status, body, headers } = refusal();
      res
        .set({ ...headers, 'Retry-After': String(r.retryAfterSeconds) })
        .status(status)
        .json(body);
    }, next);
  };
}
