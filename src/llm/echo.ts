// The built-in offline model `echo` (decision G7): a fresh install answers with no key and no
// network. The reply is the last user message, word for word, streamed in up to 8 deltas with a
// pause between them, and usage is the estimate of tokens.ts. With `max_tokens`, the reply is cut
// to fit and finishes with `length`.
import { setTimeout as sleep } from 'node:timers/promises';
import { ChatStream } from './stream.ts';
import { estimateTokens, estimateUsage } from './tokens.ts';
import {
  LlmError,
  type ChatMessage,
  type ChatOptions,
  type ChatParams,
  type ChatResult,
  type LlmProvider,
} from './types.ts';

export const ECHO_MODEL = 'echo';
const MAX_DELTAS = 8;

export interface EchoOptions {
  /** Pause before each delta after the first (0 in tests and benchmarks). */
  delayMs: number;
}

/** The echo reply before any `max_tokens` cut: the last user message, or "" when there is none. */
function echoReply(messages: readonly ChatMessage[]): string {
  return messages.findLast((m) => m.role === 'user')?.content ?? '';
}

/** The longest prefix of `text` whose estimate fits `maxTokens`. */
function cutToTokens(text: string, maxTokens: number): string {
  const chars = [...text];
  let lo = 0;
  let hi = chars.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (estimateTokens(chars.slice(0, mid).join('')) <= maxTokens) lo = mid;
    else hi = mid - 1;
  }
  return chars.slice(0, lo).join('');
}

/** Splits on character boundaries (never inside a surrogate pair) into at most MAX_DELTAS parts. */
export function splitDeltas(text: string): string[] {
  const chars = [...text];
  const parts = Math.min(MAX_DELTAS, chars.length);
  const out: string[] = [];
  for (let i = 0; i < parts; i++)
    out.push(
      chars.slice(Math.floor((i * chars.length) / parts), Math.floor(((i + 1) * chars.length) / parts)).join(''),
    );
  return out;
}

export class EchoProvider implements LlmProvider {
  readonly name = 'echo';

  constructor(private readonly options: EchoOptions) {}

  chat(messages: ChatMessage[], params: ChatParams, { signal }: ChatOptions = {}): ChatStream {
    return new ChatStream(this.name, this.run(messages, params, signal));
  }

  private async *run(
    messages: ChatMessage[],
    params: ChatParams,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<string, ChatResult, undefined> {
    const whole = echoReply(messages);
    const text = params.max_tokens !== undefined ? cutToTokens(whole, params.max_tokens) : whole;
    const cancelled = () => new LlmError('cancelled', this.name, 'the completion was cancelled');
    const deltas = splitDeltas(text);
    for (const [i, delta] of deltas.entries()) {
      if (signal?.aborted) throw cancelled();
      if (i > 0 && this.options.delayMs > 0) {
        try {
          await sleep(this.options.delayMs, undefined, { signal });
        } catch {
          throw cancelled();
        }
      }
      yield delta;
    }
    if (signal?.aborted) throw cancelled();
    return {
      text,
      usage: estimateUsage(messages, text),
      finish_reason: text.length < whole.length ? 'length' : 'stop',
    };
  }
}
