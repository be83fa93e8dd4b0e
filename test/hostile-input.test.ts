// Hostile input generated from the two specs with fast-check: every operation of both APIs gets
// requests that break its rules (missing, mistyped, too long or short, off-enum, extra fields;
// malformed, deep, empty, oversized, mistyped or non-UTF-8 bodies; ids that are not ids, huge
// numbers, path traversal), with valid credentials so validation is reached, and without. Every
// answer must be on contract (test/helpers/http.ts checks each one), never a 5xx, and a refused
// request must leave the database exactly as it was.
// Replay a run with HOSTILE_SEED=<the printed seed>; HOSTILE_CASES sets the number of cases.
import crypto from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import type { Knex } from 'knex';
import http from 'node:http';
import type supertest from 'supertest';
import { client, type Client } from './helpers/http.ts';
import { contract } from './helpers/contract.ts';
import { startServer, usingPostgres, type TestServer } from './helpers/server.ts';
import { signUpAdmin } from './helpers/aideer.ts';
import { authHeaders, newSession } from './helpers/oneapi.ts';
import { startFakeWeChat, type FakeWeChat } from './helpers/fakeWeChat.ts';
import { MAX_REQUEST_DEPTH } from '../src/http/bind.ts';
import type { ApiName } from '../src/spec.ts';
import type { OpenApiDocument } from '../src/contract/document.ts';

/**
 * A node of a parsed spec as the cases below read it: a schema, a parameter, a request body or a
 * media type, with the keywords they build values from (a node holds only those of its kind).
 */
interface SpecNode {
  $ref?: string;
  allOf?: SpecNode[];
  oneOf?: SpecNode[];
  anyOf?: SpecNode[];
  type?: string | string[];
  format?: string;
  enum?: unknown[];
  const?: unknown;
  example?: unknown;
  examples?: unknown[];
  default?: unknown;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  items?: SpecNode;
  properties?: Record<string, SpecNode>;
  additionalProperties?: unknown;
  unevaluatedProperties?: unknown;
  /** A schema's required properties; whether a parameter or a request body is required. */
  required?: string[] | boolean;
  in?: string;
  name?: string;
  schema?: SpecNode;
  content?: Record<string, { schema?: SpecNode }>;
}

/** A parameter, its schema resolved. */
interface Param extends SpecNode {
  in: string;
  name: string;
  schema: SpecNode;
}

/** The properties a schema requires (its `required` list; a parameter's flag is not one). */
const requiredOf = (schema: SpecNode): string[] | undefined =>
  Array.isArray(schema.required) ? schema.required : undefined;

const SEED = process.env.HOSTILE_SEED ? Number(process.env.HOSTILE_SEED) : crypto.randomInt(0, 2 ** 31);
const CASES = Number(process.env.HOSTILE_CASES ?? 5000);
const CONCURRENCY = 12;
const BASES: Record<ApiName, string> = { aideer: '/api/v1', oneapi: '/api' };
const BODY_LIMIT_BYTES = 1024 * 1024;

interface Operation {
  api: ApiName;
  operationId: string;
  method: string;
  template: string;
  protected: boolean;
  pathParams: Param[];
  queryParams: Param[];
  /** Media type → schema of the body. */
  body?: { required: boolean; types: Record<string, SpecNode> };
}

/** A request, and whether it must be refused (a 4xx) whatever the server makes of the rest. */
interface HostileCase {
  kind: string;
  op: Operation;
  auth: 'valid' | 'none' | 'garbage';
  path: Record<string, string>;
  query: Record<string, string>;
  contentType?: string;
  body?: string | Buffer;
  /** Extra request headers (the oversized ones). */
  headers?: Record<string, string>;
  mustRefuse: boolean;
}

const isRecord = (node: unknown): node is Record<string, unknown> => typeof node === 'object' && node !== null;

/** The node a local `$ref` (`#/...`) names. */
function pointedTo(doc: OpenApiDocument, ref: string): SpecNode {
  const node = ref
    .slice(2)
    .split('/')
    .reduce<unknown>((n, k) => {
      if (!isRecord(n)) throw new TypeError(`${ref} points nowhere in ${doc.info.title}`);
      return n[k.replace(/~1/g, '/').replace(/~0/g, '~')];
    }, doc);
  // A $ref stands where its target belongs: the specs are valid OpenAPI (contract.test.ts checks them).
  return node as SpecNode;
}

function deref(doc: OpenApiDocument, node: SpecNode | undefined, seen = 0): SpecNode {
  if (!node || seen > 20) return node ?? {};
  if (node.$ref) return deref(doc, pointedTo(doc, node.$ref), seen + 1);
  if (node.allOf) {
    const parts = node.allOf.map((s) => deref(doc, s, seen + 1));
    return {
      ...node,
      ...parts.reduce<SpecNode>((all, p) => ({ ...all, ...p }), {}),
      properties: [...parts.map((p) => p.properties ?? {}), node.properties ?? {}].reduce(
        (all, ps) => ({ ...all, ...ps }),
        {},
      ),
      required: [...parts.flatMap((p) => requiredOf(p) ?? []), ...(requiredOf(node) ?? [])],
    };
  }
  return node;
}

/** A parameter as OpenAPI requires one to be: named, and placed. */
function paramOf(doc: OpenApiDocument, node: SpecNode): Param {
  if (typeof node.name !== 'string' || typeof node.in !== 'string')
    throw new TypeError(`a parameter without a name or place in ${doc.info.title}: ${JSON.stringify(node)}`);
  return { ...node, in: node.in, name: node.name, schema: deref(doc, node.schema) };
}

function operationsOf(): Operation[] {
  return contract.operations().map((o) => {
    const doc = contract.docs[o.api];
    const op = o.operation;
    const params = [...o.pathParameters, ...(op.parameters ?? [])].map((p) => deref(doc, p));
    const security = op.security ?? doc.security ?? [];
    const content = op.requestBody ? deref(doc, op.requestBody).content : undefined;
    return {
      api: o.api,
      operationId: o.operationId,
      method: o.method,
      template: o.template,
      protected: security.length > 0 && !security.some((s) => Object.keys(s).length === 0),
      pathParams: params.filter((p) => p.in === 'path').map((p) => paramOf(doc, p)),
      queryParams: params.filter((p) => p.in === 'query').map((p) => paramOf(doc, p)),
      body: content
        ? {
            required: Boolean(deref(doc, op.requestBody).required),
            types: Object.fromEntries(Object.entries(content).map(([t, c]) => [t, deref(doc, c.schema)])),
          }
        : undefined,
    };
  });
}

let generatedIds = 0;

/** A uuid made from the seed, so a replayed run sends the same requests. */
function seededUuid(): string {
  const hex = crypto.createHash('sha256').update(`${SEED}:${generatedIds++}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** A value the schema accepts, as far as a quick reading of it goes (the cases break it anyway). */
function validValue(doc: OpenApiDocument, raw: SpecNode | undefined, depth = 0): unknown {
  const schema = deref(doc, raw);
  if (schema.example !== undefined) return schema.example;
  if (schema.examples?.length) return schema.examples[0];
  if (schema.default !== undefined) return schema.default;
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return schema.enum.find((v) => v !== null);
  const choice = schema.oneOf ?? schema.anyOf;
  if (choice) return validValue(doc, choice.find((s) => deref(doc, s).type !== 'null') ?? choice[0], depth + 1);
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  switch (type) {
    case 'string':
      if (schema.format === 'uuid') return seededUuid();
      if (schema.format === 'date-time') return '2024-01-02T03:04:05Z';
      return 'x'.repeat(Math.max(1, schema.minLength ?? 1));
    case 'integer':
    case 'number':
      return schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : 1);
    case 'boolean':
      return true;
    case 'array':
      return depth > 4
        ? []
        : Array.from({ length: schema.minItems ?? 0 }, () => validValue(doc, schema.items, depth + 1));
    default: {
      if (depth > 4) return {};
      const props = schema.properties ?? {};
      return Object.fromEntries(
        (requiredOf(schema) ?? Object.keys(props))
          .filter((k) => props[k])
          .map((k) => [k, validValue(doc, props[k], depth + 1)]),
      );
    }
  }
}

function schemaType(schema: SpecNode): string | undefined {
  return Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
}

/** A JSON value of another type than the schema's (and not null where null is allowed). */
type WrongValue = string | number | boolean | number[] | Record<string, number>;
function wrongTypeArb(schema: SpecNode): fc.Arbitrary<WrongValue> {
  const type = schemaType(schema);
  const all: Record<string, fc.Arbitrary<WrongValue>> = {
    string: fc.string({ maxLength: 20 }),
    number: fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Number.isInteger(n)),
    integer: fc.integer(),
    boolean: fc.boolean(),
    array: fc.array(fc.integer(), { maxLength: 3 }),
    object: fc.dictionary(fc.string({ minLength: 1, maxLength: 5 }), fc.integer(), { maxKeys: 2 }),
  };
  // An integer is a number too; a number with a fraction is not an integer.
  const others = Object.entries(all).filter(([t]) => t !== type && !(type === 'number' && t === 'integer'));
  return fc.oneof(...others.map(([, a]) => a));
}

/** Text that is not an id of any kind: traversal, huge numbers, signs, fractions, blanks, markup. */
const notAnIdArb = fc.oneof(
  fc.constantFrom(
    '../../etc/passwd',
    '..%2F..%2Fetc%2Fpasswd',
    '..\\..\\windows\\win.ini',
    '%2e%2e%2f',
    '/etc/passwd',
    'file:///etc/passwd',
  ),
  fc.constantFrom(
    '99999999999999999999999999999999',
    '1e308',
    '-1',
    '0x1f',
    '1.5',
    'NaN',
    'Infinity',
    '-0',
    ' 1',
    '%00',
    '<script>',
    "' OR '1'='1",
    '{}',
    '[]',
  ),
  fc.bigInt({ min: 2n ** 63n, max: 2n ** 200n }).map(String),
  fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !/^[0-9a-f-]{1,36}$/i.test(s)),
);

function urlOf(c: HostileCase): string {
  const path = c.op.template.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(c.path[name] ?? '1'));
  const query = new URLSearchParams(c.query).toString();
  return `${BASES[c.op.api]}${path}${query ? `?${query}` : ''}`;
}

interface Credentials {
  aideer: Record<string, string>;
  oneapi: Record<string, string>;
}

const GARBAGE: Credentials = {
  aideer: { Authorization: 'Bearer not.a.token' },
  oneapi: { Authorization: 'garbage-token', UserID: '1' },
};

/** Every case fast-check makes for one operation. */
function casesFor(op: Operation): fc.Arbitrary<HostileCase> {
  const doc = contract.docs[op.api];
  const validPath: Record<string, string> = Object.fromEntries(
    op.pathParams.map((p) => [p.name, String(validValue(doc, p.schema))]),
  );
  const validQuery: Record<string, string> = Object.fromEntries(
    op.queryParams.filter((p) => p.required).map((p) => [p.name, String(validValue(doc, p.schema))]),
  );
  const base = { op, path: validPath, query: validQuery, auth: 'valid' as const };
  const kinds: fc.Arbitrary<HostileCase>[] = [];

  if (op.protected) {
    kinds.push(
      fc
        .constantFrom<'none' | 'garbage'>('none', 'garbage')
        .map((auth) => ({ ...base, kind: `auth:${auth}`, auth, ...jsonBodyOf(op, doc), mustRefuse: true })),
    );
  }
  for (const p of op.pathParams) {
    kinds.push(
      notAnIdArb.map((value) => ({
        ...base,
        kind: `path:${p.name}:not-an-id`,
        path: { ...validPath, [p.name]: value },
        ...jsonBodyOf(op, doc),
        mustRefuse: false,
      })),
    );
  }
  for (const p of op.queryParams) {
    const off = p.schema.enum;
    const values = off
      ? fc.string({ maxLength: 12 }).filter((s) => !off.includes(s))
      : fc.oneof(
          notAnIdArb,
          wrongTypeArb(p.schema).map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))),
        );
    kinds.push(
      values.map((value) => ({
        ...base,
        kind: `query:${p.name}:bad`,
        query: { ...validQuery, [p.name]: value },
        ...jsonBodyOf(op, doc),
        mustRefuse: false,
      })),
    );
    if (p.required)
      kinds.push(
        fc.constant({
          ...base,
          kind: `query:${p.name}:missing`,
          query: Object.fromEntries(Object.entries(validQuery).filter(([k]) => k !== p.name)),
          ...jsonBodyOf(op, doc),
          mustRefuse: true,
        }),
      );
  }
  const json = op.body?.types['application/json'];
  if (json) {
    const valid = validValue(doc, json) ?? {};
    const props = json.properties ?? {};
    const send = (
      kind: string,
      body: string | Buffer,
      mustRefuse: boolean,
      contentType = 'application/json',
    ): HostileCase => ({ ...base, kind, contentType, body, mustRefuse });
    for (const name of requiredOf(json) ?? []) {
      kinds.push(
        fc.constant(
          send(
            `body:${name}:missing`,
            JSON.stringify(Object.fromEntries(Object.entries(valid).filter(([k]) => k !== name))),
            true,
          ),
        ),
      );
    }
    for (const [name, raw] of Object.entries(props)) {
      const schema = deref(doc, raw);
      kinds.push(
        wrongTypeArb(schema).map((v) =>
          send(`body:${name}:wrong-type`, JSON.stringify({ ...valid, [name]: v }), false),
        ),
      );
      if (schema.maxLength !== undefined)
        kinds.push(
          fc
            .integer({ min: schema.maxLength + 1, max: schema.maxLength + 200 })
            .map((n) => send(`body:${name}:too-long`, JSON.stringify({ ...valid, [name]: 'é'.repeat(n) }), true)),
        );
      if (schema.minLength !== undefined && schema.minLength > 0)
        kinds.push(
          fc
            .integer({ min: 0, max: schema.minLength - 1 })
            .map((n) => send(`body:${name}:too-short`, JSON.stringify({ ...valid, [name]: 'x'.repeat(n) }), true)),
        );
      const off = schema.enum;
      if (off)
        kinds.push(
          fc
            .string({ maxLength: 12 })
            .filter((s) => !off.includes(s))
            .map((s) => send(`body:${name}:off-enum`, JSON.stringify({ ...valid, [name]: s }), true)),
        );
      if (schemaType(schema) === 'string') {
        kinds.push(
          fc
            .constantFrom(
              Buffer.from([0xff]),
              Buffer.from([0xc3, 0x28]),
              Buffer.from([0xe4, 0xb8]),
              Buffer.from([0xed, 0xa0, 0x80]),
            )
            .map((bad) => {
              const [before, after] = JSON.stringify({ ...valid, [name]: '\u0001' }).split('\\u0001');
              return send(`body:${name}:not-utf8`, Buffer.concat([Buffer.from(before), bad, Buffer.from(after)]), true);
            }),
        );
      }
    }
    if (json.additionalProperties === false || json.unevaluatedProperties === false) {
      kinds.push(
        fc
          .string({ minLength: 1, maxLength: 12 })
          .filter((k) => !(k in props))
          .map((k) => send('body:extra-field', JSON.stringify({ ...valid, [k]: 1 }), true)),
      );
    }
    const text = JSON.stringify(valid);
    kinds.push(
      fc
        .oneof(
          fc.integer({ min: 1, max: Math.max(1, text.length - 1) }).map((n) => text.slice(0, n)),
          fc.constantFrom('{', '{"a":}', "{'a':1}", '[1,]', 'nul', '{"a":1}}', '\u0000'),
        )
        .map((t) => send('body:malformed', t, true)),
    );
    kinds.push(
      fc
        .integer({ min: MAX_REQUEST_DEPTH + 1, max: 100_000 })
        .chain((levels) =>
          fc.constantFrom(
            `${'['.repeat(levels)}${']'.repeat(levels)}`,
            `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`,
          ),
        )
        .map((t) => send('body:deep', t, true)),
    );
    kinds.push(
      fc
        .constantFrom(
          'text/plain',
          'application/xml',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
        )
        .map((t) => send(`body:content-type:${t.split(';')[0]}`, text, op.body!.required, t)),
    );
    kinds.push(fc.constant(send('body:empty', '', op.body!.required)));
    kinds.push(
      fc.constant(send('body:over-limit', JSON.stringify({ ...valid, filler: 'x'.repeat(BODY_LIMIT_BYTES) }), true)),
    );
  }
  const form = op.body?.types['application/x-www-form-urlencoded'];
  if (form) {
    const send = (
      kind: string,
      body: string | Buffer,
      mustRefuse: boolean,
      contentType = 'application/x-www-form-urlencoded',
    ): HostileCase => ({ ...base, kind, contentType, body, mustRefuse });
    const valid = validObject(doc, form);
    for (const name of requiredOf(form) ?? [])
      kinds.push(
        fc.constant(
          send(
            `form:${name}:missing`,
            new URLSearchParams(
              Object.entries(valid)
                .filter(([k]) => k !== name)
                .map(([k, v]): [string, string] => [k, String(v)]),
            ).toString(),
            true,
          ),
        ),
      );
    kinds.push(
      fc
        .constantFrom('%FF', '%C3%28', '%E4%B8', '%ED%A0%80')
        .map((bad) => send('form:not-utf8', `username=a${bad}&password=b`, true)),
    );
    kinds.push(fc.constant(send('form:over-limit', `username=${'x'.repeat(BODY_LIMIT_BYTES)}&password=b`, true)));
    kinds.push(fc.constant(send('form:empty', '', true)));
    kinds.push(fc.constant(send('form:as-json', JSON.stringify(valid), true, 'application/json')));
  }
  if (op.body?.types['multipart/form-data']) {
    const boundary = 'hostileboundary';
    const part = (filename: string, content: Buffer) =>
      Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="avatar_file"; filename="${filename}"\r\nContent-Type: image/png\r\n\r\n`,
        ),
        content,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
    const send = (
      kind: string,
      body: Buffer | string,
      contentType = `multipart/form-data; boundary=${boundary}`,
    ): HostileCase => ({ ...base, kind, contentType, body, mustRefuse: true });
    kinds.push(
      fc
        .constantFrom('../../../etc/passwd', '..\\..\\boot.ini', '/etc/shadow', 'a\u0000.png', '....//....//x.png')
        .map((name) => send('multipart:traversal-name', part(name, Buffer.from('not an image')))),
    );
    kinds.push(fc.constant(send('multipart:missing-file', `--${boundary}--\r\n`)));
    kinds.push(
      fc.constant(
        send(
          'multipart:cut-off',
          `--${boundary}\r\nContent-Disposition: form-data; name="avatar_file"; filename="a.png"\r\n\r\nunfinished`,
        ),
      ),
    );
    kinds.push(fc.constant(send('multipart:as-json', '{"avatar_file":"x"}', 'application/json')));
  }
  // Any operation: a hostile body it may not even take, with no credentials where they are needed
  // (so a request that is otherwise fine cannot act).
  kinds.push(
    fc
      .tuple(
        fc.constantFrom(
          'application/json',
          'text/plain',
          'application/x-www-form-urlencoded',
          'application/octet-stream',
        ),
        fc.constantFrom(
          `${'['.repeat(50_000)}${']'.repeat(50_000)}`,
          Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
          '\u0000',
          'a[b][c][d]=1&__proto__[x]=1',
        ),
      )
      .map(([contentType, body]) => ({
        ...base,
        kind: `any:odd-body:${contentType}`,
        auth: op.protected ? ('none' as const) : ('valid' as const),
        contentType,
        body,
        mustRefuse: op.protected || Boolean(op.body),
      })),
  );
  // Any operation: headers over the server's limit (MAX_HEADER_BYTES, 16 KB by default), in a
  // header of their own, a cookie, or the credentials themselves; answered before routing with 431.
  kinds.push(
    fc
      .tuple(fc.constantFrom('X-Padding', 'Cookie', 'Authorization'), fc.integer({ min: 17 * 1024, max: 64 * 1024 }))
      .map(([name, size]) => ({
        ...base,
        kind: `any:headers-over-limit:${name}`,
        headers: { [name]: name === 'Cookie' ? `a=${'c'.repeat(size)}` : 'h'.repeat(size) },
        ...jsonBodyOf(op, doc),
        mustRefuse: true,
      })),
  );
  return fc.oneof(...kinds);
}

/** A valid value of an object schema (a form body's): an object, or the schema is not read as it should be. */
function validObject(doc: OpenApiDocument, schema: SpecNode): Record<string, unknown> {
  const value = validValue(doc, schema);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new TypeError(`a form body that is not an object: ${JSON.stringify(value)}`);
  return Object.fromEntries(Object.entries(value));
}

/** A body for cases that break something else: the operation's valid-looking JSON body, if any. */
function jsonBodyOf(op: Operation, doc: OpenApiDocument): Pick<HostileCase, 'contentType' | 'body'> {
  const json = op.body?.types['application/json'];
  return json ? { contentType: 'application/json', body: JSON.stringify(validValue(doc, json)) } : {};
}

/** Every table's rows, as one digest: what a refused request must leave as it was. */
async function snapshot(db: Knex): Promise<string> {
  const tables: string[] = usingPostgres
    ? (
        await db.raw<{ rows: { name: string }[] }>(
          `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`,
        )
      ).rows.map((r: { name: string }) => r.name)
    : (
        await db.raw<{ name: string }[]>(
          `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`,
        )
      ).map((r: { name: string }) => r.name);
  const hash = crypto.createHash('sha256');
  for (const table of tables.sort()) {
    const rows = (await db(table).select()).map((r: unknown) => JSON.stringify(r)).sort();
    hash.update(`${table}\n${rows.join('\n')}\n`);
  }
  return hash.digest('hex');
}

// Connections are kept open between cases, as a client would.
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function send(api: Client, c: HostileCase, credentials: Credentials): supertest.Test {
  let req = api[c.op.method as 'get'](urlOf(c)).agent(keepAlive);
  if (c.auth === 'valid' && c.op.protected) req = req.set(credentials[c.op.api]);
  if (c.auth === 'garbage') req = req.set(GARBAGE[c.op.api]);
  if (c.headers) req = req.set(c.headers);
  if (c.contentType !== undefined) req = req.set('Content-Type', c.contentType);
  // superagent would re-encode a JSON-typed body; the bytes go as generated.
  if (c.body !== undefined) req = req.serialize((b: unknown) => b as string).send(c.body as string);
  return req;
}

describe(`hostile input from the specs (seed ${SEED}: replay with HOSTILE_SEED=${SEED})`, function () {
  let server: TestServer;
  let api: Client;
  let credentials: Credentials;

  let wechat: FakeWeChat;

  before(async () => {
    // WeChat log-in reaches a WeChat that knows no code: every generated code is refused there.
    wechat = await startFakeWeChat();
    server = await startServer({
      FEED_SAMPLE: 'false',
      WECHAT_APPID: 'wx-test-app',
      WECHAT_SECRET: 'wx-test-secret',
      WECHAT_API_BASE_URL: wechat.url,
    });
    api = client(server.url);
    const admin = await signUpAdmin(api, server);
    credentials = { aideer: admin.bearer, oneapi: authHeaders(await newSession(api)) };
  });
  after(async () => {
    keepAlive.destroy();
    await server.close();
    await wechat.close();
  });

  const operations = operationsOf();
  const perOperation = Math.ceil(CASES / operations.length);
  const tried: string[] = [];

  before(() =>
    console.log(
      `      hostile input: seed ${SEED}, ${perOperation} cases for each of ${operations.length} operations (replay: HOSTILE_SEED=${SEED})`,
    ),
  );
  after(() => {
    const byKind = new Map<string, number>();
    for (const kind of tried)
      byKind.set(kind.split(':').slice(0, 2).join(':'), (byKind.get(kind.split(':').slice(0, 2).join(':')) ?? 0) + 1);
    console.log(
      `      hostile input: ${tried.length} cases tried, seed ${SEED}; by kind: ${[...byKind]
        .sort()
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
    );
  });

  operations.forEach((op, index) => {
    it(`when ${perOperation} generated requests break the rules of ${op.method.toUpperCase()} ${BASES[op.api]}${op.template}, then each is answered on contract, never 5xx, and a refused one changes nothing`, async () => {
      const cases = fc.sample(casesFor(op), { seed: SEED + index, numRuns: perOperation });
      const failures: string[] = [];
      let before = await snapshot(server.db);
      for (let start = 0; start < cases.length; start += CONCURRENCY) {
        const batch = cases.slice(start, start + CONCURRENCY);
        const answers = await Promise.all(
          batch.map((c) =>
            send(api, c, credentials).then(
              (res) => res,
              (err: Error) => err,
            ),
          ),
        );
        let refusedAll = true;
        answers.forEach((res, j) => {
          const c = batch[j];
          tried.push(c.kind);
          const what = `case ${start + j} ${c.kind} ${c.op.method.toUpperCase()} ${urlOf(c).slice(0, 120)}`;
          if (res instanceof Error)
            return void failures.push(`${what}: ${res.message.split('\n').slice(0, 2).join(' ').slice(0, 400)}`);
          if (res.status >= 500) failures.push(`${what}: ${res.status} ${res.text.slice(0, 200)}`);
          if (res.status < 400) refusedAll = false;
          if (c.mustRefuse && res.status < 400) failures.push(`${what}: accepted with ${res.status}`);
        });
        const after = await snapshot(server.db);
        if (refusedAll && after !== before)
          failures.push(
            `cases ${start}-${start + batch.length - 1} (${batch.map((c) => c.kind).join(', ')}): every request was refused, yet the database changed`,
          );
        before = after;
      }
      expect(failures, `seed ${SEED}`).to.deep.equal([]);
    });
  });

  it('when the run is over, then at least the asked number of cases were tried, over every operation of both specs', () => {
    expect(tried.length).to.be.at.least(CASES);
    expect(new Set(operations.map((op) => `${op.api} ${op.operationId}`)).size).to.equal(contract.operations().length);
  });
});
