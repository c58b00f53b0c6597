/**
 * The default provider: deterministic, local, no network. The same
 * (model, seed, prompt) always gives the same text, so runs replay exactly
 * and tests can assert outputs.
 */
import { createHash } from 'node:crypto';
import type { CompletionRequest, CompletionResult, ModelProvider } from './provider.js';
import { scriptedCompletion } from './scripted-tool-calls.js';

const WORDS = [
  'agent', 'plan', 'review', 'change', 'test', 'merge', 'risk', 'module', 'refactor', 'check',
  'build', 'deploy', 'trace', 'queue', 'retry', 'cache', 'schema', 'lint', 'patch', 'verify',
  'scope', 'owner', 'budget', 'branch', 'commit', 'signal', 'metric', 'lease', 'token', 'step',
];

/** Rough token count: one token per four characters, at least one for non-empty text. */
export function countTokens(text: string): number {
  return text.length === 0 ? 0 : Math.max(1, Math.ceil(text.length / 4));
}

export class LocalDeterministicProvider implements ModelProvider {
  /**
   * @param delayMs artificial latency per call, to make demos and overlap tests observable, in ms.
   * @param name name in metrics and chains. @default local
   */
  constructor(private readonly delayMs = 0, readonly name = 'local') {}

  async complete(req: CompletionRequest): Promise<CompletionResult> {
    // With tools offered, the prompt's `::tool-call` script decides the calls (see tool-calls.ts); the final answer is the plain one below.
    if (req.tools?.length || req.turns?.length) return scriptedCompletion(req, this.name, (plain) => this.complete(plain));
    if (this.delayMs > 0) await sleep(this.delayMs, req.signal);
    req.signal?.throwIfAborted();
    const digest = createHash('sha256').update(`${req.model}\0${req.seed ?? 0}\0${req.prompt}`).digest();
    const n = 8 + (digest[0]! % 17);
    const words: string[] = [];
    for (let i = 0; i < n; i++) words.push(WORDS[digest[(i + 1) % digest.length]! % WORDS.length]!);
    const summary = req.prompt.replace(/\s+/g, ' ').trim().slice(0, 120);
    const text = `[${req.model}#${digest.subarray(0, 4).toString('hex')}] ${words.join(' ')}. (re: ${summary})`;
    const maxOut = req.maxOutputTokens ?? 4096;
    const out = text.slice(0, maxOut * 4);
    req.onDelta?.(out);
    return {
      text: out,
      model: req.model,
      provider: this.name,
      usage: { inputTokens: countTokens(req.prompt), outputTokens: countTokens(out) },
    };
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });
}
