// What an AIDeer task asks the model (decision A5): a chat's next reply, streamed delta by delta,
// or its title; what it costs; and what its success writes, in the charge's transaction.
import type { Knex } from 'knex';
import { LlmError, type ChatMessage } from '../../llm/index.ts';
import type { ChatStore } from '../store/chats.ts';
import type { TaskRow } from '../store/rows.ts';
import { keptTitle } from './chats.ts';
import { parametersOf } from './messages.ts';
import { MULTIPLIERS, TITLE_MODEL, type ModelRouter } from './models.ts';

const TITLE_MAX = 50;

/** A failure whose message may be shown to the client. */
export class TaskFailure extends Error {}

export function failureText(err: unknown): string {
  if (err instanceof TaskFailure) return err.message;
  if (err instanceof LlmError) {
    switch (err.kind) {
      case 'http':
        return `The model provider answered HTTP ${err.status ?? 'error'}`;
      case 'timeout':
        return 'The model provider timed out';
      case 'unreachable':
        return 'The model provider could not be reached';
      case 'broken':
        return "The model provider's stream broke off";
      case 'cancelled':
        return 'The task was cancelled';
    }
  }
  return 'Internal error';
}

export interface Generated {
  text: string;
  /** Credits to charge. */
  cost: number;
  /** How the charge's record names the work. */
  what: string;
  /** Writes the result where it belongs; false when the chat is gone. */
  apply: (trx: Knex) => Promise<boolean>;
}

/** Runs the task's generation; a chat reply's deltas go to `sink` as they come, then `sink.end()`. */
export async function generate(
  task: TaskRow,
  deps: { chats: ChatStore; router: ModelRouter; titlePrompt: string },
  signal: AbortSignal,
  sink: { delta(text: string): void; end(): Promise<void> },
): Promise<Generated> {
  const context = await deps.chats.generationContext(task.chat_id);
  if (!context) throw new TaskFailure('The chat no longer exists');
  if (task.type === 'chat_generation') {
    const p = parametersOf(context.parameters);
    const { model } = p;
    const stream = deps.router.route(model).provider.chat(
      context.messages,
      {
        model,
        max_tokens: p.max_tokens ?? undefined,
        temperature: p.temperature ?? undefined,
        top_p: p.top_p ?? undefined,
        seed: p.seed ?? undefined,
        presence_penalty: p.presence_penalty ?? undefined,
        frequency_penalty: p.frequency_penalty ?? undefined,
      },
      { signal },
    );
    try {
      for await (const delta of stream) if (delta) sink.delta(delta);
    } finally {
      await sink.end();
    }
    const result = await stream.result();
    const cost = result.usage.total_tokens * MULTIPLIERS[model];
    return {
      text: result.text,
      cost,
      what: 'Chat generation',
      apply: (trx) => deps.chats.appendAssistantMessage(trx, task.chat_id, result.text),
    };
  }
  // The instruction goes last, as a system message: the model answers with the title (and
  // the offline `echo` model, which repeats the last user message, gives a sensible one).
  const messages: ChatMessage[] = [...context.messages, { role: 'system', content: deps.titlePrompt }];
  const result = await deps.router
    .route(TITLE_MODEL)
    .provider.chat(messages, { model: TITLE_MODEL, max_tokens: 100 }, { signal })
    .result();
  const title =
    [
      ...result.text
        .replace(/\s+/g, ' ')
        .trim()
        .replace(/^["'“”「」《》]+|["'“”「」《》]+$/g, ''),
    ]
      .slice(0, TITLE_MAX)
      .join('') || '闲聊';
  return {
    text: title,
    cost: result.usage.total_tokens,
    what: 'Title generation',
    apply: (trx) => deps.chats.setTitle(trx, task.chat_id, keptTitle(title)),
  };
}
