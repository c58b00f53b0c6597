/**
 * Artifact metadata in Redis: the fenced, idempotent commit (one Lua script) and the reads the artifact store's API
 * needs. The artifact store uses all of it; the coordinator commits a step's small outputs with the same script
 * (apps/coordinator/src/inline-artifact-commits.ts), as the store publishes in its commit policy.
 */
export * from './artifact.repository.js';
export { ARTIFACT_COMMIT_LUA, PUT_REDIS_BLOB_FN, evalArtifactCommit } from './artifact-commit.script.js';
export * from './commit-policy.js';
export { artifactNameProblem, inlineBlobBytes } from './inline-content.js';
export { ArtifactCommitCounters, acceptedOutcome } from './commit-metrics.js';
