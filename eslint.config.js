// ESLint flat config for the whole repo: `npm run lint` (= `eslint .`).
//
// Two jobs: typescript-eslint's recommended rules (syntax-only, no type
// information, so a full run stays fast), and the layering rule from
// STYLE.md enforced by `@nx/enforce-module-boundaries` on the Nx project tags
// set in every `project.json`:
//
//   type:app -> type:infra -> type:domain -> type:contracts -> (zod only)
//
// The Nx rule reads the project graph from Nx's cache (`.nx/workspace-data`)
// and silently skips itself when that cache is missing — which is the state of
// every fresh clone and CI checkout, since `.nx/` is git-ignored. So this file
// computes the graph before ESLint lints anything (no daemon, no Nx Cloud,
// no network), and the rule always runs with a graph of the current tree.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';
import nx from '@nx/eslint-plugin';

process.env.NX_DAEMON ??= 'false';
process.env.NX_NO_CLOUD ??= 'true';
try {
  const { createProjectGraphAsync } = await import('@nx/devkit');
  await createProjectGraphAsync({ exitOnError: false });
} catch (err) {
  // Without a graph the boundary rule would skip itself with a warning and
  // lint would pass: fail instead (a malformed project.json is a real error).
  throw new Error(`eslint.config.js: could not compute the Nx project graph, so module boundaries cannot be checked (run \`npx nx show projects\` for details): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** Packages that bind code to a transport, a framework or a server. */
const TRANSPORT_PACKAGES = ['@nestjs/*', '@nats-io/*', 'bullmq', 'ioredis', 'redis-semaphore', 'ws', 'fastify'];

export default defineConfig(
  globalIgnores(['**/dist/**', '**/node_modules/**', '.nx/**', '**/.muse/**', 'coverage/**', 'bench/results/**']),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.{js,mjs,cjs}'],
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: 'module',
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
      },
    },
  },
  {
    files: ['**/*.ts'],
    rules: {
      // `_`-prefixed parameters and variables are deliberately unused (Nest
      // handler signatures, destructuring a field away).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // `any` is sometimes the honest type at a boundary (Nest metadata,
      // generic wrappers around third-party clients); flag it, don't fail on it.
      '@typescript-eslint/no-explicit-any': 'warn',
      // Nest modules are empty classes carrying decorators (`@Module(...) class M {}`).
      '@typescript-eslint/no-extraneous-class': 'off',
    },
  },
  {
    files: ['**/*.spec.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      // Tests assert on loosely typed JSON and poke at internals.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          allow: [],
          enforceBuildableLibDependency: false,
          // "Static imports of lazy-loaded libraries are forbidden" is a
          // browser code-splitting rule. In these Node services a dynamic
          // `import()` is not lazy loading, and Nx also counts TypeScript
          // type queries (`import('@muse/contracts').ArtifactMeta`) as dynamic
          // imports: one such type in a spec turned every static import of
          // contracts in that app into an error.
          checkDynamicDependenciesExceptions: ['@muse/**'],
          depConstraints: [
            {
              sourceTag: 'type:app',
              onlyDependOnLibsWithTags: ['type:infra', 'type:domain', 'type:contracts'],
            },
            {
              sourceTag: 'type:infra',
              onlyDependOnLibsWithTags: ['type:infra', 'type:domain', 'type:contracts'],
            },
            {
              sourceTag: 'type:domain',
              onlyDependOnLibsWithTags: ['type:domain', 'type:contracts'],
              bannedExternalImports: TRANSPORT_PACKAGES,
            },
            {
              sourceTag: 'type:contracts',
              onlyDependOnLibsWithTags: ['type:contracts'],
              bannedExternalImports: TRANSPORT_PACKAGES,
              // "contracts -> nothing but zod" (STYLE.md); Node built-ins are not npm packages and stay allowed.
              allowedExternalImports: ['zod'],
            },
          ],
        },
      ],
    },
  },
);
