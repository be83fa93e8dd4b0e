// Every HTTP request a test makes goes through here, and every response is checked against the
// contract before the test sees it: an off-contract response fails the test whatever it asserts.
import http from 'node:http';
import supertest from 'supertest';
import type { Response } from 'supertest';
import { streamEvents } from '../../src/contract/eventStream.ts';
import { streamEventOf } from '../../src/contract/checker.ts';
import { assertEventOnContract, assertOnContract } from './contract.ts';
import { CHECK_HEADER } from './server.ts';

/** The JSON body an operation of a generated `operations` interface documents for 200. */
export type Ok<Op> = Op extends { responses: { 200: { content: { 'application/json': infer B } } } } ? B : never;

/**
 * A response body as the type the contract gives it. supertest types every body as `any`; each one
 * has passed checkContract (below) before a test can read it, so it matches its documented schema.
 */
export function bodyOf<T>(res: Response): T {
  return res.body as T;
}

export function checkContract(res: Response): void {
  const req = (res as unknown as { req: { method: string; path: string } }).req;
  assertOnContract({
    method: req.method,
    url: req.path,
    status: res.status,
    headers: res.headers,
    body: res.body,
    text: res.text,
  });
}

type Method = 'get' | 'post' | 'put' | 'delete' | 'patch' | 'options' | 'head';

export interface Client {
  get(path: string): supertest.Test;
  post(path: string): supertest.Test;
  put(path: string): supertest.Test;
  delete(path: string): supertest.Test;
  patch(path: string): supertest.Test;
  options(path: string): supertest.Test;
  head(path: string): supertest.Test;
}

export function client(baseUrl: string): Client {
  const agent = supertest(baseUrl);
  const make = (method: Method) => (path: string) => agent[method](path).set(CHECK_HEADER, '1').expect(checkContract);
  return {
    get: make('get'),
    post: make('post'),
    put: make('put'),
    delete: make('delete'),
    patch: make('patch'),
    options: make('options'),
    head: make('head'),
  };
}

/**
 * The `fetch` to give SDK clients (openapi-fetch takes one): the same check on every response. An
 * event stream is checked as it opens (status, headers); its body is left for the caller to read.
 */
export async function checkedFetch(request: Request): Promise<globalThis.Response> {
  request.headers.set(CHECK_HEADER, '1');
  const res = await fetch(request);
  const streamed = (res.headers.get('content-type') ?? '').startsWith('text/event-stream');
  const text = streamed ? '' : await res.clone().text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: the check reports it wherever the contract documents a JSON body.
  }
  const url = new URL(request.url);
  const seen = { method: request.method, url: url.pathname + url.search, status: res.status };
  assertOnContract({ ...seen, headers: Object.fromEntries(res.headers), body, text });
  if (!streamed || !res.body) return res;
  // Every event the caller reads passes through the event check on its way (a copy of the bytes
  // is parsed beside it); cancelling the caller's body still closes the connection.
  let copy!: ReadableStreamDefaultController<Uint8Array>;
  const events = streamEvents(new ReadableStream<Uint8Array>({ start: (c) => void (copy = c) }));
  void (async () => {
    for await (const e of events) {
      try {
        assertEventOnContract(seen, streamEventOf(e));
      } catch {
        // Noted in offContractEvents: the run fails at its end (hooks.ts).
      }
    }
  })();
  const passed = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, out) {
        copy.enqueue(chunk);
        out.enqueue(chunk);
      },
      flush: () => copy.close(),
    }),
  );
  return new Response(passed, { status: res.status, statusText: res.statusText, headers: res.headers });
}

export interface SseEvent {
  /** `open`, `close`, or undefined for a data event. */
  event?: string;
  /** The `id:` line, if any. */
  id?: string;
  data?: { status: string; content: string | null };
  comment?: string;
}

export interface SseSession {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Events received so far (and, once `done` resolves, all of them). */
  events: SseEvent[];
  /** The JSON body of a refusal (a non-200 answer). */
  body?: unknown;
  /** Resolves when the server ends the response. */
  done: Promise<void>;
  /** Resolves once an event matching `test` has arrived. */
  until(test: (e: SseEvent) => boolean, ms?: number): Promise<SseEvent>;
  /** Drops the connection, as a client that goes away. */
  disconnect(): void;
}

/**
 * Opens a server-sent-event stream over raw HTTP (supertest buffers whole responses), parses its
 * events as they arrive, and puts the response through the same contract check as every other.
 */
export function sse(baseUrl: string, path: string, headers: Record<string, string> = {}): Promise<SseSession> {
  return new Promise((resolve, reject) => {
    // A connection of its own, as EventSource has: dropping it closes the socket at once.
    const req = http.get(
      `${baseUrl}${path}`,
      { agent: false, headers: { accept: 'text/event-stream', ...headers, [CHECK_HEADER]: '1' } },
      (res) => {
        const events: SseEvent[] = [];
        const waiters: {
          test: (e: SseEvent) => boolean;
          resolve: (e: SseEvent) => void;
          reject: (err: Error) => void;
        }[] = [];
        // The first event off contract: every later wait, and `done`, fail with it.
        let offContract: Error | undefined;
        let raw = '';
        let buffer = '';
        const session: SseSession = {
          status: res.statusCode ?? 0,
          headers: res.headers,
          events,
          done: new Promise<void>((r, j) => res.on('close', () => (offContract ? j(offContract) : r()))),
          until(test, ms = 10_000) {
            if (offContract) return Promise.reject(offContract);
            const found = events.find(test);
            if (found) return Promise.resolve(found);
            return new Promise((r, j) => {
              const timer = setTimeout(
                () => j(new Error(`no matching event within ${ms} ms; got ${JSON.stringify(events)}`)),
                ms,
              );
              waiters.push({
                test,
                resolve: (e) => (clearTimeout(timer), r(e)),
                reject: (err) => (clearTimeout(timer), j(err)),
              });
            });
          },
          disconnect: () => {
            res.destroy();
            req.destroy();
          },
        };
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          raw += chunk;
          buffer += chunk;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const event: SseEvent = {};
            const fields: { event?: string; data?: string; id?: string } = {};
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) event.comment = line.slice(1).trim();
              else if (line.startsWith('event: ')) event.event = fields.event = line.slice(7);
              // Parsed here and checked against the stream's event schema below, before a test sees it.
              else if (line.startsWith('data: '))
                event.data = JSON.parse((fields.data = line.slice(6))) as SseEvent['data'];
              else if (line.startsWith('id: ')) event.id = fields.id = line.slice(4);
            }
            // A comment alone is no event; every real one is checked against the stream's schema.
            if (event.comment === undefined || fields.event !== undefined || fields.data !== undefined) {
              try {
                assertEventOnContract({ method: 'GET', url: path, status: session.status }, streamEventOf(fields));
              } catch (err) {
                offContract = err as Error;
                for (const w of waiters.splice(0)) w.reject(offContract);
              }
            }
            events.push(event);
            for (const w of waiters.splice(0)) {
              if (w.test(event)) w.resolve(event);
              else waiters.push(w);
            }
          }
        });
        const check = () => {
          const body: unknown = session.status === 200 ? undefined : raw ? JSON.parse(raw) : undefined;
          session.body = body;
          assertOnContract({ method: 'GET', url: path, status: session.status, headers: res.headers, body, text: raw });
        };
        const fail = (err: unknown) => reject(err instanceof Error ? err : new Error(String(err)));
        if (session.status === 200) {
          try {
            check();
          } catch (err) {
            return fail(err);
          }
          resolve(session);
        } else {
          res.on('end', () => {
            try {
              check();
              resolve(session);
            } catch (err) {
              fail(err);
            }
          });
        }
      },
    );
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
  });
}
