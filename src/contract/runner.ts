// The conformance runner's core: black-box journeys over a live server, using only the two
// contracts and HTTP. Every response (and every event of a stream) goes through the shared
// contract checker; a journey also fails when a step gets a documented but wrong status. The
// journeys themselves are in journeys/<api>.ts, their steps' vocabulary in journey.ts.
import { streamEvents } from './eventStream.ts';
import { deref, type Schema } from './document.ts';
import { Contract, streamEventOf, type CoverageRow, type StreamEventSeen } from './checker.ts';
import {
  Journey,
  NO_SUCH_UUID,
  SkipJourney,
  StopJourney,
  unique,
  type Answer,
  type CallOptions,
  type JourneyResult,
  type Plan,
} from './journey.ts';
import { aideerPlan } from './journeys/aideer.ts';
import { oneapiPlan } from './journeys/oneapi.ts';
import type { ApiName } from '../spec.ts';

export type { JourneyResult } from './journey.ts';

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

export interface RunResult {
  baseUrl: string;
  startedAt: string;
  durationMs: number;
  journeys: JourneyResult[];
  coverage: CoverageRow[];
  eventsChecked: number;
  retriesAfter429: number;
}

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
    const plan: Plan[] = [];
    if (this.opts.apis.includes('aideer')) plan.push(...aideerPlan(this));
    if (this.opts.apis.includes('oneapi')) plan.push(...oneapiPlan(this));
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
      this.log(
        `${r.skipped ? 'SKIP' : r.violations.length + r.failures.length ? 'FAIL' : 'PASS'} ${api}: ${name}${r.skipped ? ` (${r.skipped})` : ''}`,
      );
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
      const { operation } = op;
      if ((operation.tags ?? []).includes('utils')) continue;
      const params = [...op.pathParameters, ...(operation.parameters ?? [])].flatMap((p) => deref(doc, p) ?? []);
      const path = op.template.replace(/\{([^}]+)\}/g, (_m, name: string) => {
        const schema = params.find((p) => p.in === 'path' && p.name === name)?.schema ?? {};
        const example =
          schema.example ?? (schema.format === 'uuid' ? NO_SUCH_UUID : schema.type === 'integer' ? 1 : 'x');
        // A path parameter's example is a scalar; JSON spells those as String() does.
        return encodeURIComponent(typeof example === 'string' ? example : JSON.stringify(example));
      });
      const method = op.method.toUpperCase();
      const media = operation.requestBody?.content ?? {};
      const jsonExample = media['application/json']
        ? (media['application/json'].example ?? Object.values(media['application/json'].examples ?? {})[0]?.value ?? {})
        : undefined;
      const security = operation.security ?? doc.security ?? [];
      const secured = security.length > 0 && !security.some((s) => Object.keys(s).length === 0);
      if (secured) {
        await j.call(method, path, { json: jsonExample, expect: 401 });
        if (Object.keys(mismatched).length)
          await j.call(method, path, { headers: mismatched, json: jsonExample, expect: 401 });
      }
      if (jsonExample !== undefined && '413' in op.responses) await j.call(method, path, { json: big, expect: 413 });
      // With a fresh user's credentials, ids that are malformed or name nothing: refused with a
      // documented status, whatever the order of the server's checks (a fresh user owns nothing,
      // so no such call can change data).
      if (authorised && /\{/.test(op.template)) {
        for (const fill of [
          () => 'not-an-id',
          (schema: Schema) =>
            schema.format === 'uuid' ? NO_SUCH_UUID : schema.type === 'integer' ? 2147483647 : unique('none'),
        ]) {
          const probe = op.template.replace(/\{([^}]+)\}/g, (_m, name: string) =>
            encodeURIComponent(String(fill(params.find((p) => p.in === 'path' && p.name === name)?.schema ?? {}))),
          );
          const answer = await j.call(method, probe, { headers: authorised, json: jsonExample });
          if (answer.status >= 500 || answer.status < 400)
            j.note([`${method} ${probe}: expected a refusal, got ${answer.status}`]);
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
      journey.note(
        this.contract.check({
          method,
          url: url.pathname + url.search,
          status: res.status,
          headers: Object.fromEntries(res.headers),
          body: parsed,
          text,
        }),
      );
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
