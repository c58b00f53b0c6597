/** A workflow definition as the gateway accepts it: the engine's checks, as a MuseError on failure. */
import { validateWorkflow } from '@muse/engine';
import { MuseError, type ValidationIssue, type WorkflowDefinition } from '@muse/contracts';

/**
 * Validates a definition (schema, graph, templates). `pathPrefix` places the
 * issues in the request body when the definition is nested (`definition.`).
 */
export function requireValidWorkflow(raw: unknown, pathPrefix = ''): WorkflowDefinition {
  if (raw === undefined) {
    throw new MuseError('MUSE_ERR_WORKFLOW_INVALID', 'The request has no workflow definition', {
      details: { issues: [{ path: pathPrefix.replace(/\.$/, ''), message: 'a workflow definition is required' }] },
    });
  }
  const res = validateWorkflow(raw);
  if (res.ok) return res.definition;
  const issues: ValidationIssue[] = res.issues.map((i) => ({ ...i, path: pathPrefix + i.path }));
  const first = issues[0];
  const where = first?.stepId !== undefined ? ` (step "${first.stepId}"${first.field ? `, field "${first.field}"` : ''})` : '';
  throw new MuseError('MUSE_ERR_WORKFLOW_INVALID', `The workflow definition is invalid: ${first?.message ?? 'unknown issue'}${where}`, {
    details: { issues },
  });
}
