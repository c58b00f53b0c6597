export { NAMES_VERSION, NAMESPACE_PATTERN, COMMAND_KINDS, museNames } from './names.js';
export type { CommandKind, MuseNames } from './names.js';
export {
  ERROR_CATALOGUE,
  MUSE_ERROR_CODES,
  ErrorBodySchema,
  ErrorEnvelopeSchema,
  MuseError,
  isMuseError,
  toErrorBody,
  zodIssues,
} from './errors.js';
export type { ErrorBody, ErrorEnvelope, MuseErrorCode, ValidationIssue } from './errors.js';
export {
  WORKFLOW_NAME_PATTERN,
  STEP_ID_PATTERN,
  ROLE_PATTERN,
  DEFAULT_ROLES,
  DEFAULT_TOOL_ROLE,
  TOOLS,
  StepIdSchema,
  RoleSchema,
  StepSchema,
  WorkflowDefinitionSchema,
  WorkflowRefSchema,
  StoredWorkflowSchema,
  AgentOutputSchema,
  ShellOutputSchema,
  stepRole,
} from './workflow.schema.js';
export type { ToolName, StepDefinition, WorkflowDefinition, WorkflowRef, StoredWorkflow, AgentOutput, ShellOutput } from './workflow.schema.js';
export {
  RUN_STATUS,
  RUN_STATUSES,
  TERMINAL_RUN_STATUSES,
  isTerminalRunStatus,
  STEP_STATUS,
  STEP_STATUSES,
  TERMINAL_STEP_STATUSES,
  isTerminalStepStatus,
} from './status.js';
export type { RunStatus, StepStatus } from './status.js';
export {
  ArtifactRefSchema,
  RunEventSchema,
  RunCreatedEventSchema,
  RunStartedEventSchema,
  StepQueuedEventSchema,
  StepStartedEventSchema,
  StepCompletedEventSchema,
  StepFailedEventSchema,
  RunCompletedEventSchema,
  RunFailedEventSchema,
  RunCancelledEventSchema,
} from './events.schema.js';
export type { ArtifactRef, RunEvent, RunEventType, RunEventOf, NewRunEvent } from './events.schema.js';
export {
  RunSubmitCommandSchema,
  RunCancelCommandSchema,
  StepReportSchema,
  CommandSchema,
  ArtifactCommitRequestSchema,
  ArtifactCommitResponseSchema,
} from './commands.schema.js';
export type {
  RunSubmitCommand,
  RunCancelCommand,
  StepReport,
  Command,
  ArtifactCommitRequest,
  ArtifactCommitResponse,
} from './commands.schema.js';
export { StepJobSchema, stepJobId } from './jobs.schema.js';
export type { StepJob } from './jobs.schema.js';
export { AgentHeartbeatSchema, agentLoad, toAgentView } from './agent.schema.js';
export type { AgentHeartbeat } from './agent.schema.js';
export {
  RunInputSchema,
  SubmitRunBodySchema,
  CancelRunBodySchema,
  RunAcceptedSchema,
  WorkflowRegisteredSchema,
  WorkflowVersionViewSchema,
  WorkflowViewSchema,
  WorkflowListSchema,
  StepViewSchema,
  RunViewSchema,
  RunListQuerySchema,
  RunListSchema,
  ArtifactMetaSchema,
  ArtifactListSchema,
  AgentViewSchema,
  AgentListSchema,
  StreamClientMessageSchema,
  RunEventListSchema,
  StreamServerMessageSchema,
} from './api.schema.js';
export type { SubmitRunBody, StepView, RunView, ArtifactMeta, StreamClientMessage, StreamServerMessage } from './api.schema.js';
export {
  CommonConfigShape,
  GatewayConfigSchema,
  CoordinatorConfigSchema,
  AgentWorkerConfigSchema,
  ArtifactStoreConfigSchema,
  ObservabilityConfigSchema,
  ScalerConfigSchema,
  SERVICE_CONFIG_SCHEMAS,
  SERVICE_NAMES,
  SERVICE_PORT_VARS,
  parseConfig,
} from './config.schema.js';
export type {
  GatewayConfig,
  CoordinatorConfig,
  AgentWorkerConfig,
  ArtifactStoreConfig,
  ObservabilityConfig,
  ScalerConfig,
  ServiceName,
} from './config.schema.js';
