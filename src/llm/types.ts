// The provider layer's vocabulary (decision G7): one streaming chat-completion interface that the
// built-in offline model and every OpenAI-compatible provider implement, for both APIs.
import type { ChatStream } from './stream.ts';

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** Sampling parameters; unset ones are left to the provider's defaults (not sent at all). */
export interface ChatParams {
  model: string;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ChatResult {
  /** The whole reply: every delta, joined. */
  text: string;
  /** The provider's count, or the estimate of tokens.ts when it reports none (echo never does). */
  usage: Usage;
  /** `stop`, `length`, ... as the provider reported it. */
  finish_reason: string;
}

export interface ChatOptions {
  /** Aborting it stops the completion (and the upstream request) with an LlmError `cancelled`. */
  signal?: AbortSignal;
}

export interface LlmProvider {
  /** For logs and errors; never holds a secret. */
  readonly name: string;
  /** Starts a completion. Nothing is sent until the returned stream is read. */
  chat(messages: ChatMessage[], params: ChatParams, options?: ChatOptions): ChatStream;
}

/**
 * How a completion failed:
 * - `http`: the upstream answered with an HTTP error status (`status` says which);
 * - `unreachable`: no connection could be made;
 * - `timeout`: the upstream stayed silent longer than the provider's timeout;
 * - `broken`: the stream broke off, reported an error midway or ended without finishing;
 * - `cancelled`: the caller aborted (its signal, or it stopped reading the stream).
 */
export type LlmErrorKind = 'http' | 'unreachable' | 'timeout' | 'broken' | 'cancelled';

export class LlmError extends Error {
  constructor(
    readonly kind: LlmErrorKind,
    readonly provider: string,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(`${provider}: ${message}`, options);
    this.name = 'LlmError';
  }
}
