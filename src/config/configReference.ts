import type { z } from 'zod';
import { configSchema } from './schema.ts';
import { keyDocs, objectKeys, schemaAt, tableDocs, unwrap, isTable } from './schemaBuilder.ts';

/**
 * Renders docs/configuration.md from the schema, so the reference cannot drift from the code:
 * `npm run docs:config` writes it and a test fails when the committed file differs.
 */

const DEFAULTS = configSchema.parse({}) as Record<string, unknown>;

function valueAt(root: unknown, path: readonly string[]): unknown {
  let current = root;
  for (const key of path) current = (current as Record<string, unknown> | undefined)?.[key];
  return current;
}

function formatDefault(value: unknown): string {
  if (typeof value === 'string') return `\`"${value}"\``;
  return `\`${JSON.stringify(value)}\``;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

interface Section {
  path: string[];
  schema: z.ZodType;
}

function sections(schema: z.ZodType, path: string[] = [], result: Section[] = []): Section[] {
  const leaves = objectKeys(schema).filter((key) => {
    const child = schemaAt(schema, [key]);
    return child !== undefined && !isTable(child);
  });
  if (leaves.length > 0 || path.length > 0) result.push({ path, schema });
  for (const key of objectKeys(schema)) {
    const child = schemaAt(schema, [key]);
    if (child !== undefined && isTable(child)) sections(child, [...path, key], result);
  }
  return result;
}

const HEADER = `# Configuration reference

<!-- Generated from src/config/schema.ts by \`npm run docs:config\`; do not edit by hand. -->

Tasker reads TOML files from \`config/tasker/\`:

\`\`\`
config/tasker/
├── base/                  all environments: database, orchestration, worker, circuit_breakers,
│                          executor_pools, pgmq, rabbitmq, query_cache, telemetry (*.toml, name order)
└── environments/
    ├── development/*.toml
    ├── test/*.toml
    └── production/*.toml  deep-merged over base: tables merge key by key, other values replace
\`\`\`

- \`TASKER_ENV\` picks the environment (default \`development\`); an environment without a folder is an error.
- \`TASKER_CONFIG_ROOT\` is the folder holding \`tasker/\` (default \`./config\` when it has \`tasker/\`, else the
  configuration shipped with Tasker).
- \`TASKER_CONFIG_PATH\` names one TOML file to use instead of the whole layout (schema defaults fill the rest).
- \`\${VAR}\` and \`\${VAR:-default}\` in string values are replaced by environment variables; an unset variable
  without a default is an error naming the variable and the key. A value that is one whole reference and
  resolves to a number or boolean becomes one (\`max_connections = "\${POOL:-50}"\`).
- Unknown keys, wrong types, out-of-range values and contradictions between keys are errors that name the
  file, the key, what was expected and what was found. All of them are reported at once.

Check a configuration with \`npx tasker config validate\`; print the merged result, secrets redacted, with
\`npx tasker config show\` (\`--json\`, or \`--sources\` to see which file or variable set each key).

## Precedence

Highest first:

1. environment variables below
2. \`environments/<TASKER_ENV>/*.toml\`
3. \`base/*.toml\`
4. the defaults in this reference

| variable | sets | notes |
|---|---|---|
| \`DATABASE_URL\` | \`database.url\` | |
| \`DATABASE_URL_FILE\` | \`database.url\` | read from the file (Docker secrets); setting both is an error |
| \`TASKER_MESSAGING_BACKEND\` | \`messaging.backend\` | \`pgmq\` or \`rabbitmq\` |
| \`RABBITMQ_URL\` | \`rabbitmq.url\` | |
| \`TASKER_DEPLOYMENT_MODE\`, \`DEPLOYMENT_MODE\` | \`orchestration.deployment_mode\`, \`worker.deployment_mode\` | the first wins when both are set |
| \`WORKER_NAMESPACES\` | \`worker.namespaces\` | comma-separated |
| \`LOG_LEVEL\`, \`RUST_LOG\` | \`telemetry.log_level\` | LOG_LEVEL wins; RUST_LOG's global directive is used (\`tasker=debug,warn\` → \`warn\`) |
| \`OTEL_EXPORTER_OTLP_ENDPOINT\` | \`telemetry.tracing.otlp_endpoint\` | the OTLP/HTTP base URL; \`/v1/traces\` is appended |
| \`OTEL_SERVICE_NAME\` | \`telemetry.service_name\` | |
| \`TASKER_AUTH_ENABLED\` | \`orchestration.web.auth.enabled\`, \`worker.web.auth.enabled\` | \`true\` or \`false\`; false in production logs a warning at every start |
| \`TASKER_ENV\`, \`TASKER_CONFIG_ROOT\`, \`TASKER_CONFIG_PATH\` | which files are read | |

The shipped files also reference \`TASKER_WEB_BIND_ADDRESS\`, \`TASKER_ORCHESTRATION_GRPC_BIND_ADDRESS\`,
\`TASKER_WORKER_WEB_BIND_ADDRESS\` and \`TASKER_WORKER_GRPC_BIND_ADDRESS\` through \`\${…:-default}\`; \`environments/production/auth.toml\` references \`TASKER_JWT_PUBLIC_KEY\`,
\`TASKER_JWT_PUBLIC_KEY_PATH\`, \`TASKER_JWKS_URL\`, \`TASKER_JWT_ISSUER\` and \`TASKER_JWT_AUDIENCE\` (docs/security.md).

Keys marked *pending* are validated today but read by a feature that is still being built (named in the
mark); until then they do not change behaviour.
`;

export function renderConfigReference(): string {
  const lines: string[] = [HEADER];
  for (const section of sections(configSchema)) {
    if (section.path.length === 0) continue;
    const tableDoc = tableDocs.get(unwrap(section.schema));
    lines.push(`## [${section.path.join('.')}]`, '');
    if (tableDoc !== undefined) {
      lines.push(
        `${tableDoc.description}${tableDoc.pending === undefined ? '' : ` *Pending: ${tableDoc.pending}.*`}`,
        '',
      );
    }
    const leaves = objectKeys(section.schema).filter((key) => {
      const child = schemaAt(section.schema, [key]);
      return child !== undefined && !isTable(child);
    });
    if (leaves.length === 0) continue;
    lines.push('| key | accepts | default | meaning |', '|---|---|---|---|');
    for (const key of leaves) {
      const child = schemaAt(section.schema, [key]);
      const doc = child === undefined ? undefined : keyDocs.get(unwrap(child));
      if (doc === undefined)
        throw new Error(`config key ${[...section.path, key].join('.')} has no documentation`);
      const meaning = `${doc.description}${doc.secret === true ? ' Secret: redacted in output.' : ''}${
        doc.pending === undefined ? '' : ` *Pending: ${doc.pending}.*`
      }`;
      const fallback = formatDefault(valueAt(DEFAULTS, [...section.path, key]));
      lines.push(
        `| \`${key}\` | ${escapeCell(doc.expected)} | ${escapeCell(fallback)} | ${escapeCell(meaning)} |`,
      );
    }
    lines.push('');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}
