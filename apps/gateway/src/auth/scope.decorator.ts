/**
 * Deny by default: every gateway route declares the scope it needs with
 * `@RequireScope(...)`, or `@Public()`; the guard refuses a route with
 * neither, and a unit test checks that every registered route has one.
 */
import { SetMetadata } from '@nestjs/common';
import type { Scope } from '@muse/contracts';

export const SCOPE_METADATA = 'muse:scope';
export const PUBLIC_METADATA = 'muse:public';

export const RequireScope = (scope: Scope): MethodDecorator & ClassDecorator => SetMetadata(SCOPE_METADATA, scope);
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(PUBLIC_METADATA, true);

/**
 * Paths served without a credential: health and metrics (served by the
 * shared service kit, which knows nothing of scopes; probes and Prometheus
 * scrape them) and the OpenAPI document.
 */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/health/live', '/health/ready', '/metrics', '/docs', '/docs/openapi.json']);

export function isPublicPath(url: string): boolean {
  const q = url.indexOf('?');
  return PUBLIC_PATHS.has(q === -1 ? url : url.slice(0, q));
}
