/**
 * Runs an agent step through a model provider. The provider stays behind
 * the `ModelProvider` interface: the deterministic local one today, a
 * failover chain of real ones later, with no change here.
 */
import { MuseError, type AgentOutput, type StepJob } from '@muse/contracts';
import type { ModelProvider } from '@muse/providers';
import { isStepHandedBack } from './step.errors.js';

/** Model used when a step names none (the deterministic provider accepts any). */
export const DEFAULT_MODEL = 'muse-local';

export interface ProviderObserver {
  request(provider: string, model: string, outcome: 'ok' | 'error' | 'timeout'): void;
  tokens(provider: string, model: string, direction: 'input' | 'output', count: number): void;
}

export class AgentStepExecutor {
  constructor(
    private readonly provider: ModelProvider,
    private readonly observer?: ProviderObserver,
  ) {}

  async run(job: StepJob, signal: AbortSignal): Promise<AgentOutput> {
    if (job.prompt === undefined) {
      throw new MuseError('MUSE_ERR_REQUEST_INVALID', `agent step "${job.stepId}" has no prompt`);
    }
    const model = job.model ?? DEFAULT_MODEL;
    const name = this.provider.name;
    try {
      const res = await this.provider.complete({ model, prompt: job.prompt, seed: job.seed ?? 0, signal });
      this.observer?.request(name, model, 'ok');
      this.observer?.tokens(name, res.model, 'input', res.usage.inputTokens);
      this.observer?.tokens(name, res.model, 'output', res.usage.outputTokens);
      return { text: res.text, model: res.model, usage: { inputTokens: res.usage.inputTokens, outputTokens: res.usage.outputTokens } };
    } catch (err) {
      if (signal.aborted) {
        this.observer?.request(name, model, 'timeout');
        if (isStepHandedBack(signal.reason)) throw signal.reason;
        throw new MuseError('MUSE_ERR_STEP_TIMEOUT', `agent step "${job.stepId}" ran past ${job.timeoutMs} ms`, {
          details: { timeoutMs: job.timeoutMs },
          cause: err,
        });
      }
      this.observer?.request(name, model, 'error');
      if (err instanceof MuseError) throw err;
      throw new MuseError('MUSE_ERR_STEP_PROVIDER', `provider "${name}" failed: ${err instanceof Error ? err.message : String(err)}`, {
        details: { provider: name, model },
        cause: err,
      });
    }
  }
}
