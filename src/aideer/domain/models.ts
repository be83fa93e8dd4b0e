// AIDeer models → providers and credit multipliers (decision A14). Each provider is live when its
// key is set; otherwise its models are served by the built-in offline model `echo`.
import { EchoProvider, OpenAICompatibleProvider, type LlmProvider } from '../../llm/index.ts';
import type { Config } from '../../config.ts';
import type { components } from '../../../generated/aideer.ts';

export type PresetModel = components['schemas']['PresetModel'];

/** Credits per token, as the original. A model missing here cannot be saved in a preset (A14). */
export const MULTIPLIERS: Record<PresetModel, number> = {
  'deepseek-chat': 1,
  'qwen-turbo': 4,
  'qwen-plus': 10,
  'gpt-3.5-turbo': 11,
  'qwen-max': 60,
};

/** The model title generation always uses, whatever the chat's preset says (as the original). */
export const TITLE_MODEL: PresetModel = 'deepseek-chat';

export interface ModelRoute {
  provider: LlmProvider;
  /** `echo` when the model's provider has no key. */
  live: boolean;
}

export class ModelRouter {
  private readonly routes: Record<PresetModel, ModelRoute>;

  constructor(config: Config) {
    const echo = new EchoProvider({ delayMs: config.llmEchoDelayMs });
    const provider = (name: string, baseUrl: string, apiKey: string | undefined, timeoutSeconds: number): ModelRoute =>
      apiKey
        ? {
            provider: new OpenAICompatibleProvider({ name, baseUrl, apiKey, timeoutMs: timeoutSeconds * 1000 }),
            live: true,
          }
        : { provider: echo, live: false };
    const deepseek = provider('deepseek', config.deepseekBaseUrl, config.deepseekApiKey, config.deepseekTimeoutSeconds);
    const openai = provider('openai', config.openaiBaseUrl, config.openaiApiKey, config.openaiTimeoutSeconds);
    const dashscope = provider(
      'dashscope',
      config.dashscopeBaseUrl,
      config.dashscopeApiKey,
      config.dashscopeTimeoutSeconds,
    );
    this.routes = {
      'deepseek-chat': deepseek,
      'gpt-3.5-turbo': openai,
      'qwen-turbo': dashscope,
      'qwen-plus': dashscope,
      'qwen-max': dashscope,
    };
  }

  route(model: PresetModel): ModelRoute {
    return this.routes[model];
  }

  /** For the start-up log: which models are live and which fall back to `echo`. */
  describe(): { live: PresetModel[]; echo: PresetModel[] } {
    // Object.keys types keys as strings; `routes` has exactly one key per PresetModel.
    const models = Object.keys(this.routes) as PresetModel[];
    return { live: models.filter((m) => this.routes[m].live), echo: models.filter((m) => !this.routes[m].live) };
  }
}
