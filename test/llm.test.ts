// The LLM provider layer (decision G7): the offline `echo` model, and OpenAI-compatible providers
// against a fake upstream on loopback (streamed chunks, usage, HTTP errors, broken and stalled
// streams, cancellation), with one typed error for every failure.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import {
  EchoProvider,
  LlmError,
  OpenAICompatibleProvider,
  type ChatMessage,
  type ChatStream,
} from '../src/llm/index.ts';
import { splitDeltas } from '../src/llm/echo.ts';
import { estimatePromptTokens, estimateTokens } from '../src/llm/tokens.ts';
import { startFakeOpenAI, type FakeOpenAI } from './helpers/fakeOpenAI.ts';

async function collect(stream: ChatStream): Promise<string[]> {
  const out: string[] = [];
  for await (const d of stream) out.push(d);
  return out;
}

async function failure(p: Promise<unknown>): Promise<LlmError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(LlmError);
    return err as LlmError;
  }
  throw new Error('expected an LlmError, got a result');
}

const CONVERSATION: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'first question' },
  { role: 'assistant', content: 'first answer' },
  { role: 'user', content: '第二个问题, with some English words' },
];

describe('LLM provider layer', () => {
  describe('token estimate', () => {
    it('when a text is ASCII, then it counts one token per 4 characters, rounded up', () => {
      expect(estimateTokens('')).to.equal(0);
      expect(estimateTokens('abcd')).to.equal(1);
      expect(estimateTokens('abcde')).to.equal(2);
    });

    it('when a text has other characters, then each counts one token and ASCII runs around them count per 4', () => {
      expect(estimateTokens('你好')).to.equal(2);
      expect(estimateTokens('ab你好abcde')).to.equal(1 + 2 + 2);
      expect(estimateTokens('😀')).to.equal(1);
    });

    it('when a prompt is estimated, then each message adds 4 and the prompt 3', () => {
      expect(estimatePromptTokens([{ role: 'user', content: 'abcd' }])).to.equal(3 + 4 + 1);
    });
  });

  describe('echo', () => {
    it('when streamed, then several deltas join into the last user message, and usage is the estimate', async () => {
      const echo = new EchoProvider({ delayMs: 0 });
      const stream = echo.chat(CONVERSATION, { model: 'echo' });
      const deltas = await collect(stream);
      expect(deltas.length).to.be.greaterThan(1);
      expect(deltas.join('')).to.equal(CONVERSATION[3].content);
      const result = await stream.result();
      expect(result.text).to.equal(CONVERSATION[3].content);
      expect(result.finish_reason).to.equal('stop');
      const completion = estimateTokens(result.text);
      const prompt = estimatePromptTokens(CONVERSATION);
      expect(result.usage).to.deep.equal({
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
      });
    });

    it('when the same conversation is sent twice, then the deltas are the same', async () => {
      const echo = new EchoProvider({ delayMs: 0 });
      expect(await collect(echo.chat(CONVERSATION, { model: 'echo' }))).to.deep.equal(
        await collect(echo.chat(CONVERSATION, { model: 'echo' })),
      );
    });

    it('when a text holds characters outside the BMP, then no delta splits one', () => {
      const parts = splitDeltas('😀'.repeat(13));
      expect(parts.join('')).to.equal('😀'.repeat(13));
      for (const p of parts) expect(p).to.match(/^(😀)+$/u);
    });

    it('when there is no user message, then the reply is empty and finishes', async () => {
      const result = await new EchoProvider({ delayMs: 0 })
        .chat([{ role: 'system', content: 'x' }], { model: 'echo' })
        .result();
      expect(result).to.include({ text: '', finish_reason: 'stop' });
      expect(result.usage.completion_tokens).to.equal(0);
    });

    it('when a delay is set, then the deltas arrive that far apart', async () => {
      const stream = new EchoProvider({ delayMs: 25 }).chat([{ role: 'user', content: 'abcdefgh' }], { model: 'echo' });
      const started = Date.now();
      const deltas = await collect(stream);
      expect(deltas).to.have.length(8);
      expect(Date.now() - started).to.be.at.least(7 * 25 - 5);
    });

    it('when max_tokens is smaller than the reply, then the reply is cut to fit and finishes with length', async () => {
      const result = await new EchoProvider({ delayMs: 0 })
        .chat([{ role: 'user', content: 'abcdefghijklmnop' }], { model: 'echo', max_tokens: 2 })
        .result();
      expect(result.text).to.equal('abcdefgh');
      expect(result.finish_reason).to.equal('length');
      expect(result.usage.completion_tokens).to.equal(2);
    });

    it('when the signal is aborted midway, then it fails with cancelled', async () => {
      const ac = new AbortController();
      const stream = new EchoProvider({ delayMs: 20 }).chat(
        [{ role: 'user', content: 'abcdefgh' }],
        { model: 'echo' },
        { signal: ac.signal },
      );
      const seen: string[] = [];
      const err = await failure(
        (async () => {
          for await (const d of stream) {
            seen.push(d);
            if (seen.length === 2) ac.abort();
          }
        })(),
      );
      expect(err.kind).to.equal('cancelled');
      expect(seen).to.have.length(2);
      expect((await failure(stream.result())).kind).to.equal('cancelled');
    });

    it('when result() is awaited without reading, then it reads the stream itself', async () => {
      const result = await new EchoProvider({ delayMs: 0 })
        .chat([{ role: 'user', content: 'hi there' }], { model: 'echo' })
        .result();
      expect(result.text).to.equal('hi there');
    });

    it('when a stream is read twice, then the second read is refused', async () => {
      const stream = new EchoProvider({ delayMs: 0 }).chat([{ role: 'user', content: 'once' }], { model: 'echo' });
      await collect(stream);
      let refused = false;
      try {
        await collect(stream);
      } catch (err) {
        refused = /only once/.test((err as Error).message);
      }
      expect(refused).to.equal(true);
    });
  });

  describe('OpenAI-compatible', () => {
    const KEY = 'sk-fake-secret-key-0123456789';
    let fake: FakeOpenAI;
    let provider: OpenAICompatibleProvider;

    before(async () => {
      fake = await startFakeOpenAI({ apiKey: KEY });
      provider = new OpenAICompatibleProvider({ name: 'fake', baseUrl: fake.url, apiKey: KEY, timeoutMs: 300 });
    });
    after(() => fake.close());

    it('when the upstream streams chunks then usage, then the deltas are its chunks, the text their join, the usage its own', async () => {
      fake.replyOnce({
        kind: 'stream',
        chunks: ['Hel', 'lo', ', 世界'],
        usage: { prompt_tokens: 21, completion_tokens: 4, total_tokens: 25 },
      });
      const stream = provider.chat(CONVERSATION, { model: 'fake-model' });
      expect(await collect(stream)).to.deep.equal(['Hel', 'lo', ', 世界']);
      expect(await stream.result()).to.deep.equal({
        text: 'Hello, 世界',
        usage: { prompt_tokens: 21, completion_tokens: 4, total_tokens: 25 },
        finish_reason: 'stop',
      });
    });

    it('when a completion is sent, then the upstream receives the model, the messages in order, the key, streaming with usage, and only the parameters set', async () => {
      fake.replyOnce({ kind: 'stream', chunks: ['ok'] });
      const before = fake.requests.length;
      await provider.chat(CONVERSATION, { model: 'fake-model-2', temperature: 0.3, seed: 7, max_tokens: 50 }).result();
      expect(fake.requests.length - before).to.equal(1);
      const req = fake.requests.at(-1)!;
      expect(req.path).to.equal('/v1/chat/completions');
      expect(req.model).to.equal('fake-model-2');
      expect(req.messages).to.deep.equal(CONVERSATION);
      expect(req.authorization).to.equal(`Bearer ${KEY}`);
      expect(req.body).to.include({ stream: true, temperature: 0.3, seed: 7, max_tokens: 50 });
      expect(req.body.stream_options).to.deep.equal({ include_usage: true });
      for (const p of ['top_p', 'presence_penalty', 'frequency_penalty']) expect(req.body).to.not.have.property(p);
    });

    it('when the upstream reports no usage, then usage is the estimate', async () => {
      fake.replyOnce({ kind: 'stream', chunks: ['abcd', 'efgh'], usage: null });
      const result = await provider.chat([{ role: 'user', content: 'abcd' }], { model: 'm' }).result();
      expect(result.usage).to.deep.equal({ prompt_tokens: 8, completion_tokens: 2, total_tokens: 10 });
    });

    it('when the upstream ends on max_tokens, then finish_reason is length', async () => {
      fake.replyOnce({ kind: 'stream', chunks: ['cut'], finishReason: 'length' });
      expect((await provider.chat(CONVERSATION, { model: 'm' }).result()).finish_reason).to.equal('length');
    });

    for (const status of [400, 429, 500, 503]) {
      it(`when the upstream answers HTTP ${status}, then one request is made and it fails with http and that status`, async () => {
        fake.replyOnce({ kind: 'error', status });
        const before = fake.requests.length;
        const err = await failure(provider.chat(CONVERSATION, { model: 'm' }).result());
        expect(err).to.include({ kind: 'http', status, provider: 'fake' });
        expect(fake.requests.length - before).to.equal(1);
      });
    }

    it('when the key is wrong, then it fails with http 401', async () => {
      const wrong = new OpenAICompatibleProvider({
        name: 'wrong-key',
        baseUrl: fake.url,
        apiKey: 'sk-not-the-right-one',
        timeoutMs: 300,
      });
      expect(await failure(wrong.chat(CONVERSATION, { model: 'm' }).result())).to.include({
        kind: 'http',
        status: 401,
      });
    });

    it('when the upstream error text repeats the key, then the error does not', async () => {
      fake.replyOnce({ kind: 'error', status: 401, message: `Incorrect API key provided: ${KEY}` });
      const err = await failure(provider.chat(CONVERSATION, { model: 'm' }).result());
      expect(err.message).to.include('401').and.to.include('[redacted]');
      expect(err.message).to.not.include(KEY);
      expect(JSON.stringify(err)).to.not.include(KEY);
      expect(String(err.stack)).to.not.include(KEY);
    });

    it('when no key is configured, then no Authorization header is sent', async () => {
      const open = await startFakeOpenAI();
      try {
        const keyless = new OpenAICompatibleProvider({ name: 'keyless', baseUrl: open.url, timeoutMs: 300 });
        await keyless.chat(CONVERSATION, { model: 'm' }).result();
        expect(open.requests[0].authorization).to.equal(undefined);
      } finally {
        await open.close();
      }
    });

    it('when the stream breaks off midway, then the chunks before arrive and it fails with broken', async () => {
      fake.replyOnce({ kind: 'break', chunks: ['partial', ' text'] });
      const stream = provider.chat(CONVERSATION, { model: 'm' });
      const seen: string[] = [];
      const err = await failure(
        (async () => {
          for await (const d of stream) seen.push(d);
        })(),
      );
      expect(err.kind).to.equal('broken');
      expect(seen).to.deep.equal(['partial', ' text']);
      expect((await failure(stream.result())).kind).to.equal('broken');
    });

    it('when the upstream ends the response cleanly before finishing, then it fails with broken', async () => {
      fake.replyOnce({ kind: 'break', chunks: ['partial'], how: 'end' });
      expect((await failure(provider.chat(CONVERSATION, { model: 'm' }).result())).kind).to.equal('broken');
    });

    it('when the stream reports an error event midway, then it fails with broken and the upstream message', async () => {
      fake.replyOnce({ kind: 'streamError', chunks: ['a'], message: 'model overloaded' });
      const err = await failure(provider.chat(CONVERSATION, { model: 'm' }).result());
      expect(err.kind).to.equal('broken');
      expect(err.message).to.include('model overloaded');
    });

    it('when the upstream does not answer within the timeout, then it fails with timeout soon after', async () => {
      fake.replyOnce({ kind: 'stall', headersAfterMs: Infinity });
      const started = Date.now();
      const err = await failure(provider.chat(CONVERSATION, { model: 'm' }).result());
      expect(err.kind).to.equal('timeout');
      expect(Date.now() - started).to.be.within(250, 2000);
    });

    it('when the stream stalls midway for longer than the timeout, then it fails with timeout', async () => {
      fake.replyOnce({ kind: 'stall', chunks: ['first'] });
      const seen: string[] = [];
      const stream = provider.chat(CONVERSATION, { model: 'm' });
      const err = await failure(
        (async () => {
          for await (const d of stream) seen.push(d);
        })(),
      );
      expect(err.kind).to.equal('timeout');
      expect(seen).to.deep.equal(['first']);
    });

    it('when a slow stream keeps sending within the timeout, then it is not cut however long it lasts', async () => {
      const patient = new OpenAICompatibleProvider({ name: 'fake', baseUrl: fake.url, apiKey: KEY, timeoutMs: 500 });
      fake.replyOnce({ kind: 'stream', chunks: ['a', 'b', 'c', 'd', 'e', 'f', 'g'], delayMs: 100 });
      const started = Date.now();
      expect((await patient.chat(CONVERSATION, { model: 'm' }).result()).text).to.equal('abcdefg');
      expect(Date.now() - started).to.be.greaterThan(500);
    });

    it('when the reader pauses longer than the timeout between deltas while the upstream keeps streaming, then it is not a timeout', async () => {
      fake.replyOnce({ kind: 'stream', chunks: ['slow', ' reader', ' here'], delayMs: 20 });
      const stream = provider.chat(CONVERSATION, { model: 'm' });
      const seen: string[] = [];
      for await (const d of stream) {
        seen.push(d);
        await new Promise((resolve) => setTimeout(resolve, 450)); // the provider's timeout is 300 ms
      }
      expect(seen).to.deep.equal(['slow', ' reader', ' here']);
      expect((await stream.result()).text).to.equal('slow reader here');
    });

    it('when the caller aborts midway, then it fails with cancelled and the upstream connection is closed', async () => {
      fake.replyOnce({ kind: 'stall', chunks: ['first'] });
      const slow = new OpenAICompatibleProvider({ name: 'fake', baseUrl: fake.url, apiKey: KEY, timeoutMs: 10_000 });
      const ac = new AbortController();
      const abandonedBefore = fake.abandoned;
      const stream = slow.chat(CONVERSATION, { model: 'm' }, { signal: ac.signal });
      const err = await failure(
        (async () => {
          for await (const _ of stream) ac.abort();
        })(),
      );
      expect(err.kind).to.equal('cancelled');
      await fake.untilAbandoned(abandonedBefore);
    });

    it('when the signal is already aborted, then nothing is sent and it fails with cancelled', async () => {
      const before = fake.requests.length;
      const err = await failure(provider.chat(CONVERSATION, { model: 'm' }, { signal: AbortSignal.abort() }).result());
      expect(err.kind).to.equal('cancelled');
      expect(fake.requests.length).to.equal(before);
    });

    it('when the caller stops reading early, then the upstream connection is closed and result() says cancelled', async () => {
      fake.replyOnce({ kind: 'stream', chunks: ['a', 'b', 'c', 'd'], delayMs: 50 });
      const abandonedBefore = fake.abandoned;
      const stream = provider.chat(CONVERSATION, { model: 'm' });
      for await (const _ of stream) break;
      expect((await failure(stream.result())).kind).to.equal('cancelled');
      await fake.untilAbandoned(abandonedBefore);
    });

    it('when nothing listens at the base URL, then it fails with unreachable', async () => {
      const closed = http.createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const { port } = closed.address() as AddressInfo;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      const nowhere = new OpenAICompatibleProvider({
        name: 'nowhere',
        baseUrl: `http://127.0.0.1:${port}/v1`,
        apiKey: KEY,
        timeoutMs: 1000,
      });
      const err = await failure(nowhere.chat(CONVERSATION, { model: 'm' }).result());
      expect(err.kind).to.equal('unreachable');
      expect(err.message).to.not.include(KEY);
    });
  });
});
