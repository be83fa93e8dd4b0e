// One-API channels (decision O9): where a topic's replies come from. Channel 1 is always the
// built-in offline one (the `echo` model, replies read `"<topic_name>": <text>`); others come from
// ONEAPI_CHANNELS (read by src/channelSettings.ts): OpenAI-compatible endpoints (base URL, key,
// models, timeout) or more built-in ones. Each provider is built once, at start-up.
import type { ChannelConfig, ChannelKind } from '../../channelSettings.ts';
import { EchoProvider, OpenAICompatibleProvider, type ChatMessage, type LlmProvider } from '../../llm/index.ts';

/** A channel and model a topic may use. */
export interface Route {
  model: string;
  /**
   * The channel's reply to the conversation (the last message being the new one). Built-in
   * channels prefix it with the topic's name. Throws LlmError when the channel fails.
   */
  reply(topicName: string, messages: ChatMessage[], signal?: AbortSignal): Promise<string>;
}

/** Why a topic cannot use a channel and model. */
export type ChannelRefusal = { refused: 'unknownChannel' } | { refused: 'modelNotServed'; model: string };

interface Channel {
  config: ChannelConfig;
  /** One per model the channel serves. */
  routes: Map<string, Route>;
}

function routeOf(config: ChannelConfig, provider: LlmProvider, model: string): Route {
  return {
    model,
    async reply(topicName, messages, signal) {
      const { text } = await provider.chat(messages, { model }, { signal }).result();
      return config.kind === 'builtin' ? `"${topicName}": ${text}` : text;
    },
  };
}

export class Channels {
  private readonly byId = new Map<number, Channel>();

  constructor(configs: readonly ChannelConfig[], options: { echoDelayMs: number }) {
    const echo = new EchoProvider({ delayMs: options.echoDelayMs });
    for (const config of configs) {
      const provider =
        config.kind === 'builtin'
          ? echo
          : new OpenAICompatibleProvider({
              name: `channel ${config.id}`,
              baseUrl: config.base_url!,
              apiKey: config.api_key,
              timeoutMs: config.timeout_ms,
            });
      this.byId.set(config.id, {
        config,
        routes: new Map(config.models.map((model) => [model, routeOf(config, provider, model)])),
      });
    }
  }

  /** What a start-up log may show: no keys, and no credentials or path of the base URL. */
  describe(): { id: number; name: string; kind: ChannelKind; host?: string; models: string[]; keyed?: boolean }[] {
    return [...this.byId.values()].map(({ config: c }) => ({
      id: c.id,
      name: c.name,
      kind: c.kind,
      ...(c.base_url ? { host: new URL(c.base_url).host, keyed: Boolean(c.api_key) } : {}),
      models: c.models,
    }));
  }

  /**
   * Where a topic's replies come from: the channel with this model (without one, the channel's
   * first, which a new topic gets), or why a topic cannot use them.
   */
  route(channelId: number, model?: string): Route | ChannelRefusal {
    const channel = this.byId.get(channelId);
    if (!channel) return { refused: 'unknownChannel' };
    const chosen = model ?? channel.config.models[0];
    return channel.routes.get(chosen) ?? { refused: 'modelNotServed', model: chosen };
  }
}
