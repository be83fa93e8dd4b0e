// The LLM provider layer shared by both APIs (decision G7). Callers pick a provider (the offline
// `echo`, or an OpenAI-compatible endpoint), call `chat()`, read the deltas and/or `result()`, and
// map an `LlmError` by its `kind`.
export { ChatStream } from './stream.ts';
export { EchoProvider, ECHO_MODEL, echoReply } from './echo.ts';
export { OpenAICompatibleProvider, type OpenAICompatibleOptions } from './openaiCompatible.ts';
export { estimateTokens, estimatePromptTokens, estimateUsage } from './tokens.ts';
export { LlmError, type ChatMessage, type ChatOptions, type ChatParams, type ChatResult, type ChatRole, type LlmErrorKind, type LlmProvider, type Usage } from './types.ts';
