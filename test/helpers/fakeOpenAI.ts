// A fake OpenAI-compatible chat-completions server on 127.0.0.1 (port 0), scriptable per test,
// for any test that needs an LLM upstream without the internet. It answers
// `POST <url>/chat/completions` (with `url` ending in /v1) as OpenAI does when streaming (the only
// way the provider layer asks): SSE chunks, a finish chunk, a usage chunk when the request asks for
// it, then `[DONE]`. Every request is recorded (model, messages, Authorization header, body).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export type FakeReply =
  /** Streams `chunks` as content deltas (`delayMs` apart), then finishes normally (once `until` settles, if given). */
  | {
      kind: 'stream';
      chunks: string[];
      usage?: FakeUsage | null;
      delayMs?: number;
      finishReason?: string;
      until?: Promise<unknown>;
    }
  /** Answers an HTTP error with OpenAI's error body (or `body` as given). */
  | { kind: 'error'; status: number; message?: string; body?: unknown; delayMs?: number }
  /** Streams `chunks`, then `destroy`s the connection, or `end`s the response without finishing. */
  | { kind: 'break'; chunks: string[]; how?: 'destroy' | 'end'; delayMs?: number }
  /** Waits `headersAfterMs` before answering at all (Infinity: never), then streams `chunks` and stalls forever. */
  | { kind: 'stall'; chunks?: string[]; headersAfterMs?: number }
  /** Streams the first of `chunks`, waits until `gate` resolves, then streams the rest and finishes as `stream` does. */
  | { kind: 'gate'; chunks: string[]; gate: Promise<void>; usage?: FakeUsage | null }
  /** Streams `chunks`, then an `{"error": ...}` event, as some providers report a failure midway. */
  | { kind: 'streamError'; chunks: string[]; message: string };

export interface RecordedRequest {
  path: string;
  model: string;
  messages: { role: string; content: string }[];
  authorization: string | undefined;
  body: Record<string, unknown>;
}

export interface FakeOpenAI {
  /** Base URL to configure, ending in `/v1`. */
  url: string;
  /** Every request received, in order. */
  requests: RecordedRequest[];
  /** Answers every following request this way (until changed); the default streams `["Hello", " there"]`. */
  reply(r: FakeReply | ((req: RecordedRequest) => FakeReply)): void;
  /** Answers only the next request this way (queued before `reply`'s answer). */
  replyOnce(...r: FakeReply[]): void;
  /** Resolves once a request is received after this call, with it. */
  nextRequest(): Promise<RecordedRequest>;
  /** Connections that closed before their response was complete (e.g. the client gave up). */
  readonly abandoned: number;
  /** Resolves once more than `count` connections were abandoned; rejects after `ms`. */
  untilAbandoned(count: number, ms?: number): Promise<void>;
  close(): Promise<void>;
}

const DEFAULT_USAGE: FakeUsage = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 };

export async function startFakeOpenAI(opts: { apiKey?: string } = {}): Promise<FakeOpenAI> {
  let standing: FakeReply | ((req: RecordedRequest) => FakeReply) = { kind: 'stream', chunks: ['Hello', ' there'] };
  const queue: FakeReply[] = [];
  const requests: RecordedRequest[] = [];
  const waiters: ((r: RecordedRequest) => void)[] = [];
  let abandoned = 0;
  const abandonWaiters: (() => void)[] = [];

  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => {
      let body: Record<string, unknown>;
      try {
        // The project's client sends a JSON object; anything else is what the test should see fail.
        body = JSON.parse(raw || '{}') as Record<string, unknown>;
      } catch {
        return sendJson(res, 400, { error: { message: 'invalid JSON body', type: 'invalid_request_error' } });
      }
      const path = (req.url ?? '').split('?')[0];
      const recorded: RecordedRequest = {
        path,
        model: typeof body.model === 'string' ? body.model : '',
        messages: (body.messages as RecordedRequest['messages']) ?? [],
        authorization: req.headers.authorization,
        body,
      };
      requests.push(recorded);
      for (const w of waiters.splice(0)) w(recorded);
      if (req.method !== 'POST' || path !== '/v1/chat/completions')
        return sendJson(res, 404, { error: { message: 'not found', type: 'invalid_request_error' } });
      if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
        return sendJson(res, 401, {
          error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' },
        });
      }
      const reply = queue.shift() ?? (typeof standing === 'function' ? standing(recorded) : standing);
      let complete = false;
      res.on('finish', () => (complete = true));
      res.on('close', () => {
        if (complete) return;
        abandoned++;
        for (const w of abandonWaiters.splice(0)) w();
      });
      void answer(req, res, recorded, reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    reply(r) {
      standing = r;
    },
    replyOnce(...r) {
      queue.push(...r);
    },
    nextRequest() {
      return new Promise((resolve) => waiters.push(resolve));
    },
    get abandoned() {
      return abandoned;
    },
    untilAbandoned(count, ms = 2000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`fake upstream: no connection abandoned within ${ms} ms`)), ms);
        const check = () => {
          if (abandoned > count) {
            clearTimeout(timer);
            resolve();
          } else abandonWaiters.push(check);
        };
        check();
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** Resolves after `ms`, or at once when the client has gone. */
function pause(res: http.ServerResponse, ms: number): Promise<void> {
  if (ms <= 0 || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
    function done() {
      clearTimeout(timer);
      res.off('close', done);
      resolve();
    }
    res.once('close', done);
  });
}

async function answer(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  recorded: RecordedRequest,
  reply: FakeReply,
): Promise<void> {
  if (reply.kind === 'error') {
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    return sendJson(
      res,
      reply.status,
      reply.body ?? {
        error: { message: reply.message ?? `fake upstream error ${reply.status}`, type: 'server_error', code: null },
      },
    );
  }
  const id = `chatcmpl-fake${Date.now()}`;
  const created = Math.floor(Date.now() / 1000);
  const model = recorded.model;
  const chunks = reply.chunks ?? [];

  const event = (data: unknown) => res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
    event({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
    });

  if (reply.kind === 'stall') await pause(res, reply.headersAfterMs ?? 0);
  if (res.destroyed) return;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  chunk({ role: 'assistant', content: '' });
  for (const [i, c] of chunks.entries()) {
    if (i > 0 && reply.kind === 'stream') await pause(res, reply.delayMs ?? 0);
    if (i === 1 && reply.kind === 'gate') await Promise.race([reply.gate, pause(res, Infinity)]);
    if (res.destroyed) return;
    chunk({ content: c });
  }
  switch (reply.kind) {
    case 'stall':
      return pause(res, Infinity);
    case 'break':
      // Let the chunks reach the client before the connection goes.
      await new Promise((resolve) => setTimeout(resolve, reply.delayMs ?? 20));
      if (reply.how === 'end') return void res.end();
      return void req.socket.destroy();
    case 'streamError':
      event({ error: { message: reply.message, type: 'server_error' } });
      return void res.end();
    case 'gate':
    case 'stream': {
      if (reply.kind === 'stream' && reply.until) await Promise.race([reply.until, pause(res, Infinity)]);
      if (res.destroyed) return;
      chunk({}, (reply.kind === 'stream' && reply.finishReason) || 'stop');
      const wantsUsage =
        (recorded.body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
      if (wantsUsage && reply.usage !== null)
        event({
          id,
          object: 'chat.completion.chunk',
          created,
          model,
          choices: [],
          usage: reply.usage ?? DEFAULT_USAGE,
        });
      event('[DONE]');
      return void res.end();
    }
  }
}
