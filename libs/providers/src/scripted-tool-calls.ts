/**
 * The deterministic provider's function calling: it asks for the calls the
 * prompt's `::tool-call` script names, one round per response, then answers
 * with its usual deterministic text over the prompt and every result it was
 * given, quoting the start of each result after it (so the answer changes
 * when a result does, and a test can see the results reached the model).
 */
import { countTokens } from './local-provider.js';
import type { CompletionRequest, CompletionResult } from './provider.js';
import { nextScriptedRound, toolResults, type ToolResult } from './tool-calls.js';

/** How much of each result the final answer quotes, in characters. */
export const QUOTED_RESULT_CHARS = 200;

export async function scriptedCompletion(
  req: CompletionRequest,
  provider: string,
  plain: (req: CompletionRequest) => Promise<CompletionResult>,
): Promise<CompletionResult> {
  const calls = req.tools?.length ? nextScriptedRound(req.prompt, req.turns) : undefined;
  if (calls) {
    req.signal?.throwIfAborted();
    const text = calls.map((c) => `${c.name}(${JSON.stringify(c.arguments)})`).join('\n');
    return { text: '', model: req.model, provider, usage: { inputTokens: countTokens(req.prompt), outputTokens: countTokens(text) }, toolCalls: calls };
  }
  const results = toolResults(req.turns);
  const { tools: _tools, turns: _turns, ...rest } = req;
  if (results.length === 0) return plain(rest);
  const quoted = `\n\n${quoteResults(results)}`;
  const res = await plain({ ...rest, prompt: `${req.prompt}${quoted}` });
  req.onDelta?.(quoted);
  return { ...res, text: `${res.text}${quoted}`, usage: { ...res.usage, outputTokens: countTokens(`${res.text}${quoted}`) } };
}

/** `tool results:` then one line per result: `<call id> <tool> ok|error: <first 200 characters>`. */
export function quoteResults(results: readonly ToolResult[]): string {
  return `tool results:\n${results.map((r) => `${r.callId} ${r.name} ${r.isError ? 'error' : 'ok'}: ${r.content.replace(/\s+/g, ' ').slice(0, QUOTED_RESULT_CHARS)}`).join('\n')}`;
}
