/** What a model provider takes and gives. Real providers (OpenAI-compatible, Anthropic) implement the same interface. */
export interface CompletionRequest {
  model: string;
  prompt: string;
  seed?: number;
  maxOutputTokens?: number;
  signal?: AbortSignal;
}

export interface CompletionResult {
  text: string;
  model: string;
  provider: string;
  usage: { inputTokens: number; outputTokens: number };
}

export interface ModelProvider {
  readonly name: string;
  complete(req: CompletionRequest): Promise<CompletionResult>;
}
