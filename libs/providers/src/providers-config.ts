/**
 * The model providers configuration (`MUSE_PROVIDERS_CONFIG`): a path to a
 * YAML or JSON file, or the JSON itself (a value starting with `{`). API keys
 * are never in it: each provider names the environment variable holding its
 * key (`apiKeyEnv`). Unset = one `local` deterministic provider for every role.
 *
 * ```yaml
 * providers:
 *   ollama: { type: openai, baseUrl: http://127.0.0.1:11434/v1, model: llama3.1, timeoutMs: 60000 }
 *   claude: { type: anthropic, apiKeyEnv: ANTHROPIC_API_KEY, model: claude-sonnet-4-5, breaker: { consecutiveFailures: 3, openMs: 30000 } }
 *   gpt: { type: openai, baseUrl: https://api.openai.com/v1, apiKeyEnv: OPENAI_API_KEY, model: gpt-4.1 }
 * chains:
 *   default: [ollama, claude, gpt]
 *   reviewer: [claude, gpt]
 * ```
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { z } from 'zod';
import { MuseError } from '@muse/contracts';

import { AnthropicProvider } from './anthropic-provider.js';
import { DEFAULT_GUARD, FailoverChain, GuardedProvider, ProviderRouter, type FailoverObserver } from './failover.js';
import { LocalDeterministicProvider } from './local-provider.js';
import { OpenAiCompatibleProvider } from './openai-provider.js';
import type { ModelProvider } from './provider.js';

const require = createRequire(import.meta.url);
/** The `yaml` package, loaded the first time YAML is read (a YAML providers file): a service that reads none does without its 72 modules, ~0.8 MB of heap. */
const yaml = (): typeof import('yaml') => require('yaml') as typeof import('yaml');

const positiveMs = z.number().int().min(1);
const ProviderEntrySchema = z.strictObject({
  /** `openai` = any OpenAI-compatible server (OpenAI, Ollama, LocalAI, vLLM); `anthropic`; `deterministic` = the local seeded one. */
  type: z.enum(['openai', 'anthropic', 'deterministic']),
  /** Required for `openai`; for `anthropic` defaults to the SDK's (api.anthropic.com). */
  baseUrl: z.string().url().optional(),
  /** Name of the environment variable holding the API key (the key itself never goes in this file). */
  apiKeyEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
  /** Model sent to this provider whatever the step names; unset = the step's model. */
  model: z.string().min(1).optional(),
  /** Whole-call timeout, streaming included, in ms. @default 120_000 */
  timeoutMs: positiveMs.default(120_000),
  /** Output cap when the step names none, in tokens. @default 4096 */
  maxOutputTokens: z.number().int().min(1).default(4096),
  /** Artificial latency of a `deterministic` provider, in ms. @default MUSE_LOCAL_PROVIDER_DELAY_MS */
  delayMs: z.number().int().min(0).optional(),
  /** Attempts per call at this provider before failing over, first included. @default 2 */
  maxAttempts: z.number().int().min(1).max(10).default(DEFAULT_GUARD.maxAttempts),
  /** First retry delay (doubling) when the provider sent no Retry-After, in ms. @default 200 */
  retryBaseMs: z.number().int().min(0).default(DEFAULT_GUARD.retryBaseMs),
  /** Longest Retry-After waited for here; longer = fail over at once, in ms. @default 10_000 */
  maxRetryWaitMs: z.number().int().min(0).default(DEFAULT_GUARD.maxRetryWaitMs),
  /** What this provider charges, in USD per million tokens; feeds `muse_provider_cost_usd_total`. Unset = no cost counted. */
  price: z.strictObject({ inputPerMTok: z.number().min(0), outputPerMTok: z.number().min(0) }).optional(),
  breaker: z
    .strictObject({
      /** Consecutive retryable failures that open the breaker. @default 5 */
      consecutiveFailures: z.number().int().min(1).default(DEFAULT_GUARD.consecutiveFailures),
      /** How long the open breaker skips the provider before one trial call, in ms. @default 30_000 */
      openMs: positiveMs.default(DEFAULT_GUARD.openMs),
    })
    .prefault({}),
});

export const ProvidersConfigSchema = z
  .strictObject({
    providers: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), ProviderEntrySchema),
    /** Role → provider names in failover order; `default` serves roles without a chain of their own. */
    chains: z.record(z.string().min(1), z.array(z.string()).min(1)),
  })
  .superRefine((c, ctx) => {
    if (!c.chains['default']) ctx.addIssue({ code: 'custom', path: ['chains', 'default'], message: 'a default chain is required' });
    for (const [role, names] of Object.entries(c.chains)) {
      names.forEach((n, i) => {
        if (!c.providers[n]) ctx.addIssue({ code: 'custom', path: ['chains', role, i], message: `unknown provider "${n}"` });
      });
    }
    for (const [name, p] of Object.entries(c.providers)) {
      if (p.type === 'openai' && !p.baseUrl) ctx.addIssue({ code: 'custom', path: ['providers', name, 'baseUrl'], message: 'an openai provider needs a baseUrl' });
    }
  });
export type ProvidersConfig = z.infer<typeof ProvidersConfigSchema>;

/** The configuration used when `MUSE_PROVIDERS_CONFIG` is unset. */
export const DEFAULT_PROVIDERS_CONFIG: ProvidersConfig = ProvidersConfigSchema.parse({
  providers: { local: { type: 'deterministic' } },
  chains: { default: ['local'] },
});

/** Reads and checks `MUSE_PROVIDERS_CONFIG` (file path or inline JSON); unset = the default. */
export function loadProvidersConfig(source: string | undefined): ProvidersConfig {
  if (source === undefined || source.trim() === '') return DEFAULT_PROVIDERS_CONFIG;
  let raw: unknown;
  const inline = source.trimStart().startsWith('{');
  try {
    raw = inline ? JSON.parse(source) : yaml().parse(readFileSync(source, 'utf8'));
  } catch (err) {
    throw new MuseError('MUSE_ERR_PROVIDERS_CONFIG_INVALID', `MUSE_PROVIDERS_CONFIG ${inline ? '(inline JSON)' : `"${source}"`} could not be read: ${(err as Error).message}`, { cause: err });
  }
  const parsed = ProvidersConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new MuseError('MUSE_ERR_PROVIDERS_CONFIG_INVALID', `MUSE_PROVIDERS_CONFIG is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { details: { issues } });
  }
  return parsed.data;
}

export interface BuildOptions {
  /** Where `apiKeyEnv` names are looked up. */
  env: Record<string, string | undefined>;
  /** Delay of `deterministic` providers that set none, in ms. */
  localDelayMs?: number;
  observer?: FailoverObserver;
}

/** One guarded provider per configured name (breakers shared across chains), one chain per role. */
export function buildProviderRouter(config: ProvidersConfig, opts: BuildOptions): ProviderRouter {
  const guarded = new Map<string, GuardedProvider>();
  const guard = (name: string): GuardedProvider => {
    let g = guarded.get(name);
    if (!g) {
      const p = config.providers[name]!;
      g = new GuardedProvider(instantiate(name, p, opts), {
        maxAttempts: p.maxAttempts,
        retryBaseMs: p.retryBaseMs,
        maxRetryWaitMs: p.maxRetryWaitMs,
        consecutiveFailures: p.breaker.consecutiveFailures,
        openMs: p.breaker.openMs,
        ...(p.model !== undefined ? { model: p.model } : {}),
      }, opts.observer);
      guarded.set(name, g);
    }
    return g;
  };
  const chains = new Map<string, ModelProvider>();
  for (const [role, names] of Object.entries(config.chains)) chains.set(role, new FailoverChain(role, names.map(guard), opts.observer));
  return new ProviderRouter(chains);
}

function instantiate(name: string, p: ProvidersConfig['providers'][string], opts: BuildOptions): ModelProvider {
  let apiKey: string | undefined;
  if (p.apiKeyEnv !== undefined) {
    apiKey = opts.env[p.apiKeyEnv];
    if (!apiKey) throw new MuseError('MUSE_ERR_PROVIDERS_CONFIG_INVALID', `provider "${name}" reads its API key from ${p.apiKeyEnv}, which is not set`);
  }
  switch (p.type) {
    case 'deterministic':
      return new LocalDeterministicProvider(p.delayMs ?? opts.localDelayMs ?? 0, name);
    case 'openai':
      return new OpenAiCompatibleProvider({ name, baseUrl: p.baseUrl!, timeoutMs: p.timeoutMs, defaultMaxOutputTokens: p.maxOutputTokens, ...(apiKey !== undefined ? { apiKey } : {}) });
    case 'anthropic':
      return new AnthropicProvider({ name, timeoutMs: p.timeoutMs, defaultMaxOutputTokens: p.maxOutputTokens, ...(p.baseUrl !== undefined ? { baseUrl: p.baseUrl } : {}), ...(apiKey !== undefined ? { apiKey } : {}) });
  }
}
