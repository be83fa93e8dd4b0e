// Settings come from the environment (and `.env`, loaded by the entry point). Each one is declared
// once here with its default and meaning; the README table is checked against this list by a test.
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseChannels } from './channelSettings.ts';
import { ConfigError, bool, int, oneOf, optionalStr, setting, str, url, type Env } from './settingKinds.ts';

export { ConfigError } from './settingKinds.ts';

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

function isProduction(env: Env) {
  return (env.NODE_ENV ?? '').trim().toLowerCase() === 'production';
}

export const SETTINGS = {
  port: setting('PORT', '8000', 'TCP port to listen on (0 picks a free one).', int('PORT', 8000, 0, 65535)),
  host: setting(
    'HOST',
    '127.0.0.1',
    'Interface to listen on: an IP address (`0.0.0.0` for every IPv4 interface, `::` for every one) or a host name, resolved when the server starts.',
    (raw) => {
      const v = str('127.0.0.1')(raw);
      if (net.isIP(v) === 0 && !HOST_NAME.test(v))
        throw new ConfigError('HOST', `expected an IP address or a host name, got "${raw}"`);
      return v;
    },
  ),
  maxHeaderBytes: setting(
    'MAX_HEADER_BYTES',
    '16384',
    "Largest request line plus headers accepted, in bytes; a larger request gets 431 in the API's error shape and its connection is closed.",
    int('MAX_HEADER_BYTES', 16384, 1024, 1_048_576),
  ),
  shutdownTimeoutSeconds: setting(
    'SHUTDOWN_TIMEOUT_SECONDS',
    '30',
    'On SIGTERM or SIGINT, how long requests in flight and running AIDeer tasks may take to finish; the server exits as soon as they have, and a task still running then is marked failed.',
    int('SHUTDOWN_TIMEOUT_SECONDS', 30, 0, 3600),
  ),
  nodeEnv: setting(
    'NODE_ENV',
    'development',
    '`development`, `production` or `test`. Production requires explicit secrets and random phone codes.',
    oneOf('NODE_ENV', ['development', 'production', 'test'] as const, 'development'),
  ),
  logLevel: setting(
    'LOG_LEVEL',
    'info',
    'One of `fatal`, `error`, `warn`, `info`, `debug`, `trace`, `silent`. Logs are JSON lines on stdout.',
    oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
  ),
  dataDir: setting(
    'DATA_DIR',
    './data',
    'Folder for the SQLite file, uploads and the generated development secrets.',
    (raw) => path.resolve(str('./data')(raw)),
  ),
  databaseUrl: setting(
    'DATABASE_URL',
    '(unset: SQLite in `DATA_DIR/app.db`)',
    '`postgres://user:pass@host:5432/db` switches storage to PostgreSQL; several instances may share it.',
    url('DATABASE_URL', ['postgres:', 'postgresql:']),
  ),
  trustProxy: setting(
    'TRUST_PROXY',
    'false',
    'Express `trust proxy`: `true`, `false`, a hop count, or a comma-separated list of addresses/subnets. Needed behind a load balancer so per-IP limits see client addresses.',
    (raw): boolean | number | string => {
      if (raw === undefined || raw.trim() === '') return false;
      const v = raw.trim();
      if (/^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
      if (/^\d+$/.test(v)) return Number(v);
      if (!/^[0-9a-fA-F.:/, ]+$|^(loopback|linklocal|uniquelocal)(,\s*\w+)*$/.test(v))
        throw new ConfigError('TRUST_PROXY', `expected true, false, a number or addresses, got "${raw}"`);
      return v;
    },
  ),
  corsOrigins: setting(
    'CORS_ORIGINS',
    '*',
    'Comma-separated origins allowed by CORS (each may send credentials), or `*` for any (answered as `*`, never with credentials).',
    (raw) => {
      const v = str('*')(raw);
      return v === '*'
        ? '*'
        : v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean);
    },
  ),
  enableAideer: setting('ENABLE_AIDEER', 'true', 'Serve the AIDeer API under `/api/v1`.', bool('ENABLE_AIDEER', true)),
  enableOneapi: setting('ENABLE_ONEAPI', 'true', 'Serve One-API under `/api`.', bool('ENABLE_ONEAPI', true)),
  redisUrl: setting(
    'REDIS_URL',
    '(unset: in memory)',
    '`redis://host:6379` keeps rate-limit counters in Redis so several instances share them.',
    url('REDIS_URL', ['redis:', 'rediss:']),
  ),
  // ── AIDeer ──
  jwtSecret: setting(
    'JWT_SECRET',
    '(generated in development)',
    'HS256 key for AIDeer tokens. Required in production (at least 32 characters); in development a random one is kept in `DATA_DIR/secrets.json`.',
    (raw, env) => {
      const v = optionalStr()(raw);
      if (v === undefined && isProduction(env))
        throw new ConfigError('JWT_SECRET', 'required when NODE_ENV=production');
      if (v !== undefined && v.length < 32) throw new ConfigError('JWT_SECRET', 'must be at least 32 characters');
      return v;
    },
  ),
  jwtAccessTokenExpires: setting(
    'JWT_ACCESS_TOKEN_EXPIRES',
    '4320',
    'AIDeer access-token lifetime in minutes (3 days).',
    int('JWT_ACCESS_TOKEN_EXPIRES', 4320, 1, 5_256_000),
  ),
  jwtRefreshTokenExpires: setting(
    'JWT_REFRESH_TOKEN_EXPIRES',
    '129600',
    'AIDeer refresh-token lifetime in minutes (90 days); refresh tokens come from WeChat log-in.',
    int('JWT_REFRESH_TOKEN_EXPIRES', 129600, 1, 5_256_000),
  ),
  bcryptRounds: setting(
    'BCRYPT_ROUNDS',
    '12',
    'bcrypt cost for new AIDeer password hashes (existing `$2b$` hashes of any cost verify).',
    int('BCRYPT_ROUNDS', 12, 4, 15),
  ),
  debug: setting(
    'DEBUG',
    'false',
    'Mounts the AIDeer `/api/v1/utils/*` helpers (init, admin, drop). Never in production.',
    bool('DEBUG', false),
  ),
  adminUser: setting(
    'ADMIN_USER',
    '(unset)',
    'AIDeer admin user name: created at start-up if missing (outside DEBUG), or by `GET /api/v1/utils/admin` (DEBUG).',
    (raw) => {
      const v = optionalStr()(raw);
      if (v !== undefined && (v.length < 2 || v.length > 50))
        throw new ConfigError('ADMIN_USER', 'must be 2 to 50 characters');
      return v;
    },
  ),
  adminPasswd: setting('ADMIN_PASSWD', '(unset)', 'Password of `ADMIN_USER`.', (raw) => {
    const v = optionalStr()(raw);
    if (v !== undefined && (v.length < 6 || v.length > 255))
      throw new ConfigError('ADMIN_PASSWD', 'must be 6 to 255 characters');
    return v;
  }),
  publicBaseUrl: setting(
    'PUBLIC_BASE_URL',
    "(unset: the request's own origin)",
    'Origin clients reach this server at, e.g. `https://api.example.com`; used for avatar redirects and the `servers` entry of the served specs.',
    (raw) => {
      const v = url('PUBLIC_BASE_URL', ['http:', 'https:'])(raw);
      return v?.replace(/\/+$/, '');
    },
  ),
  staticDir: setting(
    'STATIC_DIR',
    '`DATA_DIR/static`',
    'Folder served at `/static`: uploaded avatars live in its `avatars/`. The bundled default avatar is served when no such file exists.',
    (raw, env) => path.resolve(optionalStr()(raw) ?? path.join(str('./data')(env.DATA_DIR), 'static')),
  ),
  wechatAppId: setting(
    'WECHAT_APPID',
    '(unset)',
    'WeChat mini-program app id, for `GET /api/v1/session/wechat/token`.',
    optionalStr(),
  ),
  wechatSecret: setting('WECHAT_SECRET', '(unset)', 'WeChat mini-program app secret.', optionalStr()),
  wechatApiBaseUrl: setting(
    'WECHAT_API_BASE_URL',
    'https://api.weixin.qq.com',
    'Base URL of the WeChat server API (tests point it at a fake server).',
    (raw) => (url('WECHAT_API_BASE_URL', ['http:', 'https:'])(raw) ?? 'https://api.weixin.qq.com').replace(/\/+$/, ''),
  ),
  codeLookupRateLimit: setting(
    'CODE_LOOKUP_RATE_LIMIT',
    '30',
    'Requests per IP per minute to the public `GET /api/v1/codes/{code}`.',
    int('CODE_LOOKUP_RATE_LIMIT', 30, 1, 10_000_000),
  ),
  maxActiveTasksPerUser: setting(
    'MAX_ACTIVE_TASKS_PER_USER',
    '3',
    'Pending or running AIDeer tasks a user may have at once; the next `POST /api/v1/tasks` is 429.',
    int('MAX_ACTIVE_TASKS_PER_USER', 3, 1, 1000),
  ),
  taskTtlSeconds: setting(
    'TASK_TTL_SECONDS',
    '3600',
    'How long a finished or failed AIDeer task stays readable before it is purged.',
    int('TASK_TTL_SECONDS', 3600, 1, 30 * 86400),
  ),
  taskLeaseSeconds: setting(
    'TASK_LEASE_SECONDS',
    '15',
    'How long a running AIDeer task stays claimed without its server renewing the claim (every third of it). Every instance looks for lapsed claims every third of it too, so a task whose server died is restarted from its start elsewhere at most 4/3 of this after its last renewal.',
    int('TASK_LEASE_SECONDS', 15, 2, 3600),
  ),
  taskMaxAttempts: setting(
    'TASK_MAX_ATTEMPTS',
    '3',
    'Runs an AIDeer task may start: a task whose server died is restarted until this many runs have been cut, then failed with a reason saying so.',
    int('TASK_MAX_ATTEMPTS', 3, 1, 100),
  ),
  taskProgressWriteMs: setting(
    'TASK_PROGRESS_WRITE_MS',
    '250',
    "Least time between two writes of a streaming AIDeer task's growing text to the database (the final write is always made); streams on the running instance get every piece at once, those on other instances at each write.",
    int('TASK_PROGRESS_WRITE_MS', 250, 10, 60_000),
  ),
  ssePingSeconds: setting(
    'SSE_PING_SECONDS',
    '15',
    'Interval of the `: ping` comment on task streams, which keeps proxies from closing them.',
    int('SSE_PING_SECONDS', 15, 1, 300),
  ),
  deepseekBaseUrl: setting(
    'DEEPSEEK_BASE_URL',
    'https://api.deepseek.com/v1',
    'OpenAI-compatible endpoint serving `deepseek-chat`.',
    (raw) => (url('DEEPSEEK_BASE_URL', ['http:', 'https:'])(raw) ?? 'https://api.deepseek.com/v1').replace(/\/+$/, ''),
  ),
  deepseekApiKey: setting(
    'DEEPSEEK_API_KEY',
    '(unset: `deepseek-chat` served by `echo`)',
    'Key for DeepSeek; when set, `deepseek-chat` (and title generation) is live.',
    optionalStr(),
  ),
  openaiBaseUrl: setting(
    'OPENAI_BASE_URL',
    'https://api.openai.com/v1',
    'OpenAI-compatible endpoint serving `gpt-3.5-turbo`.',
    (raw) => (url('OPENAI_BASE_URL', ['http:', 'https:'])(raw) ?? 'https://api.openai.com/v1').replace(/\/+$/, ''),
  ),
  openaiApiKey: setting(
    'OPENAI_API_KEY',
    '(unset: `gpt-3.5-turbo` served by `echo`)',
    'Key for OpenAI; when set, `gpt-3.5-turbo` is live.',
    optionalStr(),
  ),
  dashscopeBaseUrl: setting(
    'DASHSCOPE_BASE_URL',
    'https://dashscope.aliyuncs.com/compatible-mode/v1',
    "DashScope's OpenAI-compatible mode, serving the `qwen-*` models.",
    (raw) =>
      (
        url('DASHSCOPE_BASE_URL', ['http:', 'https:'])(raw) ?? 'https://dashscope.aliyuncs.com/compatible-mode/v1'
      ).replace(/\/+$/, ''),
  ),
  dashscopeApiKey: setting(
    'DASHSCOPE_API_KEY',
    '(unset: `qwen-*` served by `echo`)',
    'Key for DashScope; when set, the `qwen-*` models are live.',
    optionalStr(),
  ),
  llmTimeoutSeconds: setting(
    'LLM_TIMEOUT_SECONDS',
    '60',
    'Longest silence tolerated from an AIDeer model provider (before the answer starts, or between two chunks); the default of the three below.',
    int('LLM_TIMEOUT_SECONDS', 60, 1, 3600),
  ),
  deepseekTimeoutSeconds: setting(
    'DEEPSEEK_TIMEOUT_SECONDS',
    '`LLM_TIMEOUT_SECONDS`',
    'Timeout of the DeepSeek provider.',
    (raw, env) =>
      int('DEEPSEEK_TIMEOUT_SECONDS', int('LLM_TIMEOUT_SECONDS', 60, 1, 3600)(env.LLM_TIMEOUT_SECONDS), 1, 3600)(raw),
  ),
  openaiTimeoutSeconds: setting(
    'OPENAI_TIMEOUT_SECONDS',
    '`LLM_TIMEOUT_SECONDS`',
    'Timeout of the OpenAI provider.',
    (raw, env) =>
      int('OPENAI_TIMEOUT_SECONDS', int('LLM_TIMEOUT_SECONDS', 60, 1, 3600)(env.LLM_TIMEOUT_SECONDS), 1, 3600)(raw),
  ),
  dashscopeTimeoutSeconds: setting(
    'DASHSCOPE_TIMEOUT_SECONDS',
    '`LLM_TIMEOUT_SECONDS`',
    'Timeout of the DashScope provider.',
    (raw, env) =>
      int('DASHSCOPE_TIMEOUT_SECONDS', int('LLM_TIMEOUT_SECONDS', 60, 1, 3600)(env.LLM_TIMEOUT_SECONDS), 1, 3600)(raw),
  ),
  titleGenerationPrompt: setting(
    'TITLE_GENERATION_PROMPT',
    "(the original's Chinese prompt)",
    'Instruction appended to the conversation by `title_generation` tasks.',
    str(
      '用四到五个字直接返回这段对话的简要主题，不要解释、不要标点、不要语气词、不要多余文本，不要加粗，如果没有主题，请直接返回“闲聊”',
    ),
  ),
  // ── One-API ──
  oneapiSecret: setting(
    'ONEAPI_SECRET',
    '(generated in development)',
    'Key for hashing One-API verification codes. Required in production; in development a random one is kept in `DATA_DIR/secrets.json`.',
    (raw, env) => {
      const v = optionalStr()(raw);
      if (v === undefined && isProduction(env))
        throw new ConfigError('ONEAPI_SECRET', 'required when NODE_ENV=production');
      if (v !== undefined && v.length < 16) throw new ConfigError('ONEAPI_SECRET', 'must be at least 16 characters');
      return v;
    },
  ),
  phoneCodeMode: setting(
    'PHONE_CODE_MODE',
    '`fixed` (`random` in production)',
    '`fixed`: every code is `1111` and is returned in the response (test environments). `random`: 6 random digits sent through the SMS sender, never returned.',
    (raw, env) => oneOf('PHONE_CODE_MODE', ['fixed', 'random'] as const, isProduction(env) ? 'random' : 'fixed')(raw),
  ),
  phoneCodeTtlSeconds: setting(
    'PHONE_CODE_TTL_SECONDS',
    '600',
    'How long a verification code stays valid.',
    int('PHONE_CODE_TTL_SECONDS', 600, 10, 86400),
  ),
  phoneCodeMaxAttempts: setting(
    'PHONE_CODE_MAX_ATTEMPTS',
    '5',
    'Wrong tries after which a verification code is dead.',
    int('PHONE_CODE_MAX_ATTEMPTS', 5, 1, 100),
  ),
  phoneCodeCooldownSeconds: setting(
    'PHONE_CODE_COOLDOWN_SECONDS',
    '60',
    'Minimum time between two codes sent to one phone (429 before).',
    int('PHONE_CODE_COOLDOWN_SECONDS', 60, 0, 3600),
  ),
  smsSender: setting(
    'SMS_SENDER',
    'log',
    '`log` notes each code sent in the log (with the code itself only for random codes outside production); `webhook` POSTs `{phone, code, purpose}` as JSON to `SMS_WEBHOOK_URL`. In production `log` is refused unless `SMS_LOG_IN_PRODUCTION=true`.',
    (raw, env) => {
      const v = oneOf('SMS_SENDER', ['log', 'webhook'] as const, 'log')(raw);
      // Random codes that reach no phone and no log: nobody could log in to One-API.
      if (
        v === 'log' &&
        isProduction(env) &&
        bool('ENABLE_ONEAPI', true)(env.ENABLE_ONEAPI) &&
        !bool('SMS_LOG_IN_PRODUCTION', false)(env.SMS_LOG_IN_PRODUCTION)
      ) {
        throw new ConfigError(
          'SMS_SENDER',
          'is `log` with NODE_ENV=production, so One-API verification codes would reach no phone; set SMS_SENDER=webhook and SMS_WEBHOOK_URL, or SMS_LOG_IN_PRODUCTION=true to start anyway',
        );
      }
      return v;
    },
  ),
  smsLogInProduction: setting(
    'SMS_LOG_IN_PRODUCTION',
    'false',
    'Lets a production server start with `SMS_SENDER=log`: codes are then sent nowhere (the log notes each send without the code), so One-API phone log-in works only with `PHONE_CODE_MODE=fixed`.',
    bool('SMS_LOG_IN_PRODUCTION', false),
  ),
  smsWebhookUrl: setting(
    'SMS_WEBHOOK_URL',
    '(unset)',
    'Endpoint of the SMS gateway for `SMS_SENDER=webhook`.',
    (raw, env) => {
      const v = url('SMS_WEBHOOK_URL', ['http:', 'https:'])(raw);
      if (v === undefined && (env.SMS_SENDER ?? '').trim().toLowerCase() === 'webhook')
        throw new ConfigError('SMS_WEBHOOK_URL', 'required when SMS_SENDER=webhook');
      return v;
    },
  ),
  oneapiTokenTtlDays: setting(
    'ONEAPI_TOKEN_TTL_DAYS',
    '30',
    'Lifetime of a One-API access token issued at login.',
    int('ONEAPI_TOKEN_TTL_DAYS', 30, 1, 3650),
  ),
  oneapiRootPhone: setting(
    'ONEAPI_ROOT_PHONE',
    '(unset)',
    'When set, a root user (role 100) with this phone is created at start-up if missing.',
    (raw) => {
      const v = optionalStr()(raw);
      if (v !== undefined && !/^\d{11}$/.test(v)) throw new ConfigError('ONEAPI_ROOT_PHONE', 'expected 11 digits');
      return v;
    },
  ),
  oneapiChannels: setting(
    'ONEAPI_CHANNELS',
    '(unset: only channel 1, built-in)',
    'JSON array of One-API topic channels besides the built-in channel 1 (models `gpt-3.5-turbo`, `echo`): `[{"id": 2, "name": "DeepSeek", "kind": "openai-compatible", "base_url": "https://api.deepseek.com/v1", "api_key": "sk-...", "models": ["deepseek-chat"], "timeout_ms": 60000}]`. `kind` is `builtin` or `openai-compatible`; `name`, `api_key` and `timeout_ms` (longest upstream silence, default 60000) are optional; an entry with id 1 may only rename the built-in channel or change its models.',
    (raw) => {
      try {
        return parseChannels(raw);
      } catch (err) {
        throw new ConfigError('ONEAPI_CHANNELS', err instanceof Error ? err.message : String(err));
      }
    },
  ),
  oneapiTopicHistory: setting(
    'ONEAPI_TOPIC_HISTORY',
    '20',
    'Earlier messages of a topic sent along with a new one as context for the reply (0 sends only the new message).',
    int('ONEAPI_TOPIC_HISTORY', 20, 0, 200),
  ),
  llmEchoDelayMs: setting(
    'LLM_ECHO_DELAY_MS',
    '20',
    'Pause between the streamed pieces of a reply of the built-in offline model `echo` (0 for tests and benchmarks).',
    int('LLM_ECHO_DELAY_MS', 20, 0, 10_000),
  ),
  signinRateLimit: setting(
    'SIGNIN_RATE_LIMIT',
    '20',
    'Requests per IP to `/api/phone_verification`, `/api/user/register` and `/api/user/login` together, per window.',
    int('SIGNIN_RATE_LIMIT', 20, 1, 1_000_000),
  ),
  signinRateWindowSeconds: setting(
    'SIGNIN_RATE_WINDOW_SECONDS',
    '1200',
    'Window of `SIGNIN_RATE_LIMIT`.',
    int('SIGNIN_RATE_WINDOW_SECONDS', 1200, 1, 86400),
  ),
  globalRateLimit: setting(
    'GLOBAL_RATE_LIMIT',
    '600',
    'Requests per IP to anything under `/api` (One-API), per window.',
    int('GLOBAL_RATE_LIMIT', 600, 1, 10_000_000),
  ),
  globalRateWindowSeconds: setting(
    'GLOBAL_RATE_WINDOW_SECONDS',
    '180',
    'Window of `GLOBAL_RATE_LIMIT`.',
    int('GLOBAL_RATE_WINDOW_SECONDS', 180, 1, 86400),
  ),
  feedUrls: setting(
    'FEED_URLS',
    '(unset)',
    'Comma-separated RSS 2.0 / Atom feeds whose articles One-API subscriptions match: `http(s)://` URLs, `file://` URLs or file paths. A feed that fails is logged and skipped.',
    (raw) =>
      (raw ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map((entry, i) => {
          if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(entry)) return pathToFileURL(path.resolve(entry)).href;
          let u: URL;
          try {
            u = new URL(entry);
          } catch {
            throw new ConfigError('FEED_URLS', `entry ${i + 1} is not a valid URL`); // not echoed: it may hold credentials
          }
          if (!['http:', 'https:', 'file:'].includes(u.protocol))
            throw new ConfigError(
              'FEED_URLS',
              `entry ${i + 1}: expected an http, https or file URL, got ${u.protocol}`,
            );
          return u.href;
        }),
  ),
  feedSample: setting(
    'FEED_SAMPLE',
    '`true` (`false` in production)',
    'Also ingest the sample feed that ships with the project (`data-samples/feeds/sample-tech.xml`), so a fresh install has articles.',
    (raw, env) => bool('FEED_SAMPLE', !isProduction(env))(raw),
  ),
  feedRefreshSeconds: setting(
    'FEED_REFRESH_SECONDS',
    '1800',
    'Time between two reads of every feed (the first is 2 s after start-up).',
    int('FEED_REFRESH_SECONDS', 1800, 10, 604800),
  ),
  feedTimeoutSeconds: setting(
    'FEED_TIMEOUT_SECONDS',
    '10',
    'Time limit for reading one feed; a slower one is skipped until the next refresh.',
    int('FEED_TIMEOUT_SECONDS', 10, 1, 300),
  ),
} as const;

type SettingsTable = typeof SETTINGS;
export type Config = { [K in keyof SettingsTable]: ReturnType<SettingsTable[K]['parse']> } & { isProduction: boolean };

/** Reads every setting; throws a ConfigError naming the first invalid variable. */
export function loadConfig(env: Env = process.env): Config {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SETTINGS)) {
    out[key] = s.parse(env[s.name], env);
  }
  out.isProduction = out.nodeEnv === 'production';
  // TypeScript cannot type an object filled key by key in a loop as the mapped Config; each key
  // holds its own setting's parse result.
  return out as Config;
}
