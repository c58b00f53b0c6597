/**
 * The tool parts of a step job: an http step's request rendered against the
 * run, and the tools an agent step lets its model call.
 */
import type { HttpRequestDefinition, StepDefinition, StepJob } from '@muse/contracts';
import { renderTemplate, templateStrings, type TemplateContext } from './template.js';

/** The request of an http step with its templates (url, header values, body) rendered. */
export function renderHttpRequest(req: HttpRequestDefinition, ctx: TemplateContext): NonNullable<StepJob['request']> {
  const out: NonNullable<StepJob['request']> = { method: req.method, url: renderTemplate(req.url, ctx) };
  if (req.headers !== undefined) out.headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, renderTemplate(v, ctx)]));
  if (req.body !== undefined) out.body = renderTemplate(req.body, ctx);
  return out;
}

/** `tools` and `maxToolCalls` of an agent step, only when set (jobs stay minimal). */
export function agentToolExtras(def: Pick<StepDefinition, 'tools' | 'maxToolCalls'>): Pick<StepJob, 'tools' | 'maxToolCalls'> {
  if (!def.tools?.length) return {};
  return { tools: [...new Set(def.tools)], ...(def.maxToolCalls !== undefined ? { maxToolCalls: def.maxToolCalls } : {}) };
}

/** The template strings of an http request, with their paths under `base` (e.g. `steps.2.request`), for validation. */
export function requestTemplates(req: HttpRequestDefinition | undefined, base: string): Array<{ path: string; text: string }> {
  if (req === undefined) return [];
  return templateStrings({ url: req.url, ...(req.headers !== undefined ? { headers: req.headers } : {}), ...(req.body !== undefined ? { body: req.body } : {}) }, base);
}
