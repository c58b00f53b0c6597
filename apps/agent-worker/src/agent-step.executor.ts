/**
 * Runs an agent step through a model provider. The provider stays behind
 * the `ModelProvider` interface: the deterministic local one today, a
 * failover chain of real ones later, with no change here.
 */
import { MuseError, type AgentOutput, type StepJob } from '@muse/contracts';
import type { CompletionResult, ModelProvider } from '@muse/providers';
import type { ModelCalls } from './model-calls.js';
import type { ProgressStream } from './progress.publisher.js';
import { isStepHandedBack } from './step.errors.js';
import type { ToolLoop, ToolRound } from './tool-loop.js';

/** Model used when a step names none (the deterministic provider accepts any). */
export const DEFAULT_MODEL = 'muse-local';

export interface ProviderObserver {
  request(provider: string, model: string, outcome: 'ok' | 'error' | 'timeout'): void;
  tokens(provider: string, model: string, direction: 'input' | 'output', count: number, project: string): void;
}

export class AgentStepExecutor {
  constructor(
    private readonly provider: ModelProvider,
    private readonly observer?: ProviderObserver,
    /** Removes secret values from the prompt before it is sent to the provider. */
    private readonly scrubber?: { scrub(text: string): string },
    /** Where streamed token deltas go while the step runs (the run's progress subject). */
    private readonly progress?: { start(job: StepJob): ProgressStream },
    /** Sampling parameters, budget, replay and recording of each call (`model-calls.ts`); unset = a plain provider call. */
    private readonly calls?: Pick<ModelCalls, 'complete'>,
    /** Function calling for steps with `tools` (`tool-loop.ts`); unset = such steps get no tools. */
    private readonly tools?: Pick<ToolLoop, 'run'>,
  ) {}

  async run(job: StepJob, signal: AbortSignal): Promise<AgentOutput> {
    if (job.prompt === undefined) {
      throw new MuseError('MUSE_ERR_REQUEST_INVALID', `agent step "${job.stepId}" has no prompt`);
    }
    const model = job.model ?? DEFAULT_MODEL;
    const name = this.provider.name;
    const live = this.progress?.start(job);
    try {
      const prompt = this.scrubber ? this.scrubber.scrub(job.prompt) : job.prompt;
      // `role` picks the failover chain; the answering provider (not the chain) labels the metrics.
      const onDelta = live ? (d: string) => live.delta(d) : undefined;
      const once = async (round?: ToolRound): Promise<{ res: CompletionResult; cost?: number; call?: AgentOutput['call'] }> =>
        this.calls
          ? await this.calls.complete(job, prompt, signal, onDelta, round)
          : { res: await this.provider.complete({ model, prompt, seed: job.seed ?? 0, role: job.role, signal, ...(onDelta ? { onDelta } : {}), ...round }) };
      // With `tools`, one model call per round until the model answers without calls (each call's result an artifact).
      const made: Awaited<ReturnType<typeof once>> & { toolCalls?: AgentOutput['toolCalls'] } = job.tools?.length && this.tools ? await this.tools.run(job, signal, once) : await once();
      const res = made.res;
      // A replayed call was served from its recording: no provider was asked, nothing was spent.
      if (!made.call?.replayed) {
        this.observer?.request(res.provider, model, 'ok');
        this.observer?.tokens(res.provider, res.model, 'input', res.usage.inputTokens, job.project);
        this.observer?.tokens(res.provider, res.model, 'output', res.usage.outputTokens, job.project);
      }
      const out: AgentOutput = { text: res.text, model: res.model, usage: { inputTokens: res.usage.inputTokens, outputTokens: res.usage.outputTokens }, provider: res.provider };
      if (made.cost !== undefined) out.cost = made.cost;
      if (made.call) out.call = made.call;
      if (made.toolCalls) out.toolCalls = made.toolCalls;
      // Fallbacks go into the step.completed event with the output, so a run shows which providers failed and why.
      if (res.fallbacks && res.fallbacks.length > 0) out.fallbacks = res.fallbacks;
      return out;
    } catch (err) {
      if (signal.aborted) {
        this.observer?.request(name, model, 'timeout');
        if (isStepHandedBack(signal.reason)) throw signal.reason;
        throw new MuseError('MUSE_ERR_STEP_TIMEOUT', `agent step "${job.stepId}" ran past ${job.timeoutMs} ms`, {
          details: { timeoutMs: job.timeoutMs },
          cause: err,
        });
      }
      // A chain's error names the provider that failed last (`details.provider`); label with it rather than the chain.
      const failed = (err instanceof MuseError ? (err.details as { provider?: unknown } | undefined)?.provider : undefined) ?? name;
      this.observer?.request(typeof failed === 'string' ? failed : name, model, 'error');
      if (err instanceof MuseError) throw err;
      throw new MuseError('MUSE_ERR_STEP_PROVIDER', `provider "${name}" failed: ${err instanceof Error ? err.message : String(err)}`, {
        details: { provider: name, model },
        cause: err,
      });
    } finally {
      live?.finish();
    }
  }
}
