// Type-aware linting: floating promises and type-only imports are the two mistakes that cost us most.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Import boundaries: which top-level folders of src/ each folder may import (besides itself). A whitelist:
 * a folder not listed is forbidden, type-only imports and re-exports included. docs/architecture.md explains
 * the layers; change this table and that page together.
 *
 * domain <- config <- observability <- db <- messaging <- resilience <- coordination
 * coordination <- orchestration, worker <- api <- services <- cli
 * domain <- client <- cli (the client stands alone, so it pulls in no server code)
 */
const allowedImports = {
  domain: [],
  config: ['domain'],
  observability: ['domain', 'config'],
  // db and messaging take resolved options; services/runtimeOptions.ts turns the configuration into them.
  db: ['domain', 'observability'],
  messaging: ['domain', 'observability', 'db'],
  resilience: ['domain', 'config', 'observability', 'db', 'messaging'],
  coordination: ['domain', 'config', 'observability', 'db', 'messaging', 'resilience'],
  // Orchestration and worker talk only through the database and the MessagingProvider.
  orchestration: ['domain', 'config', 'observability', 'db', 'messaging', 'resilience', 'coordination'],
  worker: ['domain', 'config', 'observability', 'db', 'messaging', 'resilience', 'coordination'],
  api: [
    'domain',
    'config',
    'observability',
    'db',
    'messaging',
    'resilience',
    'coordination',
    'orchestration',
    'worker',
  ],
  services: [
    'domain',
    'config',
    'observability',
    'db',
    'messaging',
    'resilience',
    'coordination',
    'orchestration',
    'worker',
    'api',
  ],
  cli: [
    'domain',
    'config',
    'observability',
    'db',
    'messaging',
    'resilience',
    'coordination',
    'orchestration',
    'worker',
    'api',
    'services',
    'client',
  ],
  client: ['domain'],
};

/** Server packages the client (and domain, which it imports) must never load. */
const serverPackages = [
  'pg',
  'pg-*',
  '@electric-sql/*',
  'fastify',
  '@fastify/*',
  '@grpc/*',
  'grpc-health-check',
  'amqplib',
  'pino',
  'prom-client',
  '@opentelemetry/*',
];

const folders = Object.keys(allowedImports);

// Every folder of src/ has a row, and every allowed import names a folder of the table.
for (const entry of readdirSync(join(import.meta.dirname, 'src'), { withFileTypes: true })) {
  if (entry.isDirectory() && !(entry.name in allowedImports)) {
    throw new Error(`eslint.config.js: src/${entry.name}/ has no row in the import boundaries table`);
  }
}
for (const [folder, allowed] of Object.entries(allowedImports)) {
  for (const target of allowed) {
    if (!(target in allowedImports) || target === folder) {
      throw new Error(
        `eslint.config.js: ${folder} may import "${target}", which is not another folder of the table`,
      );
    }
  }
}

// The table must be a DAG: then no chain of imports can lead back to the folder it started from.
function findCycle() {
  const state = new Map();
  const visit = (folder, path) => {
    if (state.get(folder) === 'done') return null;
    if (state.get(folder) === 'visiting') return [...path.slice(path.indexOf(folder)), folder];
    state.set(folder, 'visiting');
    for (const target of allowedImports[folder]) {
      const cycle = visit(target, [...path, folder]);
      if (cycle !== null) return cycle;
    }
    state.set(folder, 'done');
    return null;
  };
  for (const folder of folders) {
    const cycle = visit(folder, []);
    if (cycle !== null) return cycle;
  }
  return null;
}
const cycle = findCycle();
if (cycle !== null) {
  throw new Error(`eslint.config.js: the import boundaries table has a cycle: ${cycle.join(' -> ')}`);
}

const escapeRegex = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * One override per folder and per depth below it: a file `depth` folders below src/<folder>/ reaches another
 * top-level folder only through exactly depth + 1 `../`, so the patterns are exact for every file.
 */
const MAX_DEPTH = 6;
function importBoundaries() {
  const configs = [];
  for (const folder of folders) {
    const allowed = allowedImports[folder];
    const forbidden = folders.filter((other) => other !== folder && !allowed.includes(other));
    const allowedText =
      allowed.length === 0 ? 'nothing outside itself' : allowed.map((f) => `${f}/`).join(', ');
    const message = (target) =>
      `Import boundaries: src/${folder}/ must not import src/${target}/ (it may import ${allowedText}). ` +
      'See the allowedImports table in eslint.config.js and docs/architecture.md.';
    const packageMessage =
      'Import boundaries: the client and domain must not load server code (see serverPackages in eslint.config.js).';
    for (let depth = 0; depth <= MAX_DEPTH; depth += 1) {
      const up = '../'.repeat(depth + 1);
      const patterns = forbidden.map((target) => ({
        regex: `^${escapeRegex(up + target)}(/|$)`,
        message: message(target),
      }));
      if (folder === 'client' || folder === 'domain') {
        patterns.push({ group: serverPackages, message: packageMessage });
      }
      configs.push({
        files: [`src/${folder}/${'*/'.repeat(depth)}*.ts`],
        rules: {
          'no-restricted-imports': ['error', { patterns }],
          // no-restricted-imports does not see import(): the same boundary for dynamic imports.
          'no-restricted-syntax': [
            'error',
            ...forbidden.map((target) => ({
              selector: `ImportExpression[source.value=/^${escapeRegex(up + target)}(\\/|$)/]`,
              message: message(target),
            })),
          ],
        },
      });
    }
  }
  return configs;
}

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '.tasker/**',
      'coverage/**',
      // Fixtures that must fail to compile (test/unit/worker/workflowTypes.test.ts compiles them on purpose).
      'test/fixtures/workflows/compileErrors/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
    },
  },
  ...importBoundaries(),
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
