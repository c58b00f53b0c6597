/**
 * OpenAI-compatible chat completions through the official `openai` SDK:
 * OpenAI itself, and Ollama, LocalAI, vLLM and others that speak the same
 * protocol at another base URL. Always streams (SSE), so deltas reach the
 * caller while the model writes; usage comes from the final chunk
 * (`stream_options.include_usage`), or is estimated when a server omits it.
 */
import type OpenAI from 'openai';
import { countTokens } from './local-provider.js';
import type { CompletionRequest, CompletionResult, ModelProvider } from './provider.js';
import { callSignal, toCallError } from './call-signal.js';
import { OpenAiToolCallAccumulator, openAiMessages, openAiTools } from './tool-calls.js';

export interface OpenAiProviderOptions {
  /** Name in metrics, events and chains. */
  name: string;
  /** Base URL including the version, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1` (Ollama). */
  baseUrl: string;
  /** API key; local servers (Ollama, LocalAI) need none. */
  apiKey?: string;
  /** Whole-call timeout, streaming included, in ms. */
  timeoutMs: number;
  /** Output cap when the request names none, in tokens. @default 4096 */
  defaultMaxOutputTokens?: number;
}

export class OpenAiCompatibleProvider implements ModelProvider {
  readonly name: string;
  /** The SDK client, made at the first call: a worker that never calls this provider does not load the SDK. */
  private clientPromise: Promise<OpenAI> | undefined;

  constructor(private readonly opts: OpenAiProviderOptions) {
    this.name = opts.name;
  }

  private client(): Promise<OpenAI> {
    // Retries and timeouts belong to the failover chain (it knows the other providers), so the SDK does neither.
    // The SDK refuses to start without a key; local servers ignore it, so a placeholder stands in.
    const { baseUrl, apiKey, timeoutMs } = this.opts;
    return (this.clientPromise ??= import('openai').then(({ default: SDK }) => new SDK({ baseURL: baseUrl, apiKey: apiKey ?? 'unused', maxRetries: 0, timeout: timeoutMs * 2 })));
  }

  async complete(req: CompletionRequest): Promise<CompletionResult> {
    const call = callSignal(req.signal, this.opts.timeoutMs);
    try {
      const stream = await (await this.client()).chat.completions.create(
        {
          model: req.model,
          messages: openAiMessages(req.prompt, req.turns),
          ...(req.tools?.length ? { tools: openAiTools(req.tools) } : {}),
          stream: true,
          stream_options: { include_usage: true },
          max_completion_tokens: req.maxOutputTokens ?? this.opts.defaultMaxOutputTokens ?? 4096,
          ...(req.seed !== undefined ? { seed: req.seed } : {}),
          ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
          ...(req.topP !== undefined ? { top_p: req.topP } : {}),
        },
        { signal: call.signal },
      );
      let text = '';
      let model = req.model;
      let usage: { inputTokens: number; outputTokens: number } | undefined;
      const calls = new OpenAiToolCallAccumulator();
      for await (const chunk of stream) {
        calls.add(chunk.choices[0]?.delta?.tool_calls);
        if (chunk.model) model = chunk.model;
        const delta = chunk.choices[0]?.delta?.content;
        if (delta) {
          text += delta;
          req.onDelta?.(delta);
        }
        if (chunk.usage) usage = { inputTokens: chunk.usage.prompt_tokens, outputTokens: chunk.usage.completion_tokens };
      }
      // The SDK ends the iteration quietly when the signal aborts mid-stream: a cut-off text must not pass for an answer.
      call.signal.throwIfAborted();
      const toolCalls = calls.calls();
      return { text, model, provider: this.name, usage: usage ?? { inputTokens: countTokens(req.prompt), outputTokens: countTokens(text) }, ...(toolCalls.length > 0 ? { toolCalls } : {}) };
    } catch (err) {
      throw toCallError(this.name, err, req.signal, call);
    } finally {
      call.dispose();
    }
  }
}
