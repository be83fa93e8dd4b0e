// The LLM provider layer shared by both APIs (decision G7). Callers pick a provider (the offline
// `echo`, or an OpenAI-compatible endpoint), call `chat()`, read the deltas and/or `result()`, and
// map an `LlmError` by its `kind`.
export type { ChatStream } from './stream.ts';
export { EchoProvider, ECHO_MODEL } from './echo.ts';
export { OpenAICompatibleProvider } from './openaiCompatible.ts';
export { LlmError, type ChatMessage, type LlmProvider } from './types.ts';
