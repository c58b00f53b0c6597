export { parseTemplate, renderTemplate, resolvePath, TemplateError } from './template.js';
export type { TemplateRef, TemplateContext, ParseResult } from './template.js';
export { validateWorkflow, checkGraph, findCycle, ancestorsOf, topologicalOrder } from './dag.js';
export type { ValidationResult } from './dag.js';
export { applyEvent, foldEvents, FoldError } from './state.js';
export type { RunState, StepState } from './state.js';
export { RunTransition, isFinished, buildStepJob, runOutput, templateContext } from './transition.js';
export type { EngineDefaults } from './transition.js';
export { toRunView } from './view.js';
