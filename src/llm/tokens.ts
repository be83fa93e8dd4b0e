// A token estimate for when no tokenizer's count is available (the offline model, or a provider
// that reports no usage). Simple and documented rather than exact: a run of ASCII counts one token
// per 4 characters (rounded up), every other character (CJK, emoji, ...) one token each; each
// message adds 4 tokens of framing and a prompt 3 more for the reply's start, as OpenAI counts.
import type { ChatMessage, Usage } from './types.ts';

const MESSAGE_OVERHEAD = 4;
const REPLY_PRIMING = 3;

export function estimateTokens(text: string): number {
  let tokens = 0;
  let asciiRun = 0;
  for (const ch of text) {
    if (ch.codePointAt(0)! < 0x80) {
      asciiRun++;
      continue;
    }
    tokens += Math.ceil(asciiRun / 4) + 1;
    asciiRun = 0;
  }
  return tokens + Math.ceil(asciiRun / 4);
}

export function estimatePromptTokens(messages: readonly ChatMessage[]): number {
  return messages.reduce((n, m) => n + MESSAGE_OVERHEAD + estimateTokens(m.content), REPLY_PRIMING);
}

export function estimateUsage(messages: readonly ChatMessage[], reply: string): Usage {
  const prompt_tokens = estimatePromptTokens(messages);
  const completion_tokens = estimateTokens(reply);
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}
