/**
 * Every model call of an agent step goes through here: it fixes the sampling
 * parameters (temperature, top_p, a seed derived from run, step and attempt
 * unless the step pins one), reserves the run's budget, calls the provider
 * chain — or, in a replay, serves the recorded answer when the request hashes
 * the same — settles the budget, prices the call and records it as
 * `llm-call.json` (schema `muse.llm-call/v1`), which the step processor
 * uploads with the step's output.
 */
import { deriveSeed, MuseError, stepKey, type AgentOutput, type AttemptSpend, type ModelPrices, type StepJob } from '@muse/contracts';
import {
  countTokens,
  diffRequests,
  LLM_CALL_ARTIFACT,
  LLM_CALL_SCHEMA,
  LlmCallRecordSchema,
  requestHash,
  type CompletionResult,
  type ConversationTurn,
  type ToolSpec,
  type LlmCallRecord,
  type LlmCallRequest,
  type ModelProvider,
} from '@muse/providers';
import type { RunBudgets } from './budget.js';
import type { OutputArtifact } from './step.processor.js';

/** Sampling defaults when the step sets none: greedy, no nucleus cut. */
export const DEFAULT_TEMPERATURE = 0;
export const DEFAULT_TOP_P = 1;

/** USD per million tokens: by model (`MUSE_MODEL_PRICES`) first, else by the answering provider's `price`. */
export class Pricing {
  constructor(
    private readonly byModel: ModelPrices = {},
    private readonly byProvider: Record<string, { inputPerMTok: number; outputPerMTok: number } | undefined> = {},
  ) {}

  price(provider: string | undefined, model: string): { inputPerMTok: number; outputPerMTok: number } | undefined {
    return this.byModel[model] ?? (provider !== undefined ? this.byProvider[provider] : undefined);
  }

  /** USD of a call; undefined when neither the model nor the provider has a price. */
  cost(provider: string | undefined, model: string, usage: { inputTokens: number; outputTokens: number }): number | undefined {
    const p = this.price(provider, model);
    return p ? (usage.inputTokens * p.inputPerMTok + usage.outputTokens * p.outputPerMTok) / 1e6 : undefined;
  }
}

/** Reads a recorded call (an `llm-call.json` artifact) by artifact id. */
export interface RecordingReader {
  read(artifactId: string): Promise<LlmCallRecord>;
}

export interface ModelCallsOptions {
  provider: ModelProvider;
  budgets?: RunBudgets;
  recordings?: RecordingReader;
  pricing?: Pricing;
  /** Removes secrets from what is recorded. */
  scrubber?: { scrubDeep<T>(value: T): T };
  /** Under a budget: the output cap sent to the provider and reserved beyond the prompt. @default 1024 */
  budgetMaxOutputTokens?: number;
  now?: () => Date;
}

export interface ModelCallResult {
  res: CompletionResult;
  cost?: number;
  call: NonNullable<AgentOutput['call']>;
}

export class ModelCalls {
  /** Calls recorded per job attempt, until the step processor takes them. */
  private readonly records = new Map<string, LlmCallRecord[]>();
  /** What each job attempt's calls spent (replayed calls spend nothing), until the step processor takes it. */
  private readonly spent = new Map<string, AttemptSpend>();

  constructor(private readonly opts: ModelCallsOptions) {}

  /** @param round the tools offered and the conversation so far, for a step with `tools` (`tool-loop.ts`) */
  async complete(job: StepJob, prompt: string, signal: AbortSignal, onDelta?: (d: string) => void, round?: { tools: ToolSpec[]; turns: ConversationTurn[] }): Promise<ModelCallResult> {
    const model = job.model ?? 'muse-local';
    const key = jobKey(job);
    const callNo = (this.records.get(key)?.length ?? 0) + 1;
    const startedAt = (this.opts.now ?? (() => new Date()))();
    const t0 = performance.now();
    const maxOutputTokens = job.budget ? (this.opts.budgetMaxOutputTokens ?? 1024) : 0;
    const request = (seed: number): LlmCallRequest => ({
      model,
      role: job.role,
      messages: [{ role: 'user', content: prompt }],
      temperature: job.temperature ?? DEFAULT_TEMPERATURE,
      topP: job.topP ?? DEFAULT_TOP_P,
      seed,
      maxOutputTokens,
      promptTemplateHash: job.promptTemplateHash ?? '',
      toolSchemaVersions: {},
    });

    let req: LlmCallRequest;
    let res: CompletionResult;
    let cost: number | undefined;
    let replayed = false;
    if (job.replay) {
      const rec = await this.recorded(job, callNo);
      // The seed a replay asks with is the recorded attempt's: same run, step and attempt, same seed.
      req = request(job.seed ?? deriveSeed(job.replay.runId, job.stepId, rec.attempt, job.index));
      const actualHash = requestHash(req);
      if (actualHash !== rec.requestHash) {
        throw new MuseError('MUSE_ERR_REPLAY_DIVERGED', `step "${stepKey(job.stepId, job.index)}" asks another request than run ${job.replay.runId} recorded`, {
          details: { stepId: job.stepId, ...(job.index !== undefined ? { index: job.index } : {}), recordedRun: job.replay.runId, expectedHash: rec.requestHash, actualHash, diff: diffRequests(rec.request, req) },
        });
      }
      onDelta?.(rec.response.text);
      res = { text: rec.response.text, model: rec.response.model, provider: rec.provider, usage: rec.response.usage, ...(rec.response.fallbacks ? { fallbacks: rec.response.fallbacks } : {}) };
      cost = rec.response.cost;
      replayed = true;
    } else {
      req = request(job.seed ?? deriveSeed(job.runId, job.stepId, job.attempt, job.index));
      const budgets = job.budget ? this.opts.budgets : undefined;
      const callId = `${key}.${callNo}`;
      if (budgets) {
        const est = { tokens: countTokens(prompt) + maxOutputTokens, cost: this.opts.pricing?.cost(undefined, model, { inputTokens: countTokens(prompt), outputTokens: maxOutputTokens }) ?? 0 };
        await budgets.reserve(job.runId, callId, est, job.budget!, job.timeoutMs);
      }
      try {
        res = await this.opts.provider.complete({
          model,
          prompt,
          seed: req.seed,
          temperature: req.temperature,
          // Sent only when the step sets it: some providers refuse temperature and top_p together.
          ...(job.topP !== undefined ? { topP: job.topP } : {}),
          ...(maxOutputTokens > 0 ? { maxOutputTokens } : {}),
          role: job.role,
          signal,
          ...(onDelta ? { onDelta } : {}),
          ...round,
        });
      } catch (err) {
        await budgets?.settle(job.runId, callId, { tokens: 0, cost: 0 });
        throw err;
      }
      cost = this.opts.pricing?.cost(res.provider, res.model, res.usage);
      this.tally(key, res, cost);
      await budgets?.settle(job.runId, callId, { tokens: res.usage.inputTokens + res.usage.outputTokens, cost: cost ?? 0 });
    }

    const hash = requestHash(req);
    const record: LlmCallRecord = {
      schema: LLM_CALL_SCHEMA,
      runId: job.runId,
      stepId: job.stepId,
      ...(job.index !== undefined ? { index: job.index } : {}),
      attempt: job.attempt,
      ...(job.definitionVersion !== undefined ? { definitionVersion: job.definitionVersion } : {}),
      provider: res.provider,
      request: req,
      requestHash: hash,
      response: { text: res.text, model: res.model, usage: res.usage, ...(cost !== undefined ? { cost } : {}), ...(res.fallbacks?.length ? { fallbacks: res.fallbacks } : {}) },
      timing: { startedAt: startedAt.toISOString(), durationMs: Math.round(performance.now() - t0) },
    };
    this.records.set(key, [...(this.records.get(key) ?? []), this.opts.scrubber ? this.opts.scrubber.scrubDeep(record) : record]);
    return { res, ...(cost !== undefined ? { cost } : {}), call: { requestHash: hash, seed: req.seed, temperature: req.temperature, topP: req.topP, ...(replayed ? { replayed: true } : {}) } };
  }

  /**
   * What the job attempt's calls spent, forgotten here once taken: a failed attempt reports it (a completed one's output
   * carries its usage). Undefined when it made no call, or only replayed ones.
   */
  takeSpent(job: StepJob): AttemptSpend | undefined {
    const key = jobKey(job);
    const spent = this.spent.get(key);
    this.spent.delete(key);
    return spent;
  }

  private tally(key: string, res: CompletionResult, cost: number | undefined): void {
    const so = this.spent.get(key);
    // Priced when any call was.
    const total = so?.cost === undefined && cost === undefined ? undefined : (so?.cost ?? 0) + (cost ?? 0);
    this.spent.set(key, {
      inputTokens: (so?.inputTokens ?? 0) + res.usage.inputTokens,
      outputTokens: (so?.outputTokens ?? 0) + res.usage.outputTokens,
      ...(total !== undefined ? { cost: total } : {}),
      provider: res.provider,
      model: res.model,
    });
  }

  /** The job's recorded calls as artifacts (`llm-call.json`, then `llm-call-2.json`...), forgotten here once taken. */
  take(job: StepJob): (OutputArtifact & { schema?: string })[] {
    const key = jobKey(job);
    const recs = this.records.get(key) ?? [];
    this.records.delete(key);
    return recs.map((r, i) => ({
      name: i === 0 ? LLM_CALL_ARTIFACT : LLM_CALL_ARTIFACT.replace('.json', `-${i + 1}.json`),
      mediaType: 'application/json',
      bytes: Buffer.from(JSON.stringify(r, null, 2), 'utf8'),
      tool: 'model',
      toolVersion: r.response.model,
      schema: LLM_CALL_SCHEMA,
    }));
  }

  /** The recorded call a replay serves; none recorded (the step never completed in that run) is a divergence too. */
  private async recorded(job: StepJob, callNo: number): Promise<LlmCallRecord> {
    const replay = job.replay!;
    const id = callNo === 1 ? replay.recording : undefined;
    if (id === undefined || !this.opts.recordings) {
      throw new MuseError('MUSE_ERR_REPLAY_DIVERGED', `step "${stepKey(job.stepId, job.index)}" made a model call that run ${replay.runId} has no recording of`, {
        details: { stepId: job.stepId, ...(job.index !== undefined ? { index: job.index } : {}), recordedRun: replay.runId, call: callNo, expectedHash: null, actualHash: null, diff: [{ field: 'recording', expected: null, actual: `call ${callNo}` }] },
      });
    }
    return LlmCallRecordSchema.parse(await this.opts.recordings.read(id));
  }
}

function jobKey(job: StepJob): string {
  return `${job.runId}.${stepKey(job.stepId, job.index)}.${job.attempt}`;
}
