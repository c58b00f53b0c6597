/**
 * Fastify's schema compilers (Ajv for validation, fast-json-stringify for serialization), loaded the first time a
 * route with a JSON schema needs one instead of when the server is built. Muse validates with zod and declares no
 * Fastify route schemas, so a service never loads them: about 1.4 MB of heap and 113 modules fewer per service.
 *
 * Fastify's own defaults are what runs once they load (same factories, same options). One difference a route
 * schema would see: Fastify treats a compiler given this way as custom, so it leaves a `headers` schema's property
 * names as written instead of lower-casing them.
 */
import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

type Factory = (...args: unknown[]) => unknown;

/** Loads `pkg` as Fastify itself would: resolved from the Fastify that Nest's adapter uses, so its versions match. */
function requireFromFastify(pkg: string): unknown {
  const fromAdapter = createRequire(createRequire(import.meta.url).resolve('@nestjs/platform-fastify'));
  return createRequire(fromAdapter.resolve('fastify'))(pkg);
}

function lazyFactory(pkg: string): Factory {
  let factory: Factory | undefined;
  return (...args) => (factory ??= (requireFromFastify(pkg) as () => Factory)())(...args);
}

/** Fastify's `schemaController` option: its default compilers, loaded on first use. */
export function lazySchemaController(): NonNullable<FastifyServerOptions['schemaController']> {
  type Compilers = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;
  return {
    compilersFactory: {
      buildValidator: lazyFactory('@fastify/ajv-compiler') as Compilers['buildValidator'],
      buildSerializer: lazyFactory('@fastify/fast-json-stringify-compiler') as Compilers['buildSerializer'],
    },
  };
}
