/**
 * Identity and tenancy on the wire: API keys, scopes, projects and audit
 * records. The gateway stores and checks them; these schemas are the REST
 * bodies and the stored shapes.
 */
import { z } from 'zod';

/**
 * `muse_<key id: 12 hex>_<secret: 43+ base64url>`. The readable prefix and
 * the key id identify the key in logs and listings; only the secret is secret.
 */
export const API_KEY_PATTERN = /^muse_([0-9a-f]{12})_([A-Za-z0-9_-]{43,128})$/;
export const API_KEY_ID_PATTERN = /^[0-9a-f]{12}$/;

/**
 * What a credential may do. `admin` includes `write`, which includes `read`;
 * `agent` is separate (take and finish work) and includes nothing else.
 */
export const SCOPES = ['read', 'write', 'admin', 'agent'] as const;
export const ScopeSchema = z.enum(SCOPES);
export type Scope = z.infer<typeof ScopeSchema>;

/** Project names become part of Redis keys: letters, digits and dashes. */
export const PROJECT_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const ProjectNameSchema = z.string().regex(PROJECT_NAME_PATTERN, 'lowercase letters, digits and dashes, up to 63');
/** A key's project list may be `["*"]`: every project, present and future (the bootstrap key). */
export const ALL_PROJECTS = '*' as const;

export const CreateProjectBodySchema = z.strictObject({ name: ProjectNameSchema, description: z.string().max(1000).optional() });
export type CreateProjectBody = z.infer<typeof CreateProjectBodySchema>;
export const ProjectViewSchema = z.strictObject({ name: z.string(), description: z.string().optional(), createdAt: z.string(), createdBy: z.string() });
export type ProjectView = z.infer<typeof ProjectViewSchema>;
export const ProjectListSchema = z.strictObject({ items: z.array(ProjectViewSchema) });

export const CreateApiKeyBodySchema = z.strictObject({
  name: z.string().min(1).max(200),
  /** Projects the key may use; `["*"]` (every project) only from a key that has it. */
  projects: z.array(z.union([ProjectNameSchema, z.literal(ALL_PROJECTS)])).min(1).max(100),
  scopes: z.array(ScopeSchema).min(1),
  /** ISO 8601 time after which the key no longer works; none = until revoked. */
  expiresAt: z.iso.datetime({ offset: true }).optional(),
});
export type CreateApiKeyBody = z.infer<typeof CreateApiKeyBodySchema>;

/** A stored key: never the secret, only its SHA-256. */
export const StoredApiKeySchema = z.object({
  id: z.string().regex(API_KEY_ID_PATTERN),
  name: z.string(),
  projects: z.array(z.string()).min(1),
  scopes: z.array(ScopeSchema),
  /** Hex SHA-256 of the whole key string. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: z.string(),
  createdBy: z.string(),
  expiresAt: z.string().optional(),
  revokedAt: z.string().optional(),
});
export type StoredApiKey = z.infer<typeof StoredApiKeySchema>;

export const ApiKeyViewSchema = z.strictObject({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  projects: z.array(z.string()),
  scopes: z.array(ScopeSchema),
  createdAt: z.string(),
  createdBy: z.string(),
  expiresAt: z.string().optional(),
  revokedAt: z.string().optional(),
});
export type ApiKeyView = z.infer<typeof ApiKeyViewSchema>;
export const ApiKeyListSchema = z.strictObject({ items: z.array(ApiKeyViewSchema) });
/** The answer to a key's creation: the only time the secret is shown. */
export const ApiKeyCreatedSchema = z.strictObject({ ...ApiKeyViewSchema.shape, key: z.string() });

export const AUDIT_OUTCOMES = ['allowed', 'denied', 'failed'] as const;
export const AuditRecordSchema = z.strictObject({
  time: z.string(),
  /** `key:<id>`, `jwt:<sub>` or `anonymous`. */
  principal: z.string(),
  /** The project the request acted in; absent when it never got that far. */
  project: z.string().optional(),
  /** `METHOD /route/pattern`, `ws.connect` / `ws.subscribe`, or a run's state transition (the event type, e.g. `step.failed`). */
  action: z.string(),
  /** The resource acted on (run id, `<run>/<step>`, key id, project name...), when there is one. */
  target: z.string().optional(),
  outcome: z.enum(AUDIT_OUTCOMES),
  /** The HTTP status of an API request (absent on a state transition). */
  status: z.number().int().optional(),
  code: z.string().optional(),
  requestId: z.string().optional(),
});
export type AuditRecord = z.infer<typeof AuditRecordSchema>;
export const AuditListSchema = z.strictObject({ items: z.array(AuditRecordSchema) });
export const AuditQuerySchema = z.strictObject({
  project: ProjectNameSchema.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
