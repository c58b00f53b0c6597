import type { ConversationTurn, ToolCall, ToolSpec } from './tool-calls.js';

/** What a model provider takes and gives. Every provider (deterministic, OpenAI-compatible, Anthropic, a failover chain) implements the same interface. */
export interface CompletionRequest {
  model: string;
  prompt: string;
  /** Sampling seed; the worker derives it from run, step and attempt so a call can be repeated. */
  seed?: number;
  /** Sampling temperature; unset = the provider's default. Recorded with the call. */
  temperature?: number;
  /** Nucleus sampling; unset = the provider's default. Recorded with the call. */
  topP?: number;
  maxOutputTokens?: number;
  /** The agent role making the call; a failover router picks the chain by it. */
  role?: string;
  /** Tools the model may call (function calling); unset = none. */
  tools?: ToolSpec[];
  /** The conversation after the prompt: earlier answers with tool calls, and their results. */
  turns?: ConversationTurn[];
  /** Called with each text delta as it streams in (providers that cannot stream call it once with the whole text). */
  onDelta?: (text: string) => void;
  signal?: AbortSignal;
}

/** A provider of a failover chain that was tried and given up on before the one that answered. */
export interface ProviderFallback {
  provider: string;
  code: string;
  message: string;
}

export interface CompletionResult {
  text: string;
  model: string;
  provider: string;
  usage: { inputTokens: number; outputTokens: number };
  /** Calls the model asks for instead of (or besides) a final answer; absent or empty = `text` is the answer. */
  toolCalls?: ToolCall[];
  /** Providers tried and failed over from, in order (failover chains only; absent or empty = the first answered). */
  fallbacks?: ProviderFallback[];
}

export interface ModelProvider {
  readonly name: string;
  complete(req: CompletionRequest): Promise<CompletionResult>;
}
