/**
 * Every stream, subject, queue and key name Muse uses, in one place.
 *
 * A namespace (`MUSE_NAMESPACE`, default `muse`) prefixes all of them so that
 * several clusters, or several test runs, can share one NATS and one Redis
 * without seeing each other's data. The `v1` in every name is the wire
 * version: a breaking change to a payload gets a new name, never a new shape
 * under an old one.
 */
export const NAMES_VERSION = 'v1' as const;

/** Letters, digits and dashes; it becomes part of NATS subjects, stream names and Redis keys. */
export const NAMESPACE_PATTERN = /^[a-z][a-z0-9-]{0,39}$/;

export const COMMAND_KINDS = {
  runSubmit: 'run-submit',
  runCancel: 'run-cancel',
  stepReport: 'step-report',
} as const;
export type CommandKind = (typeof COMMAND_KINDS)[keyof typeof COMMAND_KINDS];

export interface MuseNames {
  readonly namespace: string;
  /** JetStream stream holding every run's event log, one subject per run. */
  readonly runsStream: string;
  readonly runSubject: (runId: string) => string;
  readonly runSubjectWildcard: string;
  /** JetStream stream of commands: submissions, cancellations, worker reports. */
  readonly commandStream: string;
  readonly commandSubject: (kind: CommandKind) => string;
  readonly commandSubjectWildcard: string;
  /** Durable consumer shared by every coordinator replica. */
  readonly coordinatorConsumer: string;
  /** NATS request subjects served by the artifact store. */
  readonly artifactCommitSubject: string;
  /** Core NATS subject where agent workers publish heartbeats. */
  readonly agentHeartbeatSubject: string;
  /** BullMQ queue of one agent role (BullMQ forbids `:` in queue names). */
  readonly stepQueue: (role: string) => string;
  /** BullMQ's Redis key prefix. */
  readonly bullPrefix: string;
  readonly runLockKey: (runId: string) => string;
  readonly runFenceKey: (runId: string) => string;
  readonly artifactFenceKey: (runId: string) => string;
  readonly workflowsKey: string;
  readonly workflowKey: (project: string, name: string) => string;
  readonly runKey: (runId: string) => string;
  readonly runIndexKey: (project: string) => string;
  readonly agentsKey: string;
  readonly artifactKey: (artifactId: string) => string;
  readonly runArtifactsKey: (runId: string) => string;
  readonly artifactVersionKey: (runId: string, name: string) => string;
  /** Which artifact a (run, step, attempt, name) commit made, so a retried commit returns it. */
  readonly artifactCommitKey: (runId: string, stepId: string, attempt: number, name: string) => string;
  /** Maps an Idempotency-Key to the run it created: `{runId, bodyDigest}` as JSON. */
  readonly idempotencyKey: (project: string, key: string) => string;
}

export function museNames(namespace: string): MuseNames {
  if (!NAMESPACE_PATTERN.test(namespace)) {
    throw new Error(`MUSE_NAMESPACE must match ${NAMESPACE_PATTERN}, got "${namespace}"`);
  }
  const ns = namespace;
  const NS = namespace.toUpperCase().replace(/-/g, '_');
  const v = NAMES_VERSION;
  return {
    namespace: ns,
    runsStream: `${NS}_RUNS_${v.toUpperCase()}`,
    runSubject: (runId) => `${ns}.${v}.run.${runId}`,
    runSubjectWildcard: `${ns}.${v}.run.*`,
    commandStream: `${NS}_CMD_${v.toUpperCase()}`,
    commandSubject: (kind) => `${ns}.${v}.cmd.${kind}`,
    commandSubjectWildcard: `${ns}.${v}.cmd.>`,
    coordinatorConsumer: `${NS}_COORDINATOR_${v.toUpperCase()}`,
    artifactCommitSubject: `${ns}.${v}.artifact.commit`,
    agentHeartbeatSubject: `${ns}.${v}.agent.heartbeat`,
    stepQueue: (role) => `${ns}.${v}.agent.${role}`,
    bullPrefix: `${ns}:bull`,
    runLockKey: (runId) => `${ns}:lock:run:${runId}`,
    runFenceKey: (runId) => `${ns}:fence:run:${runId}`,
    artifactFenceKey: (runId) => `${ns}:artifact-fence:${runId}`,
    workflowsKey: `${ns}:workflows`,
    workflowKey: (project, name) => `${ns}:workflow:${project}:${name}`,
    runKey: (runId) => `${ns}:run:${runId}`,
    runIndexKey: (project) => `${ns}:runs:${project}`,
    agentsKey: `${ns}:agents`,
    artifactKey: (artifactId) => `${ns}:artifact:${artifactId}`,
    runArtifactsKey: (runId) => `${ns}:run-artifacts:${runId}`,
    artifactVersionKey: (runId, name) => `${ns}:artifact-version:${runId}:${name}`,
    artifactCommitKey: (runId, stepId, attempt, name) => `${ns}:artifact-commit:${runId}:${stepId}:${attempt}:${name}`,
    idempotencyKey: (project, key) => `${ns}:idem:${project}:${key}`,
  };
}
