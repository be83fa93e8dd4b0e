// OpenAI-compatible chat-completions endpoints (OpenAI, DeepSeek, DashScope compatible mode, any
// self-hosted server) through the `openai` client, always streaming and asking for usage in the
// stream. One request per completion: the client's own retries are off, so a caller that wants to
// retry decides it. The key is sent as `Authorization: Bearer <key>` and never put in an error.
import { createRequire } from 'node:module';
import type OpenAI from 'openai';
import { ChatStream } from './stream.ts';
import { estimateUsage } from './tokens.ts';
import {
  LlmError,
  type ChatMessage,
  type ChatOptions,
  type ChatParams,
  type ChatResult,
  type LlmProvider,
  type Usage,
} from './types.ts';

export interface OpenAICompatibleOptions {
  /** For logs and errors, e.g. `channel 2` or `deepseek`. */
  name: string;
  /** Up to the version segment, e.g. `https://api.deepseek.com/v1`; `/chat/completions` is added. */
  baseUrl: string;
  /** Unset for servers that take no key (no Authorization header is sent then). */
  apiKey?: string;
  /**
   * Longest silence tolerated: until the response starts, and between two chunks of the stream.
   * A long reply that keeps streaming is never cut; a stalled one fails with `timeout`.
   */
  timeoutMs: number;
}

/**
 * The `openai` package, loaded by the first provider made (at start-up, when a live model or a
 * channel with an endpoint is configured), not by every start-up: importing it was about a tenth
 * of a cold start that serves only the offline model.
 */
let OpenAIClient: typeof OpenAI | undefined;
// require() returns any; it is the package the type import names.
const openai = (): typeof OpenAI => (OpenAIClient ??= createRequire(import.meta.url)('openai') as typeof OpenAI);

/** Sets one field of `target`, typed by the field. */
function setField<T, K extends keyof T>(target: T, key: K, value: T[K]): void {
  target[key] = value;
}

const PARAMS = ['max_tokens', 'temperature', 'top_p', 'seed', 'presence_penalty', 'frequency_penalty'] as const;
const DETAIL_LIMIT = 300;

export class OpenAICompatibleProvider implements LlmProvider {
  readonly name: string;
  private readonly client: OpenAI;

  constructor(private readonly options: OpenAICompatibleOptions) {
    this.name = options.name;
    // Everything explicit, so no OPENAI_* environment variable leaks into a third-party provider.
    this.client = new (openai())({
      baseURL: options.baseUrl,
      apiKey: options.apiKey ?? 'unused',
      adminAPIKey: null,
      organization: null,
      project: null,
      webhookSecret: null,
      defaultHeaders: options.apiKey ? undefined : { Authorization: null },
      maxRetries: 0,
      timeout: options.timeoutMs,
      logLevel: 'off',
    });
  }

  chat(messages: ChatMessage[], params: ChatParams, { signal }: ChatOptions = {}): ChatStream {
    return new ChatStream(this.name, this.run(messages, params, signal));
  }

  private async *run(
    messages: ChatMessage[],
    params: ChatParams,
    callerSignal: AbortSignal | undefined,
  ): AsyncGenerator<string, ChatResult, undefined> {
    const silence = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => silence.abort(), this.options.timeoutMs);
    };
    const signal = callerSignal ? AbortSignal.any([callerSignal, silence.signal]) : silence.signal;
    // Why the request was aborted, if it was: the SDK itself either throws or just ends quietly.
    const stopped = (): LlmError | undefined => {
      if (callerSignal?.aborted) return new LlmError('cancelled', this.name, 'the completion was cancelled');
      if (silence.signal.aborted)
        return new LlmError('timeout', this.name, `no answer for ${this.options.timeoutMs} ms`);
      return undefined;
    };

    const body: OpenAI.Chat.ChatCompletionCreateParamsStreaming = {
      model: params.model,
      messages,
      stream: true,
      stream_options: { include_usage: true },
    };
    for (const p of PARAMS) if (params[p] !== undefined) setField(body, p, params[p]);

    let text = '';
    let usage: Usage | undefined;
    let finishReason: string | undefined;
    try {
      const early = stopped();
      if (early) throw early;
      arm();
      let stream;
      try {
        stream = await this.client.chat.completions.create(body, { signal });
      } catch (err) {
        throw stopped() ?? this.toError(err);
      }
      try {
        arm();
        for await (const chunk of stream) {
          if (chunk.usage)
            usage = {
              prompt_tokens: chunk.usage.prompt_tokens,
              completion_tokens: chunk.usage.completion_tokens,
              total_tokens: chunk.usage.total_tokens,
            };
          const choice = chunk.choices?.[0];
          if (choice?.finish_reason) finishReason = choice.finish_reason;
          const delta = choice?.delta?.content;
          if (delta) {
            text += delta;
            // The caller's pace is not the upstream's silence.
            clearTimeout(timer);
            yield delta;
          }
          arm();
        }
      } catch (err) {
        throw stopped() ?? this.toError(err);
      }
      const late = stopped();
      if (late) throw late;
      if (!finishReason) throw new LlmError('broken', this.name, 'the stream ended before the reply was finished');
      return { text, usage: usage ?? estimateUsage(messages, text), finish_reason: finishReason };
    } finally {
      clearTimeout(timer);
    }
  }

  /** One LlmError for whatever the client threw, with the key scrubbed from any upstream text. */
  private toError(err: unknown): LlmError {
    if (err instanceof LlmError) return err;
    const detail = this.scrub(err instanceof Error ? err.message : String(err));
    if (err instanceof openai().APIConnectionTimeoutError)
      return new LlmError('timeout', this.name, `no answer for ${this.options.timeoutMs} ms`);
    if (err instanceof openai().APIUserAbortError)
      return new LlmError('cancelled', this.name, 'the completion was cancelled');
    if (err instanceof openai().APIConnectionError) {
      // The fetch failure, and below it the socket's error code.
      const cause = err.cause instanceof Error ? err.cause : undefined;
      const code = cause?.cause instanceof Object && 'code' in cause.cause ? cause.cause.code : undefined;
      const why = typeof code === 'string' ? code : (cause?.message ?? detail);
      return new LlmError('unreachable', this.name, `cannot connect: ${this.scrub(why)}`);
    }
    if (err instanceof openai().APIError && typeof err.status === 'number')
      return new LlmError('http', this.name, `upstream answered HTTP ${err.status}: ${detail}`, err.status);
    if (err instanceof openai().APIError)
      return new LlmError('broken', this.name, `the stream reported an error: ${detail}`);
    return new LlmError('broken', this.name, `the stream broke off: ${detail}`);
  }

  private scrub(text: string): string {
    const key = this.options.apiKey;
    const clean = key ? text.split(key).join('[redacted]') : text;
    return clean.length > DETAIL_LIMIT ? `${clean.slice(0, DETAIL_LIMIT)}…` : clean;
  }
}
