/** DI tokens of the artifact store's Nest module. */
export const ARTIFACT_REPOSITORY = Symbol('muse.artifact-store.artifact-repository');
export const ARTIFACT_CONTENT = Symbol('muse.artifact-store.artifact-content');
export const ARTIFACT_LINEAGE = Symbol('muse.artifact-store.artifact-lineage');
