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
  SECRET_NAME_PATTERN,
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
  BudgetSchema,
  ShellOutputSchema,
  stepRole,
  stepNeeds,
  needsAny,
  BackoffSchema,
  RetryPolicySchema,
  NeedsSchema,
  CompensationSchema,
  COMPENSATION_SUFFIX,
  compensationId,
  compensatedStep,
  APPROVAL_ROLE,
  WORKFLOW_ROLE,
  KeyedConcurrencySchema,
  SubWorkflowRefSchema,
  TRIGGER_SUBJECT_PATTERN,
  LOCK_PATTERN,
  CAPABILITY_PATTERN,
  MAX_CAPABILITIES,
  queueRole,
  queueRolesFor,
  parseQueueRole,
  keyedConcurrency,
} from './workflow.schema.js';
export type { KeyedConcurrency } from './workflow.schema.js';
export type { CompensationDefinition, Budget } from './workflow.schema.js';
export type { Backoff, RetryPolicy, Needs } from './workflow.schema.js';
export {
  AGENT_TOOLS,
  DEFAULT_MAX_TOOL_CALLS,
  HttpRequestSchema,
  HttpOutputSchema,
  ToolCallRecordSchema,
} from './workflow.schema.js';
export type { AgentToolName, HttpRequestDefinition, HttpOutput, ToolCallRecord } from './workflow.schema.js';
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
  AttemptSpendSchema,
  outputSpend,
  RunEventSchema,
  RunCreatedEventSchema,
  RunStartedEventSchema,
  StepQueuedEventSchema,
  StepStartedEventSchema,
  StepCompletedEventSchema,
  StepFailedEventSchema,
  StepSkippedEventSchema,
  StepExpandedEventSchema,
  RunCompensatingEventSchema,
  StepWaitingEventSchema,
  RunPausedEventSchema,
  RunResumedEventSchema,
  RunRetriedEventSchema,
  StepReusedEventSchema,
  ReplayOfSchema,
  BudgetWaitingEventSchema,
  BudgetRaisedEventSchema,
  RunCompletedEventSchema,
  RunFailedEventSchema,
  RunCancelledEventSchema,
  RunParentSchema,
  ConcurrencyWaitingEventSchema,
  ConcurrencyAdmittedEventSchema,
  LeaseWaitingEventSchema,
  LeaseGrantedEventSchema,
} from './events.schema.js';
export type { RunParent, ReplayOf } from './events.schema.js';
export type { ArtifactRef, AttemptSpend, RunEvent, RunEventType, RunEventOf, NewRunEvent } from './events.schema.js';
export {
  RunSubmitCommandSchema,
  RunCancelCommandSchema,
  RunTimeoutCommandSchema,
  ApprovalDecisionCommandSchema,
  RunControlCommandSchema,
  RunBudgetCommandSchema,
  ConcurrencyGrantCommandSchema,
  LeaseGrantCommandSchema,
  StepReportSchema,
  CommandSchema,
  ArtifactCommitRequestSchema,
  ArtifactUploadSchema,
  ArtifactCommitResponseSchema,
} from './commands.schema.js';
export type {
  RunSubmitCommand,
  RunCancelCommand,
  RunTimeoutCommand,
  ApprovalDecisionCommand,
  RunControlCommand,
  RunBudgetCommand,
  ConcurrencyGrantCommand,
  LeaseGrantCommand,
  StepReport,
  Command,
  ArtifactCommitRequest,
  ArtifactUpload,
  ArtifactCommitResponse,
} from './commands.schema.js';
export { StepJobSchema, stepJobId, stepKey, childRunId, deriveSeed, promptTemplateHash } from './jobs.schema.js';
export type { StepJob } from './jobs.schema.js';
export { AgentHeartbeatSchema, agentLoad, toAgentView } from './agent.schema.js';
export { AGENT_QUEUE_ID_PATTERN, AGENT_QUEUE_SEPARATOR, DISPATCH_STRATEGIES, DispatchStrategySchema, agentQueueRole, parseDispatchTable, strategyFor } from './dispatch.schema.js';
export type { DispatchStrategy, DispatchTable } from './dispatch.schema.js';
export { REMOTE_AGENT_PATH, REMOTE_AGENT_ID_PATTERN, RemoteAgentClientMessageSchema, RemoteAgentServerMessageSchema, RemoteAssignmentSchema } from './remote-agent.schema.js';
export type { RemoteAgentClientMessage, RemoteAgentServerMessage, RemoteAssignment } from './remote-agent.schema.js';
export {
  PoolDecisionSchema,
  PoolListSchema,
  PoolPolicyViewSchema,
  PoolViewSchema,
  POOL_POLICY_KINDS,
  SCALER_DRIVERS,
  SCALING_DIRECTIONS,
  ScalerDecisionEventSchema,
} from './pools.schema.js';
export type { PoolDecision, PoolList, PoolView, ScalerDecisionEvent } from './pools.schema.js';
export type { AgentHeartbeat } from './agent.schema.js';
export {
  RunInputSchema,
  SubmitRunBodySchema,
  CancelRunBodySchema,
  RunAcceptedSchema,
  ApprovalBodySchema,
  ApprovalAcceptedSchema,
  RunControlBodySchema,
  RerunBodySchema,
  ReplayBodySchema,
  BudgetRaiseBodySchema,
  RunSpendSchema,
  DeadLetterSchema,
  DeadLetterListSchema,
  RunPrioritySchema,
  DEFAULT_RUN_PRIORITY,
  WorkflowRegisteredSchema,
  WorkflowVersionViewSchema,
  WorkflowViewSchema,
  WorkflowListSchema,
  StepViewSchema,
  RunViewSchema,
  RunListQuerySchema,
  RunListSchema,
  CreateScheduleBodySchema,
  ScheduleSchema,
  ScheduleListSchema,
  ScheduleDeletedSchema,
  LeaseListSchema,
  ArtifactMetaSchema,
  ArtifactListSchema,
  ArtifactLineageSchema,
  ArtifactLineageNodeSchema,
  AgentViewSchema,
  AgentListSchema,
  StreamClientMessageSchema,
  RunEventListSchema,
  StreamServerMessageSchema,
  StepProgressSchema,
} from './api.schema.js';
export type { ArtifactLineage } from './api.schema.js';
export type { DeadLetter, RunSpend } from './api.schema.js';
export type { CreateScheduleBody, Schedule, LeaseList } from './api.schema.js';
export type { SubmitRunBody, StepView, RunView, ArtifactMeta, StreamClientMessage, StreamServerMessage, StepProgress } from './api.schema.js';
export {
  CommonConfigShape,
  GatewayConfigSchema,
  CoordinatorConfigSchema,
  AgentWorkerConfigSchema,
  ArtifactStoreConfigSchema,
  ObservabilityConfigSchema,
  ScalerConfigSchema,
  ModelPricesSchema,
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
  ModelPrices,
} from './config.schema.js';
export {
  API_KEY_PATTERN,
  API_KEY_ID_PATTERN,
  SCOPES,
  ScopeSchema,
  PROJECT_NAME_PATTERN,
  ProjectNameSchema,
  ALL_PROJECTS,
  CreateProjectBodySchema,
  ProjectViewSchema,
  ProjectListSchema,
  CreateApiKeyBodySchema,
  StoredApiKeySchema,
  ApiKeyViewSchema,
  ApiKeyListSchema,
  ApiKeyCreatedSchema,
  AUDIT_OUTCOMES,
  AuditRecordSchema,
  AuditListSchema,
  AuditQuerySchema,
} from './auth.schema.js';
export type { Scope, CreateProjectBody, ProjectView, CreateApiKeyBody, StoredApiKey, ApiKeyView, AuditRecord } from './auth.schema.js';
export {
  PROFILING_MAX_SECONDS,
  StartProfilingBodySchema,
  ProfilingControlSchema,
  ProfilingReplySchema,
  ProfilingSessionSchema,
  ServiceProfileSchema,
  ProfileReportSchema,
} from './profiling.schema.js';
export type { StartProfilingBody, ProfilingControl, ProfilingReply, ProfilingSession, ServiceProfile, ProfileReport } from './profiling.schema.js';
export { randomIdBytes } from './random.js';
