/**
 * "Who is calling": the one decision every REST route and the WebSocket
 * handshake go through. A credential (API key or JWT) gives a principal, the
 * projects it may use and its scopes; the request then names one project
 * (`Muse-Project`, or the credential's only project, or the default project
 * for a credential spanning several). Everything a route reads or writes is
 * under `caller.project`.
 */
import { ALL_PROJECTS, MuseError, type Scope } from '@muse/contracts';

/** An authenticated credential, before a project is chosen. */
export interface Principal {
  /** `key:<id>` or `jwt:<sub>`: what audit records and rate limits name. */
  principal: string;
  /** The projects it may use; `'*'` = every project (the bootstrap key). */
  projects: readonly string[] | typeof ALL_PROJECTS;
  scopes: readonly Scope[];
}

export interface Caller extends Principal {
  /** The project every workflow, run and event of this request belongs to. */
  project: string;
}

/** The header naming the project a request acts in. */
export const PROJECT_HEADER = 'muse-project';

/**
 * `admin` includes `write`, `write` includes `read`; `agent` stands alone
 * (an agent key takes and finishes work over `/v1/agents/connect`, and
 * nothing else: no REST route and no other WebSocket accepts it).
 */
export function hasScope(scopes: readonly Scope[], need: Scope): boolean {
  if (scopes.includes(need)) return true;
  if (need === 'read') return scopes.includes('write') || scopes.includes('admin');
  if (need === 'write') return scopes.includes('admin');
  return false;
}

export function coversProject(p: Principal, project: string): boolean {
  return p.projects === ALL_PROJECTS || p.projects.includes(project);
}

/**
 * The project of a request: the `Muse-Project` header when present (it must
 * be one of the credential's, else the same 404 as a project that does not
 * exist), else the credential's only project, else the default project when
 * the credential covers it, else 400 asking for the header.
 * `exists` is asked only for all-project credentials (theirs may name anything).
 */
export async function selectProject(
  p: Principal,
  header: string | undefined,
  defaultProject: string,
  exists: (project: string) => Promise<boolean>,
): Promise<string> {
  if (header !== undefined && header !== '') {
    const ok = p.projects === ALL_PROJECTS ? await exists(header) : p.projects.includes(header);
    if (!ok) throw new MuseError('MUSE_ERR_PROJECT_NOT_FOUND', `No project "${header}"`, { details: { project: header } });
    return header;
  }
  if (p.projects !== ALL_PROJECTS && p.projects.length === 1) return p.projects[0]!;
  if (coversProject(p, defaultProject)) return defaultProject;
  throw new MuseError('MUSE_ERR_PROJECT_REQUIRED', 'This credential spans several projects: name one in the Muse-Project header');
}

/** The one 401: the same body for a missing, malformed, wrong, revoked or expired credential. */
export function authRequired(): MuseError {
  return new MuseError('MUSE_ERR_AUTH_REQUIRED', 'A valid credential is required (Authorization: Bearer <API key or JWT>)');
}

/** Where the auth hook leaves the caller on the raw request, for the guard and `@CurrentCaller()`. */
export const CALLER_KEY = Symbol('muse.caller');
