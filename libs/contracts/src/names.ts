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
  runTimeout: 'run-timeout',
  approvalDecision: 'approval-decision',
  runControl: 'run-control',
  stepReport: 'step-report',
  concurrencyGrant: 'concurrency-grant',
  leaseGrant: 'lease-grant',
  runBudget: 'run-budget',
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
  /** Core NATS subject every service listens to for profiling session start/stop (`ProfilingControl`). */
  readonly profilingControlSubject: string;
  /** Core NATS subject where services answer profiling sessions (`ProfilingReply`); the gateway listens. */
  readonly profilingReportSubject: string;
  /** Core NATS subject where agent workers publish a run's live step progress (model token deltas); not persisted. */
  readonly stepProgressSubject: (runId: string) => string;
  readonly stepProgressSubjectWildcard: string;
  /** BullMQ queue of one agent role (BullMQ forbids `:` in queue names). */
  readonly stepQueue: (role: string) => string;
  /** Which queue a targeted step job went to (`round-robin`, `least-loaded`, `affinity`), by job id; set once, so a re-enqueue after a crash goes to the same queue. */
  readonly dispatchKey: (jobId: string) => string;
  /** Redis set of the agents' own queue roles (`<role>@<agentId>`) of one role that were ever targeted: where idle agents look for work to steal. */
  readonly dispatchQueuesKey: (role: string) => string;
  /** Redis counter of a role's `round-robin` turns. */
  readonly dispatchCursorKey: (role: string) => string;
  /** Redis hash of a project's dead letters (steps that exhausted their retries), field `<run>.<step>`. */
  readonly deadLettersKey: (project: string) => string;
  /** Core NATS subject on which the coordinator tells workers a run ended: they stop its running steps. */
  readonly runStopSubject: (runId: string) => string;
  readonly runStopSubjectWildcard: string;
  /** BullMQ queue of the coordinators' durable timers (step watches, run deadlines). */
  readonly timerQueue: string;
  /** ZSET step attempt (its job id) scored by when its coordinator watch is next due (ms); see libs/queues/src/step-watch-list.ts. */
  readonly stepWatchesKey: string;
  /** HASH step attempt (its job id) -> its watch's data (JSON). */
  readonly stepWatchDataKey: string;
  /** BullMQ's Redis key prefix. */
  readonly bullPrefix: string;
  readonly runLockKey: (runId: string) => string;
  readonly runFenceKey: (runId: string) => string;
  readonly artifactFenceKey: (runId: string) => string;
  readonly workflowsKey: string;
  readonly workflowKey: (project: string, name: string) => string;
  /** What every `workflowKey` starts with. */
  readonly workflowKeyPrefix: string;
  readonly runKey: (runId: string) => string;
  readonly runIndexKey: (project: string) => string;
  readonly agentsKey: string;
  readonly artifactKey: (artifactId: string) => string;
  readonly runArtifactsKey: (runId: string) => string;
  /** Hash of a run's budget: limits, spent and reserved tokens and cost (agent workers reserve and settle with Lua). */
  readonly runBudgetKey: (runId: string) => string;
  readonly artifactVersionKey: (runId: string, name: string) => string;
  /** Which artifact a (run, step, attempt, name) commit made, so a retried commit returns it. */
  readonly artifactCommitKey: (runId: string, stepId: string, attempt: number, name: string) => string;
  /** HASH digest -> how many artifacts reference the blob (GC frees blobs at 0). */
  readonly artifactBlobRefsKey: string;
  /** ZSET digest scored by the last upload time (ms): blobs uploaded but maybe not committed yet, which GC keeps for a grace period. */
  readonly artifactBlobPendingKey: string;
  /** ZSET of digests GC is deleting right now, scored by when it claimed them (ms): an upload or commit of one must not rely on the stored copy. */
  readonly artifactBlobDeletingKey: string;
  /** HASH digest -> bytes: blobs small enough to be kept in Redis beside their metadata (MUSE_ARTIFACT_REDIS_BLOB_BYTES). */
  readonly artifactRedisBlobsKey: string;
  /** ZSET digest scored by when it was stored (ms): the blobs of `artifactRedisBlobsKey`, listed for GC. */
  readonly artifactRedisBlobTimesKey: string;
  /** JSON: how the artifact store commits (its Redis blob tier's limit, its default retention), for the coordinator's own commits of small outputs. */
  readonly artifactCommitPolicyKey: string;
  /** ZSET artifact id scored by its expiry time (ms), for retention. */
  readonly artifactExpiryKey: string;
  /** JetStream Object Store bucket of the `nats` artifact backend (its stream is `OBJ_<bucket>`). */
  readonly artifactBucket: string;
  /** Maps an Idempotency-Key to the run it created: `{runId, bodyDigest}` as JSON. */
  readonly idempotencyKey: (project: string, key: string) => string;
  /** JetStream stream of the scaler's decisions (`scaler.decision` events). */
  readonly scalerStream: string;
  readonly scalerDecisionSubject: string;
  /** Redis lease naming the one scaler replica that acts (value: replica id; PX = lease TTL). */
  readonly scalerLeaderKey: string;
  /** Redis counter bumped on every new leadership: the term stamped on each decision. */
  readonly scalerTermKey: string;
  /** Redis string: the leader's `PoolList` JSON, read by `GET /v1/pools` on the gateway and every scaler replica. */
  readonly scalerPoolsKey: string;
  /** Redis hash: agent id -> the local driver's record of a worker process it started (`{role, pid, host, startedAt}`). */
  readonly scalerWorkersKey: string;
  /** JetStream stream of audit records: every mutation and every denied request. */
  readonly auditStream: string;
  readonly auditSubject: (project: string) => string;
  readonly auditSubjectWildcard: string;
  /** Redis hash: project name -> ProjectView JSON. */
  readonly projectsKey: string;
  /** Redis hash: API key id -> StoredApiKey JSON. */
  readonly apiKeysKey: string;
  /** Prefix of the rate limiter's Redis keys. */
  readonly rateLimitPrefix: string;
  /** Redis set of the holders (`<run>` or `<run>/<step>`) of one keyed concurrency limit, and the sorted set of those waiting (score = arrival). */
  readonly concurrencyHoldersKey: (project: string, key: string) => string;
  readonly concurrencyWaitersKey: (project: string, key: string) => string;
  /** Core NATS subject whose messages start runs of the workflows that declare `on: {subject}`. */
  readonly triggerSubject: (project: string, subject: string) => string;
  readonly triggerSubjectWildcard: string;
  /** BullMQ queue of the cron schedules (`POST /v1/schedules`); Redis hash of one project's schedules (id -> JSON). */
  readonly scheduleQueue: string;
  readonly schedulesKey: (project: string) => string;
  /** Prefix of the Redis sets of workflows a trigger subject starts (`<prefix>:<project>:<subject>`). */
  readonly triggersKey: string;
  /**
   * Leases of one project: a hash of holders (`<run>/<step>` -> JSON {locks, since, expiresAt, token}), a sorted set
   * of waiters (score = arrival) with a hash of what each waits for, and the fencing-token counter.
   */
  readonly leaseHoldersKey: (project: string) => string;
  readonly leaseWaitersKey: (project: string) => string;
  readonly leaseWaitLocksKey: (project: string) => string;
  readonly leaseTokenKey: string;
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
    profilingControlSubject: `${ns}.${v}.profiling.control`,
    profilingReportSubject: `${ns}.${v}.profiling.report`,
    stepProgressSubject: (runId) => `${ns}.${v}.progress.${runId}`,
    stepProgressSubjectWildcard: `${ns}.${v}.progress.*`,
    stepQueue: (role) => `${ns}.${v}.agent.${role}`,
    timerQueue: `${ns}.${v}.coordinator.timers`,
    stepWatchesKey: `${ns}:step-watches`,
    stepWatchDataKey: `${ns}:step-watch-data`,
    dispatchKey: (jobId) => `${ns}:dispatch:${jobId}`,
    dispatchQueuesKey: (role) => `${ns}:dispatch-queues:${role}`,
    dispatchCursorKey: (role) => `${ns}:dispatch-rr:${role}`,
    runStopSubject: (runId) => `${ns}.${v}.run-stop.${runId}`,
    deadLettersKey: (project) => `${ns}:dead-letters:${project}`,
    runStopSubjectWildcard: `${ns}.${v}.run-stop.*`,
    bullPrefix: `${ns}:bull`,
    runLockKey: (runId) => `${ns}:lock:run:${runId}`,
    runFenceKey: (runId) => `${ns}:fence:run:${runId}`,
    artifactFenceKey: (runId) => `${ns}:artifact-fence:${runId}`,
    workflowsKey: `${ns}:workflows`,
    workflowKey: (project, name) => `${ns}:workflow:${project}:${name}`,
    workflowKeyPrefix: `${ns}:workflow:`,
    runKey: (runId) => `${ns}:run:${runId}`,
    runIndexKey: (project) => `${ns}:runs:${project}`,
    agentsKey: `${ns}:agents`,
    artifactKey: (artifactId) => `${ns}:artifact:${artifactId}`,
    runArtifactsKey: (runId) => `${ns}:run-artifacts:${runId}`,
    runBudgetKey: (runId) => `${ns}:run-budget:${runId}`,
    artifactVersionKey: (runId, name) => `${ns}:artifact-version:${runId}:${name}`,
    artifactCommitKey: (runId, stepId, attempt, name) => `${ns}:artifact-commit:${runId}:${stepId}:${attempt}:${name}`,
    artifactBlobRefsKey: `${ns}:artifact-blob-refs`,
    artifactBlobPendingKey: `${ns}:artifact-blob-pending`,
    artifactBlobDeletingKey: `${ns}:artifact-blob-deleting`,
    artifactRedisBlobsKey: `${ns}:artifact-redis-blobs`,
    artifactRedisBlobTimesKey: `${ns}:artifact-redis-blob-times`,
    artifactCommitPolicyKey: `${ns}:artifact-commit-policy`,
    artifactExpiryKey: `${ns}:artifact-expiry`,
    artifactBucket: `${ns}-artifacts`,
    idempotencyKey: (project, key) => `${ns}:idem:${project}:${key}`,
    scalerStream: `${NS}_SCALER_${v.toUpperCase()}`,
    scalerDecisionSubject: `${ns}.${v}.scaler.decision`,
    scalerLeaderKey: `${ns}:scaler:leader`,
    scalerTermKey: `${ns}:scaler:term`,
    scalerPoolsKey: `${ns}:scaler:pools`,
    scalerWorkersKey: `${ns}:scaler:workers`,
    auditStream: `${NS}_AUDIT_${v.toUpperCase()}`,
    // `_` stands for "no project" (a request refused before it named one).
    auditSubject: (project) => `${ns}.${v}.audit.${project}`,
    auditSubjectWildcard: `${ns}.${v}.audit.*`,
    projectsKey: `${ns}:projects`,
    apiKeysKey: `${ns}:api-keys`,
    rateLimitPrefix: `${ns}:ratelimit`,
    concurrencyHoldersKey: (project, key) => `${ns}:conc:${project}:${key}:holders`,
    concurrencyWaitersKey: (project, key) => `${ns}:conc:${project}:${key}:waiters`,
    triggerSubject: (project, subject) => `${ns}.trigger.${project}.${subject}`,
    triggerSubjectWildcard: `${ns}.trigger.>`,
    scheduleQueue: `${ns}.${v}.schedules`,
    schedulesKey: (project) => `${ns}:schedules:${project}`,
    triggersKey: `${ns}:triggers`,
    leaseHoldersKey: (project) => `${ns}:leases:${project}:holders`,
    leaseWaitersKey: (project) => `${ns}:leases:${project}:waiters`,
    leaseWaitLocksKey: (project) => `${ns}:leases:${project}:wait-locks`,
    leaseTokenKey: `${ns}:lease-token`,
  };
}
