import { fileURLToPath } from 'node:url';

/** The repository root (this file lives at libs/cluster/dist/repo-root.js once built). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
