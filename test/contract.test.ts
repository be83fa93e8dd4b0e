// Properties every operation of both contracts must have, swept over the whole spec: the documents
// are valid OpenAPI 3.1, the binding matches the spec, and the generic statuses (413, 429, 500,
// malformed bodies, unknown routes) answer in each API's own shape.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { Validator } from '@seriousme/openapi-schema-validator';
import { bodyOf, client, type Client } from './helpers/http.ts';
import { contract } from './helpers/contract.ts';
import { deref } from '../src/contract/document.ts';
import { exampleRequests, type ExampleRequest } from './helpers/examples.ts';
import { createTestDatabase, sharedServer, startServer, type TestDatabase, type TestServer } from './helpers/server.ts';
import { ROOT, SPEC_FILES, loadSpec } from '../src/spec.ts';
import { SETTINGS, ConfigError, loadConfig } from '../src/config.ts';
import { bindApi, checkBinding, BindingError } from '../src/http/bind.ts';
import { createLogger } from '../src/logger.ts';
import { oneapiErrors } from '../src/oneapi/http/envelope.ts';
import { mintToken, signUpAdmin, type Invalid } from './helpers/aideer.ts';
import { authHeaders, newSession, type OneApiError } from './helpers/oneapi.ts';

const requests = exampleRequests(contract);
const ERROR_BODY = {
  aideer: (detail: string) => ({ detail }),
  oneapi: (message: string) => ({ success: false, message }),
};

function send(
  api: Client,
  r: ExampleRequest,
  opts: { headers?: Record<string, string>; body?: unknown; contentType?: string } = {},
) {
  let req = api[r.method as 'get' | 'post' | 'put' | 'delete'](r.url).query(r.query);
  if (opts.headers) req = req.set(opts.headers);
  const body = opts.body ?? r.body;
  const type = opts.contentType ?? r.contentType;
  if (body !== undefined && type && type !== 'multipart/form-data') req = req.type(type).send(body as object);
  return req;
}

describe('the contracts', () => {
  for (const [name, file] of Object.entries(SPEC_FILES)) {
    it(`when openapi/${name}.yaml is checked by a 3.1-aware validator, then it is valid`, async () => {
      const result = await new Validator().validate(file);
      expect(result.errors ?? [], JSON.stringify(result.errors)).to.deep.equal([]);
      expect(result.valid).to.equal(true);
    });
  }

  it('when every operation id is listed, then each is unique and camelCase', () => {
    const ids = requests.map((r) => r.operationId);
    expect(new Set(ids).size).to.equal(ids.length);
    for (const id of ids) expect(id).to.match(/^[a-z][A-Za-z0-9]*$/);
  });
});

/** Files whose tests are generated from the spec: an operationId in their titles comes from the spec, not a person. */
const SWEEP_FILES = ['contract.test.ts', 'authz-matrix.test.ts', 'hostile-input.test.ts'];
const TITLED_OPERATION = /\b([a-z][A-Za-z0-9]*) — (GET|POST|PUT|PATCH|DELETE) (\/[^\s:,;)]*)/g;

describe('tests named by operationId', () => {
  it('when the whole suite is loaded, then each operationId of both documents names a test outside the sweeps, and "operationId — METHOD path" names its own method and path', function (this: Mocha.Context) {
    let root = this.test!.parent!;
    while (root.parent) root = root.parent;
    const tests: Mocha.Test[] = [];
    const walk = (suite: Mocha.Suite) => {
      tests.push(...suite.tests);
      suite.suites.forEach(walk);
    };
    walk(root);
    const testDir = path.join(ROOT, 'test');
    const testFiles = fs
      .readdirSync(testDir, { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => path.join(testDir, f));
    const loaded = new Set(tests.map((t) => t.file && path.resolve(t.file)));
    // Run on part of the suite (one file), the titles of the rest are not there to check.
    if (testFiles.some((f) => !loaded.has(f))) this.skip();

    const operations = new Map<string, string>();
    for (const api of Object.keys(SPEC_FILES) as (keyof typeof SPEC_FILES)[]) {
      for (const [route, item] of Object.entries(loadSpec(api).paths ?? {})) {
        for (const [method, op] of Object.entries(item as Record<string, { operationId?: string }>)) {
          if (op?.operationId) operations.set(op.operationId, `${method.toUpperCase()} ${route}`);
        }
      }
    }
    expect(operations.size).to.be.greaterThan(50);
    const titles = tests.filter((t) => !SWEEP_FILES.includes(path.basename(t.file ?? ''))).map((t) => t.fullTitle());
    const unnamed = [...operations.keys()].filter(
      (id) => !titles.some((title) => new RegExp(`\\b${id}\\b`).test(title)),
    );
    expect(unnamed, 'operations no test title names').to.deep.equal([]);
    const misnamed = new Set<string>();
    for (const title of titles) {
      for (const [, id, method, route] of title.matchAll(TITLED_OPERATION)) {
        if (operations.has(id) && operations.get(id) !== `${method} ${route}`)
          misnamed.add(`${id} — ${method} ${route} (the spec: ${operations.get(id)})`);
      }
    }
    expect([...misnamed], 'titles naming the wrong method or path').to.deep.equal([]);
  });
});

describe('binding operations to handlers', () => {
  it('when an operation has no handler or a handler names no operation, then binding is refused naming them', async () => {
    const ids = requests.filter((r) => r.api === 'oneapi').map((r) => r.operationId);
    const doc = loadSpec('oneapi');
    const handlers: Record<string, unknown> = Object.fromEntries(
      requests.filter((r) => r.api === 'oneapi').map((r) => [r.operationId, () => ({ status: 200 })]),
    );
    delete handlers.loginUser;
    handlers.loginUsr = () => ({ status: 200 });
    expect(() => checkBinding('One-API', ids, handlers)).to.throw(
      BindingError,
      /without a handler: loginUser.*naming no operation: loginUsr/,
    );
    let refused: unknown;
    try {
      await bindApi({
        name: 'One-API',
        document: doc,
        handlers: handlers as never,
        securityHandlers: {},
        authFrom: () => undefined,
        errors: oneapiErrors,
        logger: createLogger('silent'),
      });
    } catch (err) {
      refused = err;
    }
    expect(refused).to.be.instanceOf(BindingError);
  });
});

describe('every operation, swept from the spec', () => {
  let server: TestServer;
  let api: Client;
  before(async () => {
    server = await sharedServer();
    api = client(server.url);
  });

  for (const r of requests.filter((r) => r.contentType && r.contentType !== 'multipart/form-data')) {
    it(`when ${r.operationId} gets a body over 1 MB, then 413 in its API's shape`, async () => {
      const big =
        r.contentType === 'application/json'
          ? JSON.stringify({ padding: 'x'.repeat(1_100_000) })
          : `padding=${'x'.repeat(1_100_000)}`;
      const res = await send(api, r, { body: big }).expect(413);
      expect(res.body).to.deep.equal(
        r.api === 'aideer' ? ERROR_BODY.aideer('Request body too large') : ERROR_BODY.oneapi('请求体过大'),
      );
    });
  }

  for (const r of requests) {
    it(`when ${r.operationId} gets headers over MAX_HEADER_BYTES, then 431 in its API's shape, and the connection closes`, async () => {
      const res = await send(api, r, { headers: { 'X-Padding': 'h'.repeat(20_000) } }).expect(431);
      expect(res.headers.connection).to.equal('close');
      if (r.api === 'aideer') expect(res.body).to.have.keys('detail').and.property('detail').that.includes('16384');
      else expect(res.body).to.deep.include({ success: false }).and.property('message').that.includes('16384');
    });
  }

  for (const r of requests.filter((r) => r.contentType === 'application/json')) {
    it(`when ${r.operationId} gets malformed JSON, then its API's validation error`, async () => {
      const res = await send(api, r, { body: '{"a": ' }).expect(r.api === 'aideer' ? 422 : 400);
      if (r.api === 'aideer')
        expect(bodyOf<Invalid>(res).detail[0]).to.include({ type: 'json_invalid', msg: 'JSON decode error' });
      else expect(res.body).to.deep.equal(ERROR_BODY.oneapi('请求参数错误: 请求体不是合法的 JSON'));
    });
  }

  it("when a path matches no operation, then 404 in each API's shape", async () => {
    expect((await api.get('/api/v1/no/such/thing').expect(404)).body).to.deep.equal({ detail: 'Not Found' });
    expect((await api.get('/api/no/such/thing').expect(404)).body).to.deep.equal({
      success: false,
      message: '接口不存在',
    });
    expect((await api.get('/api/v1/users/me/avatar/extra').expect(404)).body).to.deep.equal({ detail: 'Not Found' });
  });

  it("when a path exists but not for that method, then 405 with Allow, in each API's shape", async () => {
    const a = await api.patch('/api/v1/users/me').expect(405);
    expect(a.body).to.deep.equal({ detail: 'Method Not Allowed' });
    expect(a.headers.allow).to.equal('GET');
    const o = await api.delete('/api/user/login').expect(405);
    expect(o.body).to.deep.equal({ success: false, message: '请求方法不允许' });
    expect(o.headers.allow).to.equal('POST');
  });

  it('when a collection path is written with a trailing slash, then it is the same operation', async () => {
    await api.get('/api/topics/').expect(401);
    await api.get('/api/topics').expect(401);
    await api.get('/api/user/self/').expect(401);
  });

  it('when a request carries X-Request-Id, then it is echoed; otherwise one is generated', async () => {
    const given = await api.get('/api/user/self').set('X-Request-Id', 'trace-123').expect(401);
    expect(given.headers['x-request-id']).to.equal('trace-123');
    const generated = await api.get('/api/user/self').expect(401);
    expect(generated.headers['x-request-id']).to.match(/^[0-9a-f-]{36}$/);
    const unsafe = await api.get('/api/user/self').set('X-Request-Id', 'bad id\twith spaces').expect(401);
    expect(unsafe.headers['x-request-id']).to.match(/^[0-9a-f-]{36}$/);
  });
});

describe('every implemented secured operation, swept from the spec', () => {
  let server: TestServer;
  let api: Client;
  let credentials: Record<'aideer' | 'oneapi', Record<string, string>>;
  before(async () => {
    server = await sharedServer();
    api = client(server.url);
    const admin = await signUpAdmin(api, server);
    const session = await newSession(api);
    credentials = { aideer: admin.bearer, oneapi: authHeaders(session) };
  });
  const secured = requests.filter((r) => r.secured);

  for (const r of secured) {
    it(`when ${r.operationId} is called without credentials, then 401 in its API's shape`, async () => {
      const res = await send(api, r).expect(401);
      if (r.api === 'aideer') {
        expect(res.body).to.deep.equal({ detail: 'Not authenticated' });
        expect(res.headers['www-authenticate']).to.equal('Bearer');
      } else expect(res.body).to.deep.equal(ERROR_BODY.oneapi('无权进行此操作，未提供 access token'));
    });
  }

  for (const r of requests.filter((r) => r.acceptsToken && r.api === 'aideer')) {
    const refresh = r.operationId === 'wechatRefresh';
    it(`when ${r.operationId} gets ${refresh ? 'an access' : 'a refresh'} token, then 400 ${refresh ? 'Refresh' : 'Access'} token required`, async () => {
      const res = await send(api, r, {
        headers: { Authorization: `Bearer ${mintToken({ sub: '1', ...(refresh ? {} : { refresh: true }) })}` },
      }).expect(400);
      expect(res.body).to.deep.equal({
        detail: `Could not validate credentials: ${refresh ? 'Refresh' : 'Access'} token required`,
      });
    });
  }

  // A NUL character (which Postgres text cannot hold) in any string of a JSON body.
  for (const r of requests.filter(
    (r) => r.contentType === 'application/json' && r.body && Object.values(r.body).some((v) => typeof v === 'string'),
  )) {
    it(`when ${r.operationId} gets a NUL character in a string, then its API's validation error, on every database`, async () => {
      const [field] = Object.entries(r.body as object).find(([, v]) => typeof v === 'string')!;
      const body = { ...(r.body as object), [field]: `a\u0000b` };
      const res = await send(api, r, { headers: credentials[r.api], body }).expect(r.api === 'aideer' ? 422 : 400);
      if (r.api === 'aideer') expect(bodyOf<Invalid>(res).detail[0].loc).to.deep.equal(['body', field]);
      else
        expect(bodyOf<OneApiError>(res).message).to.match(
          field === 'phone' ? /^手机号格式错误$/ : new RegExp(`^请求参数错误: ${field} 不合法$`),
        );
    });
  }

  it('when a path parameter holds a NUL character, then a validation error, not a database fault', async () => {
    const res = await api.get('/api/v1/codes/a%00b').expect(422);
    expect(bodyOf<Invalid>(res).detail[0].loc).to.deep.equal(['path', 'code']);
  });

  // Path parameters that break their schema: a non-number id, a malformed uuid, an over-long string.
  for (const r of requests.filter((r) =>
    /\{/.test(contract.operations().find((o) => o.operationId === r.operationId)!.template),
  )) {
    it(`when ${r.operationId} gets a malformed path parameter, then its API's validation error`, async () => {
      const op = contract.operations().find((o) => o.operationId === r.operationId)!;
      const doc = contract.docs[r.api];
      const params = [...op.pathParameters, ...(op.operation.parameters ?? [])].flatMap((p) => deref(doc, p) ?? []);
      let url = `${r.api === 'aideer' ? '/api/v1' : '/api'}${op.template}`;
      for (const p of params.filter((p) => p.in === 'path')) {
        const schema = p.schema ?? {};
        const maxLength = typeof schema.maxLength === 'number' ? schema.maxLength : 64;
        const bad = schema.type === 'string' && !schema.format ? 'x'.repeat(maxLength + 1) : 'not-an-id';
        url = url.replace(`{${p.name}}`, bad);
      }
      const res = await send(api, { ...r, url }, { headers: credentials[r.api] }).expect(
        r.api === 'aideer' ? 422 : 400,
      );
      if (r.api === 'aideer') expect(bodyOf<Invalid>(res).detail[0].loc[0]).to.equal('path');
      else expect(bodyOf<OneApiError>(res).message).to.match(/^请求参数错误: /);
    });
  }
});

describe('every One-API operation over the global per-IP limit', () => {
  let server: TestServer;
  let api: Client;
  before(async () => {
    server = await startServer({ GLOBAL_RATE_LIMIT: '1', TRUST_PROXY: 'true' });
    api = client(server.url);
  });
  after(() => server.close());

  requests
    .filter((r) => r.api === 'oneapi')
    .forEach((r, i) => {
      it(`when ${r.operationId} is called past the limit, then 429 in the envelope with Retry-After`, async () => {
        const ip = { 'X-Forwarded-For': `198.51.100.${i + 1}` };
        await send(api, r, { headers: ip });
        const res = await send(api, r, { headers: ip }).expect(429);
        expect(res.body).to.deep.equal(ERROR_BODY.oneapi('请求过于频繁，请稍后再试'));
        expect(Number(res.headers['retry-after'])).to.be.greaterThan(0);
      });
    });
});

describe('every implemented operation when the database is unreachable', () => {
  let server: TestServer;
  let api: Client;
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase();
    server = await startServer({ DEBUG: 'true', ADMIN_USER: 'sweep-admin', ADMIN_PASSWD: 'sweep-pass' }, { database });
    api = client(server.url);
    await database.db.destroy();
  });
  after(async () => {
    await server.close();
    await database.drop();
  });

  for (const r of requests) {
    it(`when ${r.operationId} is called, then 500 in its API's shape with nothing of the fault in it`, async () => {
      // Credentials that pass every check that needs no database, so the request reaches it.
      const headers: Record<string, string> =
        r.api === 'oneapi'
          ? { Authorization: 'some-token-value', UserID: '1' }
          : {
              Authorization: `Bearer ${mintToken({ sub: '1', ...(r.operationId === 'wechatRefresh' ? { refresh: true } : {}) })}`,
            };
      const res = await send(api, r, { headers }).expect(500);
      // wechatLogin fails on the (unconfigured) WeChat call before it needs the database.
      if (r.operationId !== 'wechatLogin')
        expect(res.body).to.deep.equal(
          r.api === 'aideer' ? ERROR_BODY.aideer('Internal Server Error') : ERROR_BODY.oneapi('服务器内部错误'),
        );
      expect(JSON.stringify(res.body)).to.not.match(/sqlite|knex|pool|connection|select|insert|stack|\.ts/i);
    });
  }
});

describe('settings', () => {
  const invalid: [Record<string, string>, string][] = [
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV'],
    [{ DATABASE_URL: 'mysql://localhost/db' }, 'DATABASE_URL'],
    [{ HOST: 'bad host' }, 'HOST'],
    [{ NODE_ENV: 'production' }, 'JWT_SECRET'],
    [{ NODE_ENV: 'production', JWT_SECRET: 'j'.repeat(32) }, 'ONEAPI_SECRET'],
    [{ JWT_SECRET: 'too-short' }, 'JWT_SECRET'],
    [{ BCRYPT_ROUNDS: '40' }, 'BCRYPT_ROUNDS'],
    [{ PUBLIC_BASE_URL: 'ftp://x' }, 'PUBLIC_BASE_URL'],
    [{ SMS_SENDER: 'webhook' }, 'SMS_WEBHOOK_URL'],
    [{ ENABLE_ONEAPI: 'maybe' }, 'ENABLE_ONEAPI'],
    [{ ONEAPI_ROOT_PHONE: '123' }, 'ONEAPI_ROOT_PHONE'],
  ];
  for (const [env, variable] of invalid) {
    it(`when ${JSON.stringify(env)}, then loading the settings fails naming ${variable}`, () => {
      expect(() => loadConfig(env)).to.throw(ConfigError, variable);
    });
  }

  it('when nothing is set, then the documented defaults apply', () => {
    const c = loadConfig({});
    expect(c).to.include({
      port: 8000,
      host: '127.0.0.1',
      nodeEnv: 'development',
      logLevel: 'info',
      phoneCodeMode: 'fixed',
      databaseUrl: undefined,
    });
    expect(c.dataDir).to.equal(path.resolve('./data'));
    expect(
      loadConfig({
        NODE_ENV: 'production',
        ONEAPI_SECRET: 'a'.repeat(32),
        JWT_SECRET: 'j'.repeat(32),
        SMS_LOG_IN_PRODUCTION: 'true',
      }).phoneCodeMode,
    ).to.equal('random');
  });

  it("when only LLM_TIMEOUT_SECONDS is set, then every AIDeer provider uses it; a provider's own timeout wins", () => {
    const c = loadConfig({ LLM_TIMEOUT_SECONDS: '5', OPENAI_TIMEOUT_SECONDS: '9' });
    expect([c.deepseekTimeoutSeconds, c.openaiTimeoutSeconds, c.dashscopeTimeoutSeconds]).to.deep.equal([5, 9, 5]);
    expect(() => loadConfig({ DASHSCOPE_TIMEOUT_SECONDS: '0' })).to.throw(ConfigError, 'DASHSCOPE_TIMEOUT_SECONDS');
  });

  it('when the server is started with an invalid setting, then it exits with a message naming the variable', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/server.ts')], {
      env: { ...process.env, PORT: 'eighty', DATA_DIR: fs.mkdtempSync('/tmp/cfg-') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).to.equal(1);
    expect(stderr).to.include('Invalid setting PORT');
  });

  it('when the README is read, then it documents every setting with its default', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const s of Object.values(SETTINGS)) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${s.name}\``));
      expect(row, `README row for ${s.name}`).to.be.a('string');
      expect(row).to.include(s.default);
    }
  });
});
