// Per-key request limits. Counters live in memory on one instance, or in Redis when REDIS_URL is
// set so several instances share them (with an in-memory fallback while Redis is unreachable).
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';

export interface Limiter {
  /** Counts one request for `key`; answers how long to wait when the limit is exceeded. */
  hit(key: string): Promise<{ allowed: true } | { allowed: false; retryAfterSeconds: number }>;
}

export function createLimiter(name: string, points: number, durationSeconds: number, redis?: Redis): Limiter {
  const memory = new RateLimiterMemory({ keyPrefix: name, points, duration: durationSeconds });
  const limiter: RateLimiterAbstract = redis
    ? new RateLimiterRedis({ storeClient: redis, keyPrefix: `rl:${name}`, points, duration: durationSeconds, insuranceLimiter: memory, rejectIfRedisNotReady: true })
    : memory;
  return {
    async hit(key) {
      try {
        await limiter.consume(key);
        return { allowed: true };
      } catch (res) {
        if (res instanceof RateLimiterRes) return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)) };
        throw res;
      }
    },
  };
}
