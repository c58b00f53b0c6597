/** Which `{{ input.x }}` a workflow's templates read that an input lacks. */
import type { ValidationIssue, WorkflowDefinition } from '@muse/contracts';
import { parseTemplate, resolvePath, templateStrings } from './template.js';
import { requestTemplates } from './tool-jobs.js';

/**
 * Every `{{ input.x }}` the workflow's templates read must be in the input: the engine refuses to render a missing
 * path, so a run without it would fail at its first step. One issue per missing path (the first place reading it).
 */
export function missingInputs(definition: WorkflowDefinition, input: Record<string, unknown>): ValidationIssue[] {
  const missing = new Map<string, ValidationIssue>();
  const visit = (text: string | undefined, where: { stepId?: string; field: string }) => {
    if (text === undefined) return;
    const parsed = parseTemplate(text);
    if (!parsed.ok) return; // registration already refused bad templates
    for (const ref of parsed.refs) {
      if (ref.segments[0] !== 'input' || missing.has(ref.path)) continue;
      if (resolvePath({ input, steps: {} }, ref.segments) === undefined) {
        missing.set(ref.path, {
          path: ref.segments.join('.'),
          ...(where.stepId !== undefined ? { stepId: where.stepId } : {}),
          field: where.field,
          message: `"${ref.path}" is read by ${where.stepId !== undefined ? `step "${where.stepId}" (${where.field})` : where.field} but not given`,
        });
      }
    }
  };
  for (const step of definition.steps) {
    visit(step.prompt, { stepId: step.id, field: 'prompt' });
    visit(step.command, { stepId: step.id, field: 'command' });
    for (const t of requestTemplates(step.request, 'request')) visit(t.text, { stepId: step.id, field: 'request' });
    for (const t of templateStrings(step.input ?? {}, 'input')) visit(t.text, { stepId: step.id, field: 'input' });
  }
  visit(definition.output, { field: 'output' });
  return [...missing.values()];
}
