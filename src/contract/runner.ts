// The conformance runner's core: black-box journeys over a live server, using only the two
// contracts and HTTP. Every response (and every event of a stream) goes through the shared
// contract checker; a journey also fails when a step gets a documented but wrong status.
import crypto from 'node:crypto';
import { streamEvents } from './eventStream.ts';
import { Contract, resolve, streamEventOf, type CoverageRow, type StreamEventSeen } from './checker.ts';
import type { ApiName } from '../spec.ts';

export interface RunnerOptions {
  baseUrl: string;
  apis: ApiName[];
  /** AIDeer admin (ADMIN_USER / ADMIN_PASSWD), for codes, credits, tasks and user management. */
  adminUser?: string;
  adminPassword?: string;
  /** One-API root user's phone (ONEAPI_ROOT_PHONE), for the admin-only article operation. */
  rootPhone?: string;
  /** The code every One-API verification gets on environments with fixed codes. */
  fixedCode?: string;
  /** Allows the AIDeer `utils` operations (init, admin, drop): they change or wipe the deployment. */
  allowUtils: boolean;
  /** Longest `Retry-After` honoured on a 429, in seconds; a longer one fails the step. */
  maxWaitSeconds: number;
  /** Sent with every request (a gateway's key, a tracing header). */
  headers?: Record<string, string>;
  log?: (line: string) => void;
}

export interface JourneyResult {
  api: ApiName;
  name: string;
  /** Contract violations: responses or events the spec does not describe. */
  violations: string[];
  /** Steps that got a documented but unexpected answer, or could not run. */
  failures: string[];
  skipped?: string;
  durationMs: number;
}

export interface RunResult {
  baseUrl: string;
  startedAt: string;
  durationMs: number;
  journeys: JourneyResult[];
  coverage: CoverageRow[];
  eventsChecked: number;
  retriesAfter429: number;
}

interface CallOptions {
  query?: Record<string, string | number>;
  headers?: Record<string, string>;
  json?: unknown;
  form?: Record<string, string>;
  multipart?: FormData;
  /** Statuses this step expects; any other stops the journey. */
  expect?: number | number[];
}

interface Answer {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

class StopJourney extends Error {}

const BASES: Record<ApiName, string> = { aideer: '/api/v1', oneapi: '/api' };
// A 1×1 PNG, the smallest image an avatar upload takes.
const TINY_PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
const NO_SUCH_UUID = '00000000-0000-4000-8000-000000000000';

const unique = (prefix: string) => `${prefix}_${crypto.randomBytes(5).toString('hex')}`;
const uniquePhone = () => `1${String(crypto.randomInt(0, 1e10)).padStart(10, '0')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Runner {
  readonly contract = new Contract();
  private retries = 0;

  constructor(private readonly opts: RunnerOptions) {}

  get options(): RunnerOptions {
    return this.opts;
  }

  private log(line: string) {
    this.opts.log?.(line);
  }

  async run(): Promise<RunResult> {
    const started = Date.now();
    const journeys: JourneyResult[] = [];
    const plan: [ApiName, string, (j: Journey) => Promise<void>][] = [];
    if (this.opts.apis.includes('aideer')) {
      plan.push(['aideer', 'accounts, presets, chats and likes', (j) => aideerUserJourney(j)]);
      plan.push(['aideer', 'codes, credits, a task and its stream (admin)', (j) => aideerAdminJourney(j, this.opts)]);
      plan.push(['aideer', 'refusals: bad ids, missing tokens, unknown routes', (j) => aideerRefusals(j)]);
      plan.push(['aideer', 'every secured operation without a token, every body over 1 MB, every id malformed or unknown', async (j) => this.sweep(j, {}, bearer((await aideerSignUp(j)).token))]);
      if (this.opts.allowUtils) plan.push(['aideer', 'utils (allowed by --allow-utils)', (j) => aideerUtils(j)]);
    }
    if (this.opts.apis.includes('oneapi')) {
      plan.push(['oneapi', "accounts, topics and messages; every secured operation without a token and with another user's UserID, every body over 1 MB, every id malformed or unknown", (j) => oneapiTopicsJourney(j, this)]);
      plan.push(['oneapi', 'subscriptions and articles', (j) => oneapiSubscriptionsJourney(j, this.opts)]);
      plan.push(['oneapi', 'refusals: bad input, missing tokens, unknown routes', (j) => oneapiRefusals(j)]);
    }
    for (const [api, name, body] of plan) {
      const journey = new Journey(this, api, name);
      const t0 = Date.now();
      try {
        await body(journey);
      } catch (err) {
        if (err instanceof SkipJourney) journey.result.skipped = err.message;
        else if (!(err instanceof StopJourney)) {
          journey.result.failures.push(`stopped: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      journey.result.durationMs = Date.now() - t0;
      const r = journey.result;
      this.log(`${r.skipped ? 'SKIP' : r.violations.length + r.failures.length ? 'FAIL' : 'PASS'} ${api}: ${name}${r.skipped ? ` (${r.skipped})` : ''}`);
      for (const p of [...r.violations, ...r.failures]) this.log(`     ${p}`);
      journeys.push(r);
    }
    const coverage = this.contract.coverage().filter((row) => this.opts.apis.includes(row.api));
    return {
      baseUrl: this.opts.baseUrl,
      startedAt: new Date(started).toISOString(),
      durationMs: Date.now() - started,
      journeys,
      coverage,
      eventsChecked: [...this.contract.eventsChecked.values()].reduce((a, b) => a + b, 0),
      retriesAfter429: this.retries,
    };
  }

  /**
   * Walks every operation of the journey's API from the spec alone: each secured one called with
   * no credentials, or with `mismatched` ones (a token and another user's UserID), must be 401;
   * each one taking a JSON
   * body must refuse a body over 1 MB with 413. Path parameters come from their schemas' examples.
   * Given `authorised` credentials (a fresh user's), every operation with a path parameter is also
   * called with a malformed id and with one that names nothing, and must refuse (4xx, documented).
   * The utils operations are left out (they are not secured and take no body).
   */
  async sweep(j: Journey, mismatched: Record<string, string>, authorised?: Record<string, string>) {
    const doc = this.contract.docs[j.api];
    const big = { padding: 'x'.repeat(1_100_000) };
    for (const op of this.contract.operations().filter((o) => o.api === j.api)) {
      const item = doc.paths[op.template];
      const operation = item[op.method];
      if ((operation.tags ?? []).includes('utils')) continue;
      const params = [...(item.parameters ?? []), ...(operation.parameters ?? [])].map((p) => (p.$ref ? resolve(doc, p.$ref) : p));
      const path = op.template.replace(/\{([^}]+)\}/g, (_m, name: string) => {
        const schema = params.find((p) => p.in === 'path' && p.name === name)?.schema ?? {};
        const example = schema.example ?? (schema.format === 'uuid' ? NO_SUCH_UUID : schema.type === 'integer' ? 1 : 'x');
        return encodeURIComponent(String(example));
      });
      const method = op.method.toUpperCase();
      const media = operation.requestBody?.content ?? {};
      const jsonExample = media['application/json'] ? (media['application/json'].example ?? Object.values<{ value: unknown }>(media['application/json'].examples ?? {})[0]?.value ?? {}) : undefined;
      const security = operation.security ?? doc.security ?? [];
      const secured = security.length > 0 && !security.some((s: object) => Object.keys(s).length === 0);
      if (secured) {
        await j.call(method, path, { json: jsonExample, expect: 401 });
        if (Object.keys(mismatched).length) await j.call(method, path, { headers: mismatched, json: jsonExample, expect: 401 });
      }
      if (jsonExample !== undefined && '413' in op.responses) await j.call(method, path, { json: big, expect: 413 });
      // With a fresh user's credentials, ids that are malformed or name nothing: refused with a
      // documented status, whatever the order of the server's checks (a fresh user owns nothing,
      // so no such call can change data).
      if (authorised && /\{/.test(op.template)) {
        for (const fill of [() => 'not-an-id', (schema: Json) => (schema.format === 'uuid' ? NO_SUCH_UUID : schema.type === 'integer' ? 2147483647 : unique('none'))]) {
          const probe = op.template.replace(/\{([^}]+)\}/g, (_m, name: string) => encodeURIComponent(String(fill(params.find((p) => p.in === 'path' && p.name === name)?.schema ?? {}))));
          const answer = await j.call(method, probe, { headers: authorised, json: jsonExample });
          if (answer.status >= 500 || answer.status < 400) j.note([`${method} ${probe}: expected a refusal, got ${answer.status}`]);
        }
      }
    }
  }

  /** One HTTP exchange, retried after a 429 as its Retry-After says; every answer is checked. */
  async exchange(journey: Journey, method: string, path: string, o: CallOptions): Promise<Answer> {
    const url = new URL(this.opts.baseUrl.replace(/\/+$/, '') + path);
    for (const [k, v] of Object.entries(o.query ?? {})) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', ...this.opts.headers, ...o.headers };
    let body: RequestInit['body'];
    if (o.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(o.json);
    } else if (o.form) body = new URLSearchParams(o.form);
    else if (o.multipart) body = o.multipart;
    for (;;) {
      const res = await fetch(url, { method, headers, body, redirect: 'manual' });
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = text;
      }
      journey.note(this.contract.check({ method, url: url.pathname + url.search, status: res.status, headers: Object.fromEntries(res.headers), body: parsed, text }));
      if (res.status === 429 && !(Array.isArray(o.expect) ? o.expect : [o.expect]).includes(429)) {
        const wait = retryAfterSeconds(res.headers.get('retry-after'));
        if (wait !== undefined && wait <= this.opts.maxWaitSeconds) {
          this.retries++;
          this.log(`     429 on ${method} ${url.pathname}: waiting ${wait} s as Retry-After says`);
          await sleep(wait * 1000);
          continue;
        }
      }
      return { status: res.status, headers: res.headers, body: parsed };
    }
  }

  /** Opens an event stream, checks the response and every event, and returns the events. */
  async stream(journey: Journey, path: string): Promise<{ status: number; events: StreamEventSeen[] }> {
    const url = new URL(this.opts.baseUrl.replace(/\/+$/, '') + path);
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...this.opts.headers } });
    const seen = { method: 'GET', url: url.pathname, status: res.status };
    const streamed = (res.headers.get('content-type') ?? '').startsWith('text/event-stream');
    const text = streamed ? '' : await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    journey.note(this.contract.check({ ...seen, headers: Object.fromEntries(res.headers), body, text }));
    const events: StreamEventSeen[] = [];
    if (!streamed || !res.body) return { status: res.status, events };
    for await (const raw of streamEvents(res.body)) {
      const event = streamEventOf(raw);
      events.push(event);
      journey.note(this.contract.checkEvent(seen, event));
    }
    return { status: res.status, events };
  }
}

/** Retry-After as seconds: a number of seconds or an HTTP date. */
function retryAfterSeconds(value: string | null): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

class SkipJourney extends Error {}

export class Journey {
  readonly result: JourneyResult;

  constructor(
    private readonly runner: Runner,
    readonly api: ApiName,
    name: string,
  ) {
    this.result = { api, name, violations: [], failures: [], durationMs: 0 };
  }

  note(problems: string[]) {
    this.result.violations.push(...problems);
  }

  /** A step whose answer is expected only to be on contract, unless `expect` names statuses. */
  async call(method: string, path: string, o: CallOptions = {}): Promise<Answer> {
    const answer = await this.runner.exchange(this, method, BASES[this.api] + path, o);
    const expected = o.expect === undefined ? undefined : Array.isArray(o.expect) ? o.expect : [o.expect];
    if (expected && !expected.includes(answer.status)) {
      this.result.failures.push(`${method} ${BASES[this.api]}${path}: expected ${expected.join(' or ')}, got ${answer.status} ${JSON.stringify(answer.body)?.slice(0, 300)}`);
      throw new StopJourney();
    }
    return answer;
  }

  stream(path: string) {
    return this.runner.stream(this, BASES[this.api] + path);
  }

  fail(message: string): never {
    this.result.failures.push(message);
    throw new StopJourney();
  }

  skip(reason: string): never {
    throw new SkipJourney(reason);
  }

  /** Runs clean-up steps whatever happened before; their own failures are recorded, not thrown. */
  async cleanUp(steps: (() => Promise<unknown>)[]) {
    for (const step of steps) {
      try {
        await step();
      } catch (err) {
        if (!(err instanceof StopJourney)) {
          this.result.failures.push(`clean-up: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
  }
}

// ───────────────────────────── AIDeer ─────────────────────────────

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

async function aideerSignUp(j: Journey): Promise<{ id: number; username: string; password: string; token: string }> {
  const username = unique('conf');
  const password = 'conformance-pass-1';
  const created = await j.call('POST', '/users', { json: { username, password, nickname: 'Conformance' }, expect: 200 });
  return { id: created.body.id, username, password, token: await aideerLogIn(j, username, password) };
}

async function aideerLogIn(j: Journey, username: string, password: string): Promise<string> {
  const res = await j.call('POST', '/session/oauth2/token', { form: { grant_type: 'password', username, password }, expect: 200 });
  return res.body.access_token;
}

const presetBody = (title: string) => ({
  title,
  description: 'Made by the conformance runner',
  visibility: 'private',
  messages: [{ role: 'system', type: 'text', content: 'You are a helpful assistant.' }],
});
const chatBody = (presetId: string, title: string) => ({
  preset_id: presetId,
  title,
  visibility: 'private',
  messages: [{ role: 'user', type: 'text', content: 'Say hello to the conformance runner.' }],
});

async function aideerUserJourney(j: Journey) {
  const user = await aideerSignUp(j);
  const auth = bearer(user.token);
  const cleanUp: (() => Promise<unknown>)[] = [];
  try {
    await j.call('POST', '/users', { json: { username: user.username, password: 'another-pass-1' }, expect: [400, 422] });
    await j.call('POST', '/session/oauth2/token', { form: { username: user.username, password: 'wrong-pass-1' }, expect: 401 });
    await j.call('GET', '/users/me', { headers: auth, expect: 200 });
    await j.call('GET', '/users/me/credits', { headers: auth, expect: 200 });
    await j.call('GET', `/users/${user.id}`, { headers: auth, expect: 200 });
    const form = new FormData();
    form.append('avatar_file', new Blob([TINY_PNG], { type: 'image/png' }), 'avatar.png');
    await j.call('POST', '/users/me/avatar', { headers: auth, multipart: form, expect: 200 });
    await j.call('GET', '/users/me/avatar', { headers: auth, expect: 307 });
    await j.call('GET', `/users/${user.id}/avatar`, { headers: auth, expect: 307 });
    await j.call('PUT', '/users/me/password', { headers: auth, json: { old_password: 'not-the-password', new_password: 'conformance-pass-2' }, expect: [400, 401, 403, 422] });
    await j.call('PUT', '/users/me/password', { headers: auth, json: { old_password: user.password, new_password: 'conformance-pass-2' }, expect: 200 });
    user.password = 'conformance-pass-2';
    await j.call('GET', `/users`, { headers: auth, expect: 403 });

    const preset = (await j.call('POST', '/presets', { headers: auth, json: presetBody(unique('preset')), expect: 200 })).body;
    cleanUp.unshift(() => j.call('DELETE', `/presets/${preset.id}`, { headers: auth, expect: [200, 404] }));
    await j.call('POST', '/presets', { headers: auth, json: { ...presetBody(unique('preset')), visibility: 'public' }, expect: 403 });
    await j.call('POST', '/presets', { headers: auth, json: { title: 42 }, expect: 422 });
    await j.call('GET', '/presets', { headers: auth, query: { page: 1, size: 10 }, expect: 200 });
    await j.call('GET', `/presets/${preset.id}`, { headers: auth, expect: 200 });
    await j.call('PUT', `/presets/${preset.id}`, { headers: auth, json: { ...presetBody(unique('preset')), description: 'Changed' }, expect: 200 });
    await j.call('POST', `/users/me/likes/preset/${preset.id}`, { headers: auth, expect: 200 });
    await j.call('GET', '/users/me/likes', { headers: auth, expect: 200 });
    await j.call('DELETE', `/users/me/likes/preset/${preset.id}`, { headers: auth, expect: 200 });

    const chat = (await j.call('POST', '/chats', { headers: auth, json: chatBody(preset.id, unique('chat')), expect: 200 })).body;
    cleanUp.unshift(() => j.call('DELETE', `/chats/${chat.id}`, { headers: auth, expect: [200, 404] }));
    await j.call('GET', '/chats', { headers: auth, query: { page: 1, size: 10 }, expect: 200 });
    await j.call('GET', `/chats/${chat.id}`, { headers: auth, expect: 200 });
    await j.call('PUT', `/chats/${chat.id}`, { headers: auth, json: { ...chatBody(preset.id, unique('chat')), messages: [...chat.messages, { role: 'assistant', type: 'text', content: 'Hello.' }] }, expect: 200 });
    await j.call('POST', `/users/me/likes/chat/${chat.id}`, { headers: auth, expect: 200 });
    await j.call('DELETE', `/users/me/likes/chat/${chat.id}`, { headers: auth, expect: 200 });
    // No credits yet: the task is refused before it starts.
    await j.call('POST', '/tasks', { headers: auth, json: { chat_id: chat.id, type: 'chat_generation' }, expect: 402 });

    // Another user sees neither the private chat nor the private preset.
    const other = await aideerSignUp(j);
    await j.call('GET', `/chats/${chat.id}`, { headers: bearer(other.token), expect: 403 });
    await j.call('GET', `/presets/${preset.id}`, { headers: bearer(other.token), expect: 403 });
    await j.call('DELETE', `/chats/${chat.id}`, { headers: bearer(other.token), expect: 403 });
  } finally {
    await j.cleanUp(cleanUp);
  }
}

async function aideerAdminJourney(j: Journey, opts: RunnerOptions) {
  if (!opts.adminUser || !opts.adminPassword) j.skip('no admin credentials: pass --admin-user and --admin-password (or ADMIN_USER, ADMIN_PASSWD)');
  const admin = bearer(await aideerLogIn(j, opts.adminUser, opts.adminPassword));
  const user = await aideerSignUp(j);
  const auth = bearer(user.token);
  const cleanUp: (() => Promise<unknown>)[] = [() => j.call('DELETE', `/users/${user.id}`, { headers: admin, expect: [200, 404] })];
  try {
    await j.call('GET', '/users', { headers: admin, query: { page: 1, size: 5 }, expect: 200 });
    await j.call('PUT', `/users/${user.id}`, { headers: admin, json: { username: user.username, nickname: 'Conformance, renamed' }, expect: 200 });
    await j.call('PUT', `/users/${user.id}/password`, { headers: admin, json: { new_password: 'conformance-pass-3' }, expect: 200 });
    const token = await aideerLogIn(j, user.username, 'conformance-pass-3');
    Object.assign(auth, bearer(token));
    await j.call('GET', `/users/${2147483647}`, { headers: admin, expect: 404 });

    const code = unique('CODE').toUpperCase();
    await j.call('POST', '/codes', { headers: auth, json: { redeem_code: code, value: 100 }, expect: 403 });
    await j.call('POST', '/codes', { headers: admin, json: { redeem_code: code, value: 100 }, expect: 200 });
    cleanUp.unshift(() => j.call('DELETE', `/codes/${code}`, { headers: admin, expect: 200 }));
    await j.call('GET', `/codes/${code}`, { expect: 200 });
    await j.call('POST', '/users/me/credits', { headers: auth, json: { redeem_code: code.toLowerCase() }, expect: 200 });
    await j.call('POST', '/users/me/credits', { headers: auth, json: { redeem_code: code }, expect: [400, 404, 422] });

    const preset = (await j.call('POST', '/presets', { headers: auth, json: presetBody(unique('preset')), expect: 200 })).body;
    const chat = (await j.call('POST', '/chats', { headers: auth, json: chatBody(preset.id, unique('chat')), expect: 200 })).body;
    cleanUp.unshift(() => j.call('DELETE', `/presets/${preset.id}`, { headers: auth, expect: [200, 404] }));
    const task = (await j.call('POST', '/tasks', { headers: auth, json: { chat_id: chat.id, type: 'chat_generation' }, expect: 200 })).body;
    await j.call('GET', `/tasks/${task.task_id}`, { expect: 200 });
    const { status, events } = await j.stream(`/tasks/${task.task_id}/stream`);
    if (status !== 200) j.fail(`GET /tasks/${task.task_id}/stream: expected 200, got ${status}`);
    const order = streamOrderProblem(events);
    if (order) j.note([`GET /tasks/${task.task_id}/stream: ${order}`]);
    const final = (await j.call('GET', `/tasks/${task.task_id}`, { expect: 200 })).body;
    if (final.status !== 'finished') j.fail(`task ${task.task_id} ended ${final.status}, not finished`);
    await j.call('DELETE', `/tasks/${task.task_id}`, { expect: 200 });
    await j.call('GET', `/tasks/${task.task_id}`, { expect: 404 });
    await j.call('GET', `/tasks/${task.task_id}/stream`, { expect: 404 });
    await j.call('GET', '/users/me/credits', { headers: auth, expect: 200 });
  } finally {
    await j.cleanUp(cleanUp);
  }
}

/** The order the stream's description promises: open, running states, one final state, close. */
export function streamOrderProblem(events: StreamEventSeen[]): string | undefined {
  const statusOf = (data: unknown) =>
    typeof data === 'object' && data !== null && 'status' in data ? data.status : undefined;
  const kinds = events.map((e) => (e.event === 'message' ? `state:${statusOf(e.data)}` : e.event));
  const shape = kinds.join(' ');
  if (!/^open( state:running)* state:(finished|failed) close$/.test(shape)) return `events out of the documented order (open, running…, finished|failed, close): ${shape}`;
  return undefined;
}

async function aideerRefusals(j: Journey) {
  await j.call('GET', '/users/me', { expect: 401 });
  await j.call('GET', '/users/me', { headers: bearer('not-a-token'), expect: 401 });
  await j.call('GET', '/chats', { expect: 401 });
  await j.call('GET', '/presets/not-a-uuid', { expect: [401, 422] });
  await j.call('GET', `/tasks/${NO_SUCH_UUID}`, { expect: 404 });
  await j.call('GET', '/tasks/not-a-uuid', { expect: 422 });
  await j.call('GET', '/tasks/not-a-uuid/stream', { expect: 422 });
  await j.call('DELETE', `/tasks/${NO_SUCH_UUID}`, { expect: 404 });
  await j.call('GET', `/tasks/${NO_SUCH_UUID}/stream`, { expect: 404 });
  await j.call('GET', `/codes/${unique('nocode')}`, { expect: 422 });
  await j.call('POST', '/session/oauth2/token', { form: { username: '' }, expect: 422 });
  await j.call('GET', '/session/wechat/token', { expect: 422 });
  await j.call('POST', '/users', { json: { username: 'x' }, expect: 422 });
  const user = await aideerSignUp(j);
  const auth = bearer(user.token);
  await j.call('GET', `/presets/${NO_SUCH_UUID}`, { headers: auth, expect: 404 });
  await j.call('GET', `/chats/${NO_SUCH_UUID}`, { headers: auth, expect: 404 });
  await j.call('DELETE', `/chats/${NO_SUCH_UUID}`, { headers: auth, expect: 404 });
  await j.call('POST', `/users/me/likes/preset/${NO_SUCH_UUID}`, { headers: auth, expect: 404 });
  await j.call('POST', '/tasks', { headers: auth, json: { chat_id: NO_SUCH_UUID, type: 'chat_generation' }, expect: [402, 404] });
  await j.call('POST', '/tasks', { headers: auth, json: { chat_id: 'x' }, expect: 422 });
  await j.call('GET', '/chats', { headers: auth, query: { order: 'sideways' }, expect: 422 });
  await j.call('GET', `/no-such-route-${unique('r')}`, { expect: 404 });
  await j.call('PATCH', '/users/me', { headers: auth, expect: 405 });
}

async function aideerUtils(j: Journey) {
  await j.call('GET', '/utils/init', { expect: [200, 404] });
  await j.call('GET', '/utils/admin', { expect: [200, 400, 404] });
  // Last, as its name says: it empties the deployment's database.
  await j.call('GET', '/utils/drop', { expect: [200, 404] });
}

// ───────────────────────────── One-API ─────────────────────────────

interface OneSession {
  id: number;
  token: string;
  headers: Record<string, string>;
}

async function oneapiCode(j: Journey, opts: RunnerOptions, phone: string, purpose: 'register' | 'login'): Promise<string> {
  const res = await j.call('GET', '/phone_verification', { query: { phone, purpose }, expect: 200 });
  const code = opts.fixedCode ?? (typeof res.body?.data === 'string' ? res.body.data : undefined);
  if (!code) j.skip('the server sends codes by SMS and returns none: pass --fixed-code on an environment with fixed codes');
  return code;
}

async function oneapiLogIn(j: Journey, opts: RunnerOptions, phone: string): Promise<OneSession> {
  const code = await oneapiCode(j, opts, phone, 'login');
  const res = await j.call('POST', '/user/login', { json: { phone, phone_verification_code: code }, expect: 200 });
  const { id, access_token: token } = res.body.data;
  return { id, token, headers: { Authorization: token, UserID: String(id) } };
}

async function oneapiNewUser(j: Journey, opts: RunnerOptions): Promise<OneSession> {
  const phone = uniquePhone();
  const code = await oneapiCode(j, opts, phone, 'register');
  await j.call('POST', '/user/register', { json: { phone, phone_verification_code: code, display_name: 'Conformance', school: 'QA', college: 'Contracts' }, expect: 200 });
  return oneapiLogIn(j, opts, phone);
}

async function oneapiTopicsJourney(j: Journey, runner: Runner) {
  const opts = runner.options;
  const me = await oneapiNewUser(j, opts);
  const cleanUp: (() => Promise<unknown>)[] = [];
  try {
    await j.call('GET', '/user/self', { headers: me.headers, expect: 200 });
    await j.call('PUT', '/user/self', { headers: me.headers, json: { display_name: 'Conformance, renamed' }, expect: 200 });
    await j.call('GET', '/topics', { headers: me.headers, query: { page: 1, size: 10 }, expect: 200 });
    const topic = (await j.call('POST', '/topics', { headers: me.headers, json: { topic_name: unique('topic'), model: 'echo', channel_id: 1 }, expect: 200 })).body.data;
    cleanUp.unshift(() => j.call('DELETE', `/topics/${topic.id}`, { headers: me.headers, expect: [200, 404] }));
    await j.call('POST', `/topics/${topic.id}/messages`, { headers: me.headers, json: { content: 'Hello from the conformance runner' }, expect: 200 });
    await j.call('GET', `/topics/${topic.id}/messages`, { headers: me.headers, query: { page: 1, size: 10 }, expect: 200 });
    const other = await oneapiNewUser(j, opts);
    await j.call('GET', `/topics/${topic.id}/messages`, { headers: other.headers, expect: [403, 404] });
    await j.call('DELETE', `/topics/${topic.id}`, { headers: me.headers, expect: 200 });
    await j.call('DELETE', `/topics/${topic.id}`, { headers: me.headers, expect: 404 });
    // Sign-ins are rate-limited per address: the sweep reuses these two users.
    await runner.sweep(j, { Authorization: other.token, UserID: String(me.id) }, other.headers);
    await j.call('GET', '/user/logout', { headers: other.headers, expect: 200 });
    await j.call('GET', '/user/self', { headers: other.headers, expect: 401 });
  } finally {
    await j.cleanUp(cleanUp);
  }
  await j.call('GET', '/user/logout', { headers: me.headers, expect: 200 });
}

async function oneapiSubscriptionsJourney(j: Journey, opts: RunnerOptions) {
  const me = await oneapiNewUser(j, opts);
  const cleanUp: (() => Promise<unknown>)[] = [];
  try {
    const sub = (await j.call('POST', '/subscriptions', { headers: me.headers, json: { topic_name: unique('sub'), topic_description: 'Made by the conformance runner' }, expect: 200 })).body.data;
    cleanUp.unshift(() => j.call('DELETE', `/subscriptions/${sub.id}`, { headers: me.headers, expect: [200, 404] }));
    await j.call('GET', '/subscriptions', { headers: me.headers, expect: 200 });
    await j.call('PUT', `/subscriptions/${sub.id}/cancel`, { headers: me.headers, expect: 200 });
    await j.call('PUT', `/subscriptions/${sub.id}/reactivate`, { headers: me.headers, expect: 200 });
    await j.call('GET', `/subscriptions/${sub.id}/articles`, { headers: me.headers, query: { page: 1, size: 10 }, expect: 200 });
    const article = { title: unique('article'), content: 'Written by the conformance runner.', author: 'QA', published_at: new Date().toISOString(), article_url: `https://example.com/${unique('a')}` };
    await j.call('POST', '/articles', { headers: me.headers, json: article, expect: 403 });
    if (opts.rootPhone) {
      // Articles cannot be deleted through the API: this one stays.
      const root = await oneapiLogIn(j, opts, opts.rootPhone);
      await j.call('POST', '/articles', { headers: root.headers, json: article, expect: 200 });
    }
    await j.call('DELETE', `/subscriptions/${sub.id}`, { headers: me.headers, expect: 200 });
    await j.call('PUT', `/subscriptions/${sub.id}/cancel`, { headers: me.headers, expect: 404 });
  } finally {
    await j.cleanUp(cleanUp);
  }
  await j.call('GET', '/user/logout', { headers: me.headers, expect: 200 });
}

async function oneapiRefusals(j: Journey) {
  await j.call('GET', '/phone_verification', { query: { purpose: 'register' }, expect: 400 });
  await j.call('POST', '/user/register', { json: { phone: uniquePhone(), phone_verification_code: '000000' }, expect: 400 });
  await j.call('POST', '/user/login', { json: { phone: 'x' }, expect: 400 });
  await j.call('GET', '/user/self', { expect: 401 });
  await j.call('GET', '/topics', { expect: 401 });
  await j.call('GET', '/subscriptions', { headers: { Authorization: 'not-a-token', UserID: '1' }, expect: 401 });
  await j.call('DELETE', '/topics/1', { expect: 401 });
  await j.call('GET', `/no-such-route-${unique('r')}`, { expect: 404 });
}
