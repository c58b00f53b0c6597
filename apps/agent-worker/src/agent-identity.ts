/** Who this worker is: its id and the roles it serves, from the parsed config. */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { RoleSchema } from '@muse/contracts';

/** `MUSE_AGENT_ID`, or `<hostname>-<pid>-<4 random hex>`: unique even for two workers restarted into the same pid. */
export function resolveAgentId(configured: string | undefined, host = hostname(), pid = process.pid): string {
  if (configured !== undefined && configured.trim() !== '') return configured.trim();
  return `${host}-${pid}-${randomBytes(2).toString('hex')}`;
}

/** `MUSE_AGENT_ROLES` as a list; fails fast, naming the variable, on an empty list or a bad role. */
export function parseRoles(value: string): string[] {
  const roles = [...new Set(value.split(',').map((r) => r.trim()).filter((r) => r !== ''))];
  if (roles.length === 0) throw new Error('invalid configuration (MUSE_ERR_CONFIG_INVALID):\n  MUSE_AGENT_ROLES: no role given');
  for (const r of roles) {
    const res = RoleSchema.safeParse(r);
    if (!res.success) {
      throw new Error(`invalid configuration (MUSE_ERR_CONFIG_INVALID):\n  MUSE_AGENT_ROLES: "${r}": ${res.error.issues[0]?.message ?? 'invalid role'}`);
    }
  }
  return roles;
}
