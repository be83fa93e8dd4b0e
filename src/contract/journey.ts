// A conformance journey's vocabulary: one step (a call, a stream), what it expects, the fields it
// reads from an answer, and how it stops, skips or cleans up.
import crypto from 'node:crypto';
import type { ApiName } from '../spec.ts';
import type { StreamEventSeen } from './checker.ts';

/** What a journey needs of the runner: one checked exchange, one checked stream. */
export interface Exchanges {
  exchange(journey: Journey, method: string, path: string, o: CallOptions): Promise<Answer>;
  stream(journey: Journey, path: string): Promise<{ status: number; events: StreamEventSeen[] }>;
}

/** One journey of a run: its API, its name, and its steps. */
export type Plan = [ApiName, string, (j: Journey) => Promise<void>];

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

export interface CallOptions {
  query?: Record<string, string | number>;
  headers?: Record<string, string>;
  json?: unknown;
  form?: Record<string, string>;
  multipart?: FormData;
  /** Statuses this step expects; any other stops the journey. */
  expect?: number | number[];
}

export interface Answer {
  status: number;
  headers: Headers;
  /** The JSON body (or the text, when it is not JSON), already checked against the contract. */
  body: unknown;
}

export class StopJourney extends Error {}
export const BASES: Record<ApiName, string> = { aideer: '/api/v1', oneapi: '/api' };
// A 1×1 PNG, the smallest image an avatar upload takes.
export const TINY_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);
export const NO_SUCH_UUID = '00000000-0000-4000-8000-000000000000';

export const unique = (prefix: string) => `${prefix}_${crypto.randomBytes(5).toString('hex')}`;
export const uniquePhone = () => `1${String(crypto.randomInt(0, 1e10)).padStart(10, '0')}`;

export class SkipJourney extends Error {}

/** The value at a dotted path of parsed JSON, or undefined. */
export function fieldAt(body: unknown, path: string): unknown {
  let node = body;
  for (const key of path.split('.')) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, key)) return undefined;
    node = Reflect.get(node, key);
  }
  return node;
}

export class Journey {
  readonly result: JourneyResult;

  constructor(
    private readonly runner: Exchanges,
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
      this.result.failures.push(
        `${method} ${BASES[this.api]}${path}: expected ${expected.join(' or ')}, got ${answer.status} ${JSON.stringify(answer.body)?.slice(0, 300)}`,
      );
      throw new StopJourney();
    }
    return answer;
  }

  stream(path: string) {
    return this.runner.stream(this, BASES[this.api] + path);
  }

  /** A string at `path` (`data.id`) of an answer's body; the journey fails when there is none. */
  string(answer: Answer, path: string): string {
    const value = fieldAt(answer.body, path);
    return typeof value === 'string'
      ? value
      : this.fail(`expected a string at ${path} of ${JSON.stringify(answer.body)?.slice(0, 300)}`);
  }

  /** A number at `path` of an answer's body; the journey fails when there is none. */
  number(answer: Answer, path: string): number {
    const value = fieldAt(answer.body, path);
    return typeof value === 'number'
      ? value
      : this.fail(`expected a number at ${path} of ${JSON.stringify(answer.body)?.slice(0, 300)}`);
  }

  /** An array at `path` of an answer's body; the journey fails when there is none. */
  list(answer: Answer, path: string): unknown[] {
    const value = fieldAt(answer.body, path);
    return Array.isArray(value)
      ? value
      : this.fail(`expected an array at ${path} of ${JSON.stringify(answer.body)?.slice(0, 300)}`);
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
