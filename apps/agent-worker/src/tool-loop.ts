/**
 * Function calling for an agent step with `tools`: ask the model (offering
 * the step's tools), run each call it makes through the AgentToolRunner, feed
 * the results back, and repeat until it answers without calls. More calls in
 * all than `maxToolCalls` fail the step (MUSE_ERR_TOOL_CALLS_EXCEEDED, not
 * retried: the same model on the same prompt would do it again).
 *
 * Every call's result becomes an artifact `tool-calls/NN-<tool>.json`
 * (schema `muse.tool-call/v1`, producer the tool and its version), which the
 * step processor takes after the step ran and uploads with its output.
 */
import { DEFAULT_MAX_TOOL_CALLS, MuseError, stepKey, type AgentToolName, type StepJob, type ToolCallRecord } from '@muse/contracts';
import type { CompletionResult, ConversationTurn, ToolResult, ToolSpec } from '@muse/providers';
import { TOOL_SPECS, type AgentToolRunner } from './agent-tools.js';
import type { OutputArtifact } from './step.processor.js';

export const TOOL_CALL_SCHEMA = 'muse.tool-call/v1';

/** What one model call is given on top of the step's own request. */
export interface ToolRound {
  tools: ToolSpec[];
  turns: ConversationTurn[];
}

/** One model call's result, as the executor's model-call path gives it (cost and call record when it knows them). */
export interface ModelRound {
  res: CompletionResult;
  cost?: number;
}

export class ToolLoop {
  /** Artifacts of each job attempt's calls, until the step processor takes them. */
  private readonly pending = new Map<string, Array<OutputArtifact & { schema: string }>>();

  constructor(
    private readonly runner: Pick<AgentToolRunner, 'call'>,
    /** Removes secret values from results before they are fed back to the provider or stored (README "Secrets"). */
    private readonly scrubber?: { scrubDeep<T>(value: T): T },
  ) {}

  /**
   * Runs the model, and the tools it calls, to a final answer. `call` makes one model call with the tools and the
   * turns so far. @returns the last call's result with usage and cost summed over every call, and the call records
   */
  async run<R extends ModelRound>(job: StepJob, signal: AbortSignal, call: (round: ToolRound) => Promise<R>): Promise<R & { toolCalls: ToolCallRecord[] }> {
    const names = [...new Set(job.tools ?? [])] as AgentToolName[];
    const tools = names.map((n) => {
      const { version: _v, ...spec } = TOOL_SPECS[n];
      return spec;
    });
    const max = job.maxToolCalls ?? DEFAULT_MAX_TOOL_CALLS;
    const key = jobKey(job);
    const artifacts: Array<OutputArtifact & { schema: string }> = [];
    this.pending.set(key, artifacts);
    const turns: ConversationTurn[] = [];
    const records: ToolCallRecord[] = [];
    const usage = { inputTokens: 0, outputTokens: 0 };
    let cost: number | undefined;
    for (;;) {
      const made = await call({ tools, turns: [...turns] });
      usage.inputTokens += made.res.usage.inputTokens;
      usage.outputTokens += made.res.usage.outputTokens;
      if (made.cost !== undefined) cost = (cost ?? 0) + made.cost;
      const calls = made.res.toolCalls ?? [];
      if (calls.length === 0) {
        return { ...made, res: { ...made.res, usage }, ...(cost !== undefined ? { cost } : {}), toolCalls: records };
      }
      if (records.length + calls.length > max) {
        throw new MuseError('MUSE_ERR_TOOL_CALLS_EXCEEDED', `the model asked for ${records.length + calls.length} tool calls; step "${job.stepId}" allows ${max} (maxToolCalls)`, {
          details: { maxToolCalls: max, made: records.length, requested: calls.map((c) => c.name) },
        });
      }
      turns.push({ role: 'assistant', text: made.res.text, toolCalls: calls });
      const results: ToolResult[] = [];
      for (const c of calls) {
        const raw = await this.runner.call(job, c.name, c.arguments, signal);
        const outcome = this.scrubber ? this.scrubber.scrubDeep(raw) : raw;
        const n = records.length + 1;
        const name = `tool-calls/${String(n).padStart(2, '0')}-${safeName(c.name)}.json`;
        const spec = TOOL_SPECS[c.name as AgentToolName] as (typeof TOOL_SPECS)[AgentToolName] | undefined;
        const body = {
          schema: TOOL_CALL_SCHEMA,
          call: n,
          id: c.id,
          tool: c.name,
          ...(spec ? { toolVersion: spec.version } : {}),
          arguments: this.scrubber ? this.scrubber.scrubDeep(c.arguments) : c.arguments,
          ...(outcome.ok ? { result: outcome.result } : { error: outcome.error }),
        };
        artifacts.push({
          name,
          mediaType: 'application/json',
          bytes: Buffer.from(JSON.stringify(body, null, 2), 'utf8'),
          tool: safeName(c.name),
          ...(spec ? { toolVersion: spec.version } : {}),
          schema: TOOL_CALL_SCHEMA,
        });
        records.push({ id: c.id, tool: c.name, arguments: c.arguments, outcome: outcome.ok ? 'ok' : outcome.error.code, artifact: name });
        results.push({ callId: c.id, name: c.name, content: outcome.content, ...(outcome.ok ? {} : { isError: true }) });
      }
      turns.push({ role: 'tool', results });
    }
  }

  /** The job's tool-call artifacts, forgotten here once taken (the step processor takes them whatever the outcome). */
  take(job: StepJob): Array<OutputArtifact & { schema: string }> {
    const key = jobKey(job);
    const list = this.pending.get(key) ?? [];
    this.pending.delete(key);
    return list;
  }
}

function jobKey(job: StepJob): string {
  return `${job.runId}.${stepKey(job.stepId, job.index)}.${job.attempt}`;
}

/** A model may name any tool; artifact names and producer labels get a tame version of it. */
function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64) || 'unnamed';
}
