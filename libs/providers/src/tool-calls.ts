/**
 * Function calling, provider-neutral: the tools offered to a model, the calls
 * it makes, the results fed back, and their mapping to the two wire protocols
 * (OpenAI chat completions `tools`/`tool_calls`/`role: tool`; Anthropic
 * messages `tools`/`tool_use`/`tool_result`), including the accumulation of
 * streamed call deltas.
 *
 * Also the tool-call *script* used offline: the deterministic provider (and
 * the fake model servers in `testing/`) read `::tool-call <tool> <json args>`
 * lines from the prompt and ask for those calls, one response per group of
 * consecutive lines, before giving a final answer — so function calling is
 * testable without a model (issue 4).
 */

/** A tool the model may call. `parameters` is a JSON Schema object. */
export interface ToolSpec {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
}

/** One call the model asked for. `arguments` is the parsed JSON (or the raw text when the model sent invalid JSON). */
export interface ToolCall {
  id: string;
  name: string;
  arguments: unknown;
}

/** What a call gave, fed back to the model. */
export interface ToolResult {
  callId: string;
  name: string;
  /** The result as text (JSON for structured results). */
  content: string;
  /** The call failed; `content` says why. */
  isError?: boolean;
}

/** The conversation after the prompt: the model's turns with calls, and the results that answered them. */
export type ConversationTurn = { role: 'assistant'; text: string; toolCalls: ToolCall[] } | { role: 'tool'; results: ToolResult[] };

/** Prefix of a script line: `::tool-call http {"method":"GET","url":"https://example.com"}`. */
export const TOOL_CALL_DIRECTIVE = '::tool-call';

/** One scripted call, before it gets an id. */
export interface ScriptedCall {
  name: string;
  arguments: unknown;
}

/**
 * The tool-call script in a prompt: rounds of calls, a round being a run of
 * consecutive `::tool-call <tool> <json>` lines. Arguments that are not JSON
 * are kept as text (a model can send broken JSON too).
 */
export function parseToolCallScript(prompt: string): ScriptedCall[][] {
  const rounds: ScriptedCall[][] = [];
  let current: ScriptedCall[] | undefined;
  for (const line of prompt.split(/\r?\n/)) {
    const t = line.trim();
    if (!t.startsWith(`${TOOL_CALL_DIRECTIVE} `)) {
      current = undefined;
      continue;
    }
    const rest = t.slice(TOOL_CALL_DIRECTIVE.length).trim();
    const space = rest.search(/\s/);
    const name = space < 0 ? rest : rest.slice(0, space);
    const raw = space < 0 ? '' : rest.slice(space + 1).trim();
    if (!current) rounds.push((current = []));
    current.push({ name, arguments: raw === '' ? {} : parseArguments(raw) });
  }
  return rounds;
}

/** The scripted calls to answer with now, given the turns so far; undefined once the script is done. */
export function nextScriptedRound(prompt: string, turns: readonly ConversationTurn[] | undefined): ToolCall[] | undefined {
  const done = (turns ?? []).filter((t) => t.role === 'assistant' && t.toolCalls.length > 0).length;
  const round = parseToolCallScript(prompt)[done];
  if (!round) return undefined;
  return round.map((c, i) => ({ id: `call_${done + 1}_${i + 1}`, name: c.name, arguments: c.arguments }));
}

/** Every result fed back so far, in order. */
export function toolResults(turns: readonly ConversationTurn[] | undefined): ToolResult[] {
  return (turns ?? []).flatMap((t) => (t.role === 'tool' ? t.results : []));
}

/** JSON text as a value, or the text itself when it is not JSON. */
export function parseArguments(raw: string): unknown {
  if (raw.trim() === '') return {};
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

function argumentsText(args: unknown): string {
  return typeof args === 'string' ? args : JSON.stringify(args ?? {});
}

// ---- OpenAI chat completions ------------------------------------------------

/** `tools` of a chat completions request. */
export function openAiTools(tools: readonly ToolSpec[]): Array<{ type: 'function'; function: { name: string; description: string; parameters: Record<string, unknown> } }> {
  return tools.map((t) => ({ type: 'function' as const, function: { name: t.name, description: t.description, parameters: t.parameters } }));
}

type OpenAiMessage =
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }> }
  | { role: 'tool'; tool_call_id: string; content: string };

/** The prompt and the turns after it as chat completions messages. */
export function openAiMessages(prompt: string, turns: readonly ConversationTurn[] | undefined): OpenAiMessage[] {
  const out: OpenAiMessage[] = [{ role: 'user', content: prompt }];
  for (const t of turns ?? []) {
    if (t.role === 'assistant') {
      out.push({
        role: 'assistant',
        content: t.text === '' ? null : t.text,
        ...(t.toolCalls.length > 0 ? { tool_calls: t.toolCalls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: argumentsText(c.arguments) } })) } : {}),
      });
    } else {
      for (const r of t.results) out.push({ role: 'tool', tool_call_id: r.callId, content: r.isError ? `ERROR: ${r.content}` : r.content });
    }
  }
  return out;
}

/** Collects `delta.tool_calls` fragments of a streamed chat completion (by `index`) into whole calls. */
export class OpenAiToolCallAccumulator {
  private readonly parts = new Map<number, { id: string; name: string; args: string }>();

  add(deltas: ReadonlyArray<{ index: number; id?: string | undefined; function?: { name?: string | undefined; arguments?: string | undefined } | undefined }> | undefined | null): void {
    for (const d of deltas ?? []) {
      const p = this.parts.get(d.index) ?? { id: '', name: '', args: '' };
      if (d.id) p.id = d.id;
      if (d.function?.name) p.name += d.function.name;
      if (d.function?.arguments) p.args += d.function.arguments;
      this.parts.set(d.index, p);
    }
  }

  calls(): ToolCall[] {
    return [...this.parts.entries()].sort(([a], [b]) => a - b).map(([i, p]) => ({ id: p.id || `call_${i}`, name: p.name, arguments: parseArguments(p.args) }));
  }
}

// ---- Anthropic messages -----------------------------------------------------

/** `tools` of a messages request. */
export function anthropicTools(tools: readonly ToolSpec[]): Array<{ name: string; description: string; input_schema: { type: 'object'; [k: string]: unknown } }> {
  return tools.map((t) => ({ name: t.name, description: t.description, input_schema: { ...t.parameters, type: 'object' as const } }));
}

type AnthropicBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: unknown }
  | { type: 'tool_result'; tool_use_id: string; content: string; is_error?: boolean };
type AnthropicMessage = { role: 'user' | 'assistant'; content: string | AnthropicBlock[] };

/** The prompt and the turns after it as messages (results go back in a user turn of `tool_result` blocks). */
export function anthropicMessages(prompt: string, turns: readonly ConversationTurn[] | undefined): AnthropicMessage[] {
  const out: AnthropicMessage[] = [{ role: 'user', content: prompt }];
  for (const t of turns ?? []) {
    if (t.role === 'assistant') {
      const blocks: AnthropicBlock[] = t.text === '' ? [] : [{ type: 'text', text: t.text }];
      for (const c of t.toolCalls) blocks.push({ type: 'tool_use', id: c.id, name: c.name, input: typeof c.arguments === 'object' && c.arguments !== null ? c.arguments : { input: c.arguments } });
      out.push({ role: 'assistant', content: blocks });
    } else {
      out.push({ role: 'user', content: t.results.map((r) => ({ type: 'tool_result' as const, tool_use_id: r.callId, content: r.content, ...(r.isError ? { is_error: true } : {}) })) });
    }
  }
  return out;
}

/** Collects streamed `tool_use` blocks (`content_block_start` + `input_json_delta`s, by block index) into whole calls. */
export class AnthropicToolCallAccumulator {
  private readonly parts = new Map<number, { id: string; name: string; json: string; input: unknown }>();

  start(index: number, block: { type: string; id?: string; name?: string; input?: unknown }): void {
    if (block.type === 'tool_use') this.parts.set(index, { id: block.id ?? `toolu_${index}`, name: block.name ?? '', json: '', input: block.input });
  }

  delta(index: number, delta: { type: string; partial_json?: string }): void {
    const p = this.parts.get(index);
    if (p && delta.type === 'input_json_delta' && delta.partial_json) p.json += delta.partial_json;
  }

  calls(): ToolCall[] {
    return [...this.parts.entries()].sort(([a], [b]) => a - b).map(([, p]) => ({ id: p.id, name: p.name, arguments: p.json !== '' ? parseArguments(p.json) : (p.input ?? {}) }));
  }
}
