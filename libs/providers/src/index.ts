export { LocalDeterministicProvider, countTokens } from './local-provider.js';
export type { CompletionRequest, CompletionResult, ModelProvider } from './provider.js';
