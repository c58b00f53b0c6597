/** Checks a workflow definition beyond its schema: the graph and the templates. */
import { WorkflowDefinitionSchema, keyedConcurrency, needsAny, stepNeeds, zodIssues, type ValidationIssue, type WorkflowDefinition } from '@muse/contracts';
import { parseTemplate, templateStrings } from './template.js';
import { checkExpression } from './condition.js';
import { requestTemplates } from './tool-jobs.js';

export type ValidationResult = { ok: true; definition: WorkflowDefinition } | { ok: false; issues: ValidationIssue[] };

/** Parses and checks a definition; on failure every issue names the step and field at fault. */
export function validateWorkflow(raw: unknown): ValidationResult {
  const parsed = WorkflowDefinitionSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, issues: zodIssues(parsed.error, raw) };
  const issues = checkGraph(parsed.data);
  return issues.length > 0 ? { ok: false, issues } : { ok: true, definition: parsed.data };
}

export function checkGraph(def: WorkflowDefinition): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const index = new Map<string, number>();
  def.steps.forEach((step, i) => {
    if (index.has(step.id)) {
      issues.push({ path: `steps.${i}.id`, stepId: step.id, field: 'id', message: `duplicate step id "${step.id}" (first at steps.${index.get(step.id)})` });
    } else {
      index.set(step.id, i);
    }
  });
  def.steps.forEach((step, i) => {
    const at = needsAny(step) ? `steps.${i}.needs.any` : `steps.${i}.needs`;
    stepNeeds(step).forEach((need, j) => {
      if (!index.has(need)) issues.push({ path: `${at}.${j}`, stepId: step.id, field: 'needs', message: `step "${step.id}" needs unknown step "${need}"` });
      if (need === step.id) issues.push({ path: `${at}.${j}`, stepId: step.id, field: 'needs', message: `step "${step.id}" needs itself` });
    });
  });
  if (issues.length > 0) return issues;

  const cycle = findCycle(def);
  if (cycle) {
    const i = index.get(cycle[0]!)!;
    issues.push({ path: `steps.${i}.needs`, stepId: cycle[0], field: 'needs', message: `cycle: ${cycle.join(' -> ')}` });
    return issues;
  }

  const ancestors = ancestorsOf(def);
  def.steps.forEach((step, i) => {
    if (step.forEach !== undefined) {
      const problem = checkExpression(step.forEach, 'list');
      if (problem) issues.push({ path: `steps.${i}.forEach`, stepId: step.id, field: 'forEach', message: `step "${step.id}" forEach: ${problem}` });
    }
    if (step.when !== undefined) {
      const problem = checkExpression(step.when, 'bool');
      if (problem) issues.push({ path: `steps.${i}.when`, stepId: step.id, field: 'when', message: `step "${step.id}" when: ${problem}` });
    }
    const fields: Array<[string, string | undefined]> = [['prompt', step.prompt], ['command', step.command]];
    for (const [field, text] of fields) {
      if (text === undefined) continue;
      issues.push(...checkTemplate(text, `steps.${i}.${field}`, field, step.id, index, ancestors.get(step.id)!, step.forEach !== undefined));
    }
    const keyed = keyedConcurrency(step);
    if (keyed) {
      const problem = checkExpression(keyed.key, 'key');
      if (problem) issues.push({ path: `steps.${i}.concurrency.key`, stepId: step.id, field: 'concurrency', message: `step "${step.id}" concurrency.key: ${problem}` });
    }
    for (const t of requestTemplates(step.request, `steps.${i}.request`)) {
      issues.push(...checkTemplate(t.text, t.path, 'request', step.id, index, ancestors.get(step.id)!, step.forEach !== undefined));
    }
    for (const t of requestTemplates(step.compensate?.request, `steps.${i}.compensate.request`)) {
      issues.push(...checkTemplate(t.text, t.path, 'compensate', step.id, index, new Set([...ancestors.get(step.id)!, step.id])));
    }
    for (const t of templateStrings(step.input ?? {}, `steps.${i}.input`)) {
      issues.push(...checkTemplate(t.text, t.path, 'input', step.id, index, ancestors.get(step.id)!));
    }
    // A compensation also reads the output of the step it undoes.
    const undo: Array<[string, string | undefined]> = [['prompt', step.compensate?.prompt], ['command', step.compensate?.command]];
    for (const [field, text] of undo) {
      if (text === undefined) continue;
      issues.push(...checkTemplate(text, `steps.${i}.compensate.${field}`, 'compensate', step.id, index, new Set([...ancestors.get(step.id)!, step.id])));
    }
  });
  if (def.concurrency !== undefined) {
    const problem = checkExpression(def.concurrency.key, 'key');
    if (problem) issues.push({ path: 'concurrency.key', field: 'concurrency', message: `concurrency.key: ${problem}` });
  }
  if (def.output !== undefined) {
    issues.push(...checkTemplate(def.output, 'output', 'output', undefined, index, new Set(index.keys())));
  }
  return issues;
}

function checkTemplate(
  text: string,
  path: string,
  field: string,
  stepId: string | undefined,
  index: Map<string, number>,
  visible: Set<string>,
  /** `item` and `index` may be read (a forEach step). */
  perItem = false,
): ValidationIssue[] {
  const where = stepId ? `step "${stepId}" ${field}` : field;
  const parsed = parseTemplate(text);
  if (!parsed.ok) return [{ path, stepId, field, message: `${where}: ${parsed.message}` }];
  const issues: ValidationIssue[] = [];
  for (const ref of parsed.refs) {
    const [root, id, part] = ref.segments;
    if (root === 'input') continue;
    if (perItem && (root === 'item' || root === 'index')) continue;
    if (root !== 'steps') {
      issues.push({ path, stepId, field, message: `${where}: "${ref.path}" must start with input. or steps.${perItem ? ' (or be item or index)' : ''}` });
    } else if (id === undefined || !index.has(id)) {
      issues.push({ path, stepId, field, message: `${where}: "${ref.path}" names unknown step "${id ?? ''}"` });
    } else if (!visible.has(id)) {
      issues.push({ path, stepId, field, message: `${where}: "${ref.path}" reads step "${id}", which is not in its needs (directly or indirectly)` });
    } else if (part !== 'output' && part !== 'status') {
      issues.push({ path, stepId, field, message: `${where}: "${ref.path}" must read steps.${id}.output or steps.${id}.status` });
    }
  }
  return issues;
}

/** A cycle as a list of step ids (first repeated at the end), or null. */
export function findCycle(def: WorkflowDefinition): string[] | null {
  const needs = new Map(def.steps.map((s) => [s.id, stepNeeds(s)]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | null => {
    const st = state.get(id);
    if (st === 'done') return null;
    if (st === 'visiting') return [...stack.slice(stack.indexOf(id)), id];
    state.set(id, 'visiting');
    stack.push(id);
    for (const n of needs.get(id) ?? []) {
      const c = visit(n);
      if (c) return c;
    }
    stack.pop();
    state.set(id, 'done');
    return null;
  };
  for (const s of def.steps) {
    const c = visit(s.id);
    if (c) return c;
  }
  return null;
}

/** For each step, every step it transitively needs. Assumes no cycle. */
export function ancestorsOf(def: WorkflowDefinition): Map<string, Set<string>> {
  const needs = new Map(def.steps.map((s) => [s.id, stepNeeds(s)]));
  const memo = new Map<string, Set<string>>();
  const walk = (id: string): Set<string> => {
    const hit = memo.get(id);
    if (hit) return hit;
    const out = new Set<string>();
    for (const n of needs.get(id) ?? []) {
      out.add(n);
      for (const a of walk(n)) out.add(a);
    }
    memo.set(id, out);
    return out;
  };
  for (const s of def.steps) walk(s.id);
  return memo;
}

/** Step ids in an order where every step comes after all it needs. */
export function topologicalOrder(def: WorkflowDefinition): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const byId = new Map(def.steps.map((s) => [s.id, s]));
  const visit = (id: string): void => {
    if (seen.has(id)) return;
    seen.add(id);
    for (const n of stepNeeds(byId.get(id) ?? {})) visit(n);
    out.push(id);
  };
  for (const s of def.steps) visit(s.id);
  return out;
}
