// Settings come from the environment (and `.env`, loaded by the entry point). Each one is declared
// once here with its default and meaning; the README table is checked against this list by a test.
import path from 'node:path';

export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`Invalid setting ${variable}: ${message}`);
  }
}

type Env = Record<string, string | undefined>;

interface Setting<T> {
  name: string;
  default: string; // as written in the README
  description: string;
  parse: (raw: string | undefined, env: Env) => T;
}

function setting<T>(name: string, def: string, description: string, parse: (raw: string | undefined, env: Env) => T): Setting<T> {
  return { name, default: def, description, parse };
}

function int(name: string, def: number, min: number, max: number) {
  return (raw: string | undefined): number => {
    if (raw === undefined || raw === '') return def;
    if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `expected an integer, got "${raw}"`);
    const n = Number(raw.trim());
    if (n < min || n > max) throw new ConfigError(name, `expected an integer from ${min} to ${max}, got ${n}`);
    return n;
  };
}

function bool(name: string, def: boolean) {
  return (raw: string | undefined): boolean => {
    if (raw === undefined || raw === '') return def;
    const v = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    throw new ConfigError(name, `expected true or false, got "${raw}"`);
  };
}

function oneOf<const T extends string>(name: string, values: readonly T[], def: T) {
  return (raw: string | undefined): T => {
    if (raw === undefined || raw === '') return def;
    const v = raw.trim().toLowerCase() as T;
    if (!values.includes(v)) throw new ConfigError(name, `expected one of ${values.join(', ')}, got "${raw}"`);
    return v;
  };
}

function url(name: string, protocols: string[]) {
  return (raw: string | undefined): string | undefined => {
    if (raw === undefined || raw.trim() === '') return undefined;
    let u: URL;
    try {
      u = new URL(raw.trim());
    } catch {
      throw new ConfigError(name, 'expected a URL');
    }
    if (!protocols.includes(u.protocol)) throw new ConfigError(name, `expected a ${protocols.join(' or ')} URL`);
    return raw.trim();
  };
}

function str(def: string) {
  return (raw: string | undefined): string => (raw === undefined || raw.trim() === '' ? def : raw.trim());
}

function optionalStr() {
  return (raw: string | undefined): string | undefined => (raw === undefined || raw.trim() === '' ? undefined : raw.trim());
}

function isProduction(env: Env) {
  return (env.NODE_ENV ?? '').trim().toLowerCase() === 'production';
}

export const SETTINGS = {
  port: setting('PORT', '8000', 'TCP port to listen on (0 picks a free one).', int('PORT', 8000, 0, 65535)),
  host: setting('HOST', '127.0.0.1', 'Interface to listen on (`0.0.0.0` for every interface).', (raw) => {
    const v = str('127.0.0.1')(raw);
    if (!/^[A-Za-z0-9.:-]+$/.test(v)) throw new ConfigError('HOST', `not a host name or address: "${raw}"`);
    return v;
  }),
  nodeEnv: setting('NODE_ENV', 'development', '`development`, `production` or `test`. Production requires explicit secrets and random phone codes.', oneOf('NODE_ENV', ['development', 'production', 'test'] as const, 'development')),
  logLevel: setting('LOG_LEVEL', 'info', 'One of `fatal`, `error`, `warn`, `info`, `debug`, `trace`, `silent`. Logs are JSON lines on stdout.', oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info')),
  dataDir: setting('DATA_DIR', './data', 'Folder for the SQLite file, uploads and the generated development secrets.', (raw) => path.resolve(str('./data')(raw))),
  databaseUrl: setting('DATABASE_URL', '(unset: SQLite in `DATA_DIR/app.db`)', '`postgres://user:pass@host:5432/db` switches storage to PostgreSQL; several instances may share it.', url('DATABASE_URL', ['postgres:', 'postgresql:'])),
  trustProxy: setting('TRUST_PROXY', 'false', 'Express `trust proxy`: `true`, `false`, a hop count, or a comma-separated list of addresses/subnets. Needed behind a load balancer so per-IP limits see client addresses.', (raw) => {
    if (raw === undefined || raw.trim() === '') return false as boolean | number | string;
    const v = raw.trim();
    if (/^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
    if (/^\d+$/.test(v)) return Number(v);
    if (!/^[0-9a-fA-F.:/, ]+$|^(loopback|linklocal|uniquelocal)(,\s*\w+)*$/.test(v)) throw new ConfigError('TRUST_PROXY', `expected true, false, a number or addresses, got "${raw}"`);
    return v;
  }),
  corsOrigins: setting('CORS_ORIGINS', '*', 'Comma-separated origins allowed by CORS, or `*` for any.', (raw) => {
    const v = str('*')(raw);
    return v === '*' ? '*' : v.split(',').map((s) => s.trim()).filter(Boolean);
  }),
  enableAideer: setting('ENABLE_AIDEER', 'true', 'Serve the AIDeer API under `/api/v1`.', bool('ENABLE_AIDEER', true)),
  enableOneapi: setting('ENABLE_ONEAPI', 'true', 'Serve One-API under `/api`.', bool('ENABLE_ONEAPI', true)),
  redisUrl: setting('REDIS_URL', '(unset: in memory)', '`redis://host:6379` keeps rate-limit counters in Redis so several instances share them.', url('REDIS_URL', ['redis:', 'rediss:'])),
  oneapiSecret: setting('ONEAPI_SECRET', '(generated in development)', 'Key for hashing One-API verification codes. Required in production; in development a random one is kept in `DATA_DIR/secrets.json`.', (raw, env) => {
    const v = optionalStr()(raw);
    if (v === undefined && isProduction(env)) throw new ConfigError('ONEAPI_SECRET', 'required when NODE_ENV=production');
    if (v !== undefined && v.length < 16) throw new ConfigError('ONEAPI_SECRET', 'must be at least 16 characters');
    return v;
  }),
  phoneCodeMode: setting('PHONE_CODE_MODE', '`fixed` (`random` in production)', '`fixed`: every code is `1111` and is returned in the response (test environments). `random`: 6 random digits sent through the SMS sender, never returned.', (raw, env) => oneOf('PHONE_CODE_MODE', ['fixed', 'random'] as const, isProduction(env) ? 'random' : 'fixed')(raw)),
  phoneCodeTtlSeconds: setting('PHONE_CODE_TTL_SECONDS', '600', 'How long a verification code stays valid.', int('PHONE_CODE_TTL_SECONDS', 600, 10, 86400)),
  phoneCodeMaxAttempts: setting('PHONE_CODE_MAX_ATTEMPTS', '5', 'Wrong tries after which a verification code is dead.', int('PHONE_CODE_MAX_ATTEMPTS', 5, 1, 100)),
  phoneCodeCooldownSeconds: setting('PHONE_CODE_COOLDOWN_SECONDS', '60', 'Minimum time between two codes sent to one phone (429 before).', int('PHONE_CODE_COOLDOWN_SECONDS', 60, 0, 3600)),
  smsSender: setting('SMS_SENDER', 'log', '`log` writes codes to the log (without the code in production); `webhook` POSTs `{phone, code, purpose}` as JSON to `SMS_WEBHOOK_URL`.', oneOf('SMS_SENDER', ['log', 'webhook'] as const, 'log')),
  smsWebhookUrl: setting('SMS_WEBHOOK_URL', '(unset)', 'Endpoint of the SMS gateway for `SMS_SENDER=webhook`.', (raw, env) => {
    const v = url('SMS_WEBHOOK_URL', ['http:', 'https:'])(raw);
    if (v === undefined && (env.SMS_SENDER ?? '').trim().toLowerCase() === 'webhook') throw new ConfigError('SMS_WEBHOOK_URL', 'required when SMS_SENDER=webhook');
    return v;
  }),
  oneapiTokenTtlDays: setting('ONEAPI_TOKEN_TTL_DAYS', '30', 'Lifetime of a One-API access token issued at login.', int('ONEAPI_TOKEN_TTL_DAYS', 30, 1, 3650)),
  oneapiRootPhone: setting('ONEAPI_ROOT_PHONE', '(unset)', 'When set, a root user (role 100) with this phone is created at start-up if missing.', (raw) => {
    const v = optionalStr()(raw);
    if (v !== undefined && !/^\d{11}$/.test(v)) throw new ConfigError('ONEAPI_ROOT_PHONE', 'expected 11 digits');
    return v;
  }),
  signinRateLimit: setting('SIGNIN_RATE_LIMIT', '20', 'Requests per IP to `/api/phone_verification`, `/api/user/register` and `/api/user/login` together, per window.', int('SIGNIN_RATE_LIMIT', 20, 1, 1_000_000)),
  signinRateWindowSeconds: setting('SIGNIN_RATE_WINDOW_SECONDS', '1200', 'Window of `SIGNIN_RATE_LIMIT`.', int('SIGNIN_RATE_WINDOW_SECONDS', 1200, 1, 86400)),
  globalRateLimit: setting('GLOBAL_RATE_LIMIT', '600', 'Requests per IP to anything under `/api` (One-API), per window.', int('GLOBAL_RATE_LIMIT', 600, 1, 10_000_000)),
  globalRateWindowSeconds: setting('GLOBAL_RATE_WINDOW_SECONDS', '180', 'Window of `GLOBAL_RATE_LIMIT`.', int('GLOBAL_RATE_WINDOW_SECONDS', 180, 1, 86400)),
} as const;

type SettingsTable = typeof SETTINGS;
export type Config = { [K in keyof SettingsTable]: ReturnType<SettingsTable[K]['parse']> } & { isProduction: boolean };

/** Reads every setting; throws a ConfigError naming the first invalid variable. */
export function loadConfig(env: Env = process.env): Config {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SETTINGS) as [string, Setting<unknown>][]) {
    out[key] = s.parse(env[s.name], env);
  }
  out.isProduction = out.nodeEnv === 'production';
  return out as Config;
}
