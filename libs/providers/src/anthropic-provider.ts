/**
 * Anthropic's Messages API through the official `@anthropic-ai/sdk`, always
 * streaming (SSE): `message_start` carries the input tokens,
 * `content_block_delta` the text, `message_delta` the output tokens. The API
 * has no seed; temperature and top_p are sent only when set (some models
 * refuse both together).
 */
import type Anthropic from '@anthropic-ai/sdk';
import type { CompletionRequest, CompletionResult, ModelProvider } from './provider.js';
import { callSignal, toCallError } from './call-signal.js';
import { AnthropicToolCallAccumulator, anthropicMessages, anthropicTools } from './tool-calls.js';

export interface AnthropicProviderOptions {
  name: string;
  /** Base URL without the version, e.g. `https://api.anthropic.com`. @default the SDK's */
  baseUrl?: string;
  apiKey?: string;
  /** Whole-call timeout, streaming included, in ms. */
  timeoutMs: number;
  /** `max_tokens` when the request names none (the API requires one), in tokens. @default 4096 */
  defaultMaxOutputTokens?: number;
}

export class AnthropicProvider implements ModelProvider {
  readonly name: string;
  /** The SDK client, made at the first call: a worker that never calls this provider does not load the SDK. */
  private clientPromise: Promise<Anthropic> | undefined;

  constructor(private readonly opts: AnthropicProviderOptions) {
    this.name = opts.name;
  }

  private client(): Promise<Anthropic> {
    const opts = this.opts;
    return (this.clientPromise ??= import('@anthropic-ai/sdk').then(
      ({ default: SDK }) =>
        new SDK({
          ...(opts.baseUrl !== undefined ? { baseURL: opts.baseUrl } : {}),
          apiKey: opts.apiKey ?? null,
          maxRetries: 0,
          timeout: opts.timeoutMs * 2,
        }),
    ));
  }

  async complete(req: CompletionRequest): Promise<CompletionResult> {
    const call = callSignal(req.signal, this.opts.timeoutMs);
    try {
      const stream = await (await this.client()).messages.create(
        {
          model: req.model,
          max_tokens: req.maxOutputTokens ?? this.opts.defaultMaxOutputTokens ?? 4096,
          messages: anthropicMessages(req.prompt, req.turns),
          ...(req.tools?.length ? { tools: anthropicTools(req.tools) } : {}),
          stream: true,
          ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
          ...(req.topP !== undefined ? { top_p: req.topP } : {}),
        },
        { signal: call.signal },
      );
      let text = '';
      let model = req.model;
      let inputTokens = 0;
      let outputTokens = 0;
      const calls = new AnthropicToolCallAccumulator();
      for await (const event of stream) {
        switch (event.type) {
          case 'content_block_start':
            calls.start(event.index, event.content_block);
            break;
          case 'message_start':
            model = event.message.model;
            inputTokens = event.message.usage.input_tokens;
            outputTokens = event.message.usage.output_tokens;
            break;
          case 'content_block_delta':
            if (event.delta.type === 'text_delta') {
              text += event.delta.text;
              req.onDelta?.(event.delta.text);
            } else calls.delta(event.index, event.delta);
            break;
          case 'message_delta':
            outputTokens = event.usage.output_tokens;
            break;
          default:
            break;
        }
      }
      // An abort mid-stream may end the iteration quietly: a cut-off text must not pass for an answer.
      call.signal.throwIfAborted();
      const toolCalls = calls.calls();
      return { text, model, provider: this.name, usage: { inputTokens, outputTokens }, ...(toolCalls.length > 0 ? { toolCalls } : {}) };
    } catch (err) {
      throw toCallError(this.name, err, req.signal, call);
    } finally {
      call.dispose();
    }
  }
}
