import type { z } from 'zod';
import { redactUrl } from '../domain/secretRedaction.ts';
import { ConfigError } from '../domain/errors.ts';
import type { ConfigProblem } from '../domain/errors.ts';
import { grantProblem } from '../domain/auth/permissions.ts';
import { configSchema, DEVELOPMENT_DATABASE_URL } from './schema.ts';
import type { TaskerConfig } from './schema.ts';
import { isTable, keyDocs, objectKeys, schemaAt, unwrap } from './schemaBuilder.ts';

export type PathKey = string | number;

/** `orchestration.polling.batch_size`, `worker.namespaces[2]`. */
function formatPath(path: readonly PathKey[]): string {
  return path.reduce<string>((text, key) => {
    if (typeof key === 'number') return `${text}[${key}]`;
    return text === '' ? key : `${text}.${key}`;
  }, '');
}

/** Which layer set a key: a file relative to the config folder, `environment variable X`, or `defaults`. */
export type Provenance = ReadonlyMap<string, string>;

const SOURCE_RANK = (source: string): number =>
  source.startsWith('environment variable')
    ? 3
    : source.startsWith('environments/')
      ? 2
      : source === 'defaults'
        ? 0
        : 1;

/**
 * The layer that set a key: the key itself, else (for a table) the highest-precedence layer that set
 * anything inside it, else the schema defaults. Never a parent table's file: a key no layer set is a default.
 */
export function sourceOf(provenance: Provenance, path: readonly PathKey[]): string {
  const key = path.filter((part): part is string => typeof part === 'string').join('.');
  const exact = provenance.get(key);
  if (exact !== undefined) return exact;
  let best: string | undefined;
  for (const [candidate, source] of provenance) {
    if (candidate.startsWith(`${key}.`) && (best === undefined || SOURCE_RANK(source) > SOURCE_RANK(best)))
      best = source;
  }
  return best ?? 'defaults';
}

function valueAt(root: unknown, path: readonly PathKey[]): unknown {
  let current = root;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

/** How a found value is shown: strings quoted, tables and arrays named, long values cut. */
function describeFound(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value instanceof Date) return `the date-time ${value.toISOString()}`;
  if (Array.isArray(value)) {
    const json = JSON.stringify(value);
    return json.length > 60 ? `an array of ${value.length} values` : json;
  }
  if (typeof value === 'object' && value !== null) return 'a table';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return typeof value;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] ?? 0;
      row[j] = Math.min(current + 1, (row[j - 1] ?? 0) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] ?? 0;
}

function closest(key: string, candidates: string[]): string | undefined {
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(key.toLowerCase(), candidate);
    if (best === undefined || distance < best.distance) best = { candidate, distance };
  }
  return best !== undefined && best.distance <= Math.max(2, Math.floor(key.length / 4))
    ? best.candidate
    : undefined;
}

function unknownKeyMessage(parentPath: readonly PathKey[], key: string): string {
  const parent = schemaAt(configSchema, parentPath);
  const known = parent === undefined ? [] : objectKeys(parent);
  const suggestion = closest(key, known);
  const where = parentPath.length === 0 ? 'at the top level' : `in [${formatPath(parentPath)}]`;
  return (
    `unknown key "${key}"${suggestion === undefined ? '' : `; did you mean "${suggestion}"?`}` +
    ` (known keys ${where}: ${known.join(', ')})`
  );
}

function expectedAt(path: readonly PathKey[]): string | undefined {
  const node = schemaAt(configSchema, path);
  if (node === undefined) return undefined;
  const doc = keyDocs.get(unwrap(node));
  if (doc !== undefined) return doc.expected;
  return isTable(node) ? `a table [${formatPath(path)}]` : undefined;
}

/** A secret's found value is shown without its password, redacted before any shortening. */
function describeFoundAt(path: readonly PathKey[], value: unknown): string {
  const node = schemaAt(configSchema, path);
  // An array of tables with a secret in its entries (api_keys): never echoed whole.
  const entryKey = node === undefined ? undefined : schemaAt(node, [0, 'key']);
  if (Array.isArray(value) && entryKey !== undefined && keyDocs.get(unwrap(entryKey))?.secret === true)
    return `an array of ${value.length} tables`;
  if (node !== undefined && keyDocs.get(unwrap(node))?.secret === true && typeof value === 'string') {
    const redacted = redactUrl(value);
    return redacted === value && !/^[a-z][a-z0-9+.-]*:/i.test(value)
      ? '(a hidden value)'
      : describeFound(redacted);
  }
  return describeFound(value);
}

function issueProblems(issue: z.core.$ZodIssue, merged: unknown, provenance: Provenance): ConfigProblem[] {
  const path = issue.path.filter((key): key is PathKey => typeof key !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      source: sourceOf(provenance, [...path, key]),
      path: formatPath([...path, key]),
      message: unknownKeyMessage(path, key),
    }));
  }
  const expected = expectedAt(path) ?? issue.message;
  return [
    {
      source: sourceOf(provenance, path),
      path: formatPath(path),
      message: `expected ${expected}, found ${describeFoundAt(path, valueAt(merged, path))}`,
    },
  ];
}

/** Contradictions between keys that are each valid alone. Checked only where both values are usable. */
function crossFieldProblems(config: Record<string, unknown>, provenance: Provenance): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const num = (path: PathKey[]): number | undefined => {
    const value = valueAt(config, path);
    const node = schemaAt(configSchema, path);
    return typeof value === 'number' && node !== undefined && node.safeParse(value).success
      ? value
      : undefined;
  };
  const report = (paths: PathKey[][], message: string): void => {
    const sources = paths.map((p) => ({ path: p, source: sourceOf(provenance, p) }));
    const chosen = sources.reduce((best, s) => (SOURCE_RANK(s.source) > SOURCE_RANK(best.source) ? s : best));
    problems.push({ source: chosen.source, path: formatPath(chosen.path), message });
  };
  const notAbove = (low: PathKey[], high: PathKey[], what: string): void => {
    const a = num(low);
    const b = num(high);
    if (a !== undefined && b !== undefined && a > b) {
      report([low, high], `${formatPath(low)} is ${a}, greater than ${formatPath(high)} (${b}): ${what}`);
    }
  };

  notAbove(
    ['database', 'min_connections'],
    ['database', 'max_connections'],
    'the pool cannot keep more connections than it may open',
  );
  for (const pool of ['task_initializer', 'result_processor', 'step_enqueuer']) {
    notAbove(
      ['executor_pools', pool, 'min_executors'],
      ['executor_pools', pool, 'max_executors'],
      'min_executors must not exceed max_executors',
    );
    notAbove(
      ['executor_pools', pool, 'queue_low_watermark'],
      ['executor_pools', pool, 'queue_high_watermark'],
      'the low watermark must not exceed the high watermark',
    );
  }
  for (const role of ['orchestration', 'worker']) {
    notAbove(
      [role, 'polling', 'error_backoff_base_ms'],
      [role, 'polling', 'error_backoff_max_ms'],
      'the first backoff must not exceed the cap',
    );
    const mode = valueAt(config, [role, 'deployment_mode']);
    const listeners = valueAt(config, [role, 'hybrid', 'enable_event_listeners']);
    const polling = valueAt(config, [role, 'hybrid', 'enable_polling_fallback']);
    if (mode === 'Hybrid' && listeners === false && polling === false) {
      report(
        [
          [role, 'hybrid', 'enable_event_listeners'],
          [role, 'hybrid', 'enable_polling_fallback'],
        ],
        `Hybrid mode with both event listeners and polling disabled can never receive work: enable one, or choose ${role}.deployment_mode = "EventDrivenOnly" or "PollingOnly"`,
      );
    }
    for (const server of ['web', 'grpc']) {
      const address = valueAt(config, [role, server, 'bind_address']);
      const port =
        typeof address === 'string' ? Number(address.slice(address.lastIndexOf(':') + 1)) : undefined;
      if (port !== undefined && Number.isInteger(port) && port > 65_535) {
        report([[role, server, 'bind_address']], `port ${port} is out of range: use 0..65535`);
      }
    }
  }
  notAbove(
    ['orchestration', 'polling', 'batch_size'],
    ['orchestration', 'polling', 'max_messages_per_poll'],
    'a poll cannot read more than it may handle',
  );
  const heartbeat = num(['pgmq', 'heartbeat_interval_ms']);
  const heartbeatTimeout = num(['pgmq', 'heartbeat_timeout_ms']);
  if (heartbeat !== undefined && heartbeatTimeout !== undefined && heartbeatTimeout >= heartbeat) {
    report(
      [
        ['pgmq', 'heartbeat_timeout_ms'],
        ['pgmq', 'heartbeat_interval_ms'],
      ],
      `pgmq.heartbeat_timeout_ms (${heartbeatTimeout}) must be shorter than pgmq.heartbeat_interval_ms (${heartbeat})`,
    );
  }
  const channels = valueAt(config, ['orchestration', 'event_driven', 'channels']);
  if (
    valueAt(config, ['orchestration', 'deployment_mode']) === 'EventDrivenOnly' &&
    Array.isArray(channels) &&
    !channels.some((c) => c === 'pgmq_message_ready.orchestration' || c === 'pgmq_message_ready.*')
  ) {
    report(
      [['orchestration', 'event_driven', 'channels']],
      'an EventDrivenOnly orchestrator hears nothing without "pgmq_message_ready.orchestration" (or "pgmq_message_ready.*") in orchestration.event_driven.channels: add it, or use Hybrid',
    );
  }
  // The services' listener health checks are the heartbeat of their mode; the same rule holds for them.
  for (const role of ['orchestration', 'worker'] as const) {
    for (const mode of ['hybrid', 'event_driven'] as const) {
      const interval = num([role, mode, 'listener_health_check_interval_ms']);
      if (interval !== undefined && heartbeatTimeout !== undefined && heartbeatTimeout >= interval) {
        report(
          [
            ['pgmq', 'heartbeat_timeout_ms'],
            [role, mode, 'listener_health_check_interval_ms'],
          ],
          `pgmq.heartbeat_timeout_ms (${heartbeatTimeout}) must be shorter than ${role}.${mode}.listener_health_check_interval_ms (${interval}): each health check waits that long for its NOTIFY`,
        );
      }
    }
  }
  for (const role of ['orchestration', 'worker'] as const) authProblems(config, role, report);
  return problems;
}

/** `[<role>.web.auth]`: contradictions and unusable grants, whether or not auth is enabled now. */
function authProblems(
  config: Record<string, unknown>,
  role: 'orchestration' | 'worker',
  report: (paths: PathKey[][], message: string) => void,
): void {
  const base: PathKey[] = [role, 'web', 'auth'];
  const text = (path: PathKey[]): string => {
    const value = valueAt(config, path);
    return typeof value === 'string' ? value : '';
  };
  const keySources = ['jwt_public_key', 'jwt_public_key_path', 'jwks_url'].filter(
    (key) => text([...base, key]) !== '',
  );
  if (keySources.length > 1) {
    report(
      keySources.map((key) => [...base, key]),
      `${keySources.join(' and ')} are all set: tokens are verified by one key source, keep only one`,
    );
  }
  const strict = valueAt(config, [...base, 'strict_validation']) !== false;
  const entries = valueAt(config, [...base, 'api_keys']);
  if (!Array.isArray(entries)) return;
  entries.forEach((entry: unknown, index) => {
    const path = [...base, 'api_keys', index];
    const sources = ['key', 'key_env', 'key_file'].filter((key) => text([...path, key]) !== '');
    if (sources.length !== 1) {
      report(
        [path],
        sources.length === 0
          ? 'an API key needs one of key, key_env (an environment variable) or key_file (a secret file)'
          : `${sources.join(' and ')} are all set: give the key one way only`,
      );
    }
    const grants = (entry as { permissions?: unknown }).permissions;
    if (!Array.isArray(grants)) return;
    grants.forEach((grant: unknown, j) => {
      if (typeof grant !== 'string') return;
      const problem = grantProblem(grant);
      if (problem !== undefined && (grant === '*' || strict))
        report([[...path, 'permissions', j]], `${problem}${grant === '*' ? '' : ' (strict_validation)'}`);
    });
  });
}

const DEFAULTS: Record<string, unknown> = configSchema.parse({});

function withDefaults(value: unknown, defaults: unknown): unknown {
  if (typeof defaults !== 'object' || defaults === null || Array.isArray(defaults))
    return value === undefined ? defaults : value;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return value === undefined ? defaults : value;
  const result: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [key, child] of Object.entries(defaults)) result[key] = withDefaults(result[key], child);
  return result;
}

/** Validates the merged tree; returns the typed configuration, or every problem found. */
export function validateConfig(
  merged: Record<string, unknown>,
  provenance: Provenance,
): { config: TaskerConfig; problems: [] } | { config: undefined; problems: ConfigProblem[] } {
  const result = configSchema.safeParse(merged);
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  if (!result.success) {
    for (const issue of result.error.issues) {
      for (const problem of issueProblems(issue, merged, provenance)) {
        // One problem per key: a value that is both fractional and too large is one mistake.
        if (seen.has(problem.path)) continue;
        seen.add(problem.path);
        problems.push(problem);
      }
    }
  }
  const checked = result.success ? result.data : withDefaults(merged, DEFAULTS);
  for (const problem of crossFieldProblems(checked as Record<string, unknown>, provenance)) {
    if (!seen.has(problem.path)) problems.push(problem);
  }
  if (problems.length > 0 || !result.success) return { config: undefined, problems };
  return { config: result.data, problems: [] };
}

/**
 * What a service cannot start with although the configuration is well-formed: `messaging.backend = "rabbitmq"`,
 * whose backend is not built yet. Refused rather than silently run on PGMQ (a user who chose RabbitMQ must not
 * believe they have it). `tasker config validate` and every service start report it.
 */
export function unsupportedSettingProblems(loaded: {
  config: TaskerConfig;
  provenance: Provenance;
}): ConfigProblem[] {
  if (loaded.config.messaging.backend !== 'rabbitmq') return [];
  return [
    {
      source: loaded.provenance.get('messaging.backend') ?? 'configuration',
      path: 'messaging.backend',
      message:
        'the RabbitMQ backend is not available in this version of Tasker: services would refuse to start. ' +
        'Use "pgmq" (the default: queues inside PostgreSQL, nothing else to install), e.g. unset TASKER_MESSAGING_BACKEND',
    },
  ];
}

/**
 * Production on the development database URL (the schema's default, which base/database.toml repeats): a
 * production service would run against, or fail to reach, a local development database. The shipped
 * production files set no URL on purpose; DATABASE_URL, DATABASE_URL_FILE or database.url in the
 * environment's own files provides it.
 */
export function productionDefaultProblems(loaded: {
  environment: string;
  config: TaskerConfig;
  provenance: Provenance;
}): ConfigProblem[] {
  if (loaded.environment !== 'production' || loaded.config.database.url !== DEVELOPMENT_DATABASE_URL)
    return [];
  return [
    {
      source: loaded.provenance.get('database.url') ?? 'defaults',
      path: 'database.url',
      message:
        `production would use the development database ${DEVELOPMENT_DATABASE_URL}: ` +
        'set DATABASE_URL (or DATABASE_URL_FILE, a file holding it), or database.url in environments/production/',
    },
  ];
}

/** @throws ConfigError listing unsupportedSettingProblems and productionDefaultProblems, at a service's start */
export function assertSupportedSettings(loaded: {
  config: TaskerConfig;
  provenance: Provenance;
  environment: string;
}): void {
  const problems = [...unsupportedSettingProblems(loaded), ...productionDefaultProblems(loaded)];
  if (problems.length > 0) throw new ConfigError(problems);
}
