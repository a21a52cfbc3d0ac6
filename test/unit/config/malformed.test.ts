import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Env } from '../../../src/config/environmentOverrides.ts';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import { ConfigError, formatConfigProblem } from '../../../src/domain/errors.ts';
import { configProblems, configRoot, tempDir } from './configTestKit.ts';

/**
 * Malformed configuration, one mistake per case, each with the exact problem `tasker config validate` prints
 * (formatConfigProblem: `<file or variable>: <key path>: <message>`). Files go to environments/production/ of
 * a root holding the shipped base; TASKER_ENV=production.
 */

const PROD = 'environments/production';
const TOP_KEYS =
  'database, limits, messaging, pgmq, rabbitmq, orchestration, worker, circuit_breakers, executor_pools, telemetry';
const POLLING_KEYS =
  'task_request_poll_interval_ms, step_result_poll_interval_ms, finalization_poll_interval_ms, batch_size, ' +
  'max_messages_per_poll, error_backoff_base_ms, error_backoff_max_ms, error_backoff_multiplier';
const DATABASE_KEYS =
  'url, listen_url, max_connections, min_connections, connection_timeout_ms, idle_timeout_seconds, max_lifetime_seconds, ' +
  'statement_timeout_ms, idle_in_transaction_timeout_ms, query_cache';
const CHANNELS =
  'channels: pgmq_message_ready, pgmq_message_ready.<namespace>, pgmq_message_ready.* or pgmq_queue_created';
const MODES = '"Hybrid", "EventDrivenOnly", "PollingOnly"';

interface Case {
  name: string;
  /** File name in environments/production/ → content. */
  files: Record<string, string>;
  env?: Env;
  expected: string[];
}

const cases: Case[] = [
  {
    name: 'unknown key: a typo gets a suggestion and the list of known keys',
    files: { 'orchestration.toml': '[orchestration.polling]\nbatch_sise = 50\n' },
    expected: [
      `${PROD}/orchestration.toml: orchestration.polling.batch_sise: unknown key "batch_sise"; did you mean "batch_size"? (known keys in [orchestration.polling]: ${POLLING_KEYS})`,
    ],
  },
  {
    name: 'unknown key: a dropped letter in [database]',
    files: { 'database.toml': '[database]\nmax_conections = 50\n' },
    expected: [
      `${PROD}/database.toml: database.max_conections: unknown key "max_conections"; did you mean "max_connections"? (known keys in [database]: ${DATABASE_KEYS})`,
    ],
  },
  {
    name: 'unknown table at the top level, nothing close enough to suggest',
    files: { 'metrics.toml': '[metrics]\nenabled = true\n' },
    expected: [
      `${PROD}/metrics.toml: metrics: unknown key "metrics" (known keys at the top level: ${TOP_KEYS})`,
    ],
  },
  {
    name: 'unknown table at the top level with a typo',
    files: { 'database.toml': '[databse]\nmax_connections = 50\n' },
    expected: [
      `${PROD}/database.toml: databse: unknown key "databse"; did you mean "database"? (known keys at the top level: ${TOP_KEYS})`,
    ],
  },
  {
    name: 'unknown circuit breaker name',
    files: { 'circuit_breakers.toml': '[circuit_breakers.cache]\nenabled = true\nerror_threshold = 3\n' },
    expected: [
      `${PROD}/circuit_breakers.toml: circuit_breakers.cache: unknown key "cache" (known keys in [circuit_breakers]: database, message_queue)`,
    ],
  },
  {
    name: 'a string for an integer',
    files: { 'orchestration.toml': '[orchestration.polling]\nbatch_size = "fifty"\n' },
    expected: [
      `${PROD}/orchestration.toml: orchestration.polling.batch_size: expected an integer 1..10000, found "fifty"`,
    ],
  },
  {
    name: 'a quoted number for an integer (TOML strings are not numbers)',
    files: { 'database.toml': '[database]\nmax_connections = "50"\n' },
    expected: [`${PROD}/database.toml: database.max_connections: expected an integer 1..10000, found "50"`],
  },
  {
    name: 'a float for an integer',
    files: { 'database.toml': '[database]\nmax_connections = 12.5\n' },
    expected: [`${PROD}/database.toml: database.max_connections: expected an integer 1..10000, found 12.5`],
  },
  {
    name: 'out of range: zero',
    files: { 'orchestration.toml': '[orchestration.polling]\nbatch_size = 0\n' },
    expected: [
      `${PROD}/orchestration.toml: orchestration.polling.batch_size: expected an integer 1..10000, found 0`,
    ],
  },
  {
    name: 'out of range: too big',
    files: {
      'orchestration.toml': '[orchestration.polling]\nbatch_size = 10001\nmax_messages_per_poll = 20000\n',
    },
    expected: [
      `${PROD}/orchestration.toml: orchestration.polling.batch_size: expected an integer 1..10000, found 10001`,
    ],
  },
  {
    name: 'out of range: negative',
    files: { 'database.toml': '[database]\nmin_connections = -1\n' },
    expected: [`${PROD}/database.toml: database.min_connections: expected an integer 0..10000, found -1`],
  },
  {
    name: 'out of range: a decimal',
    files: { 'telemetry.toml': '[telemetry.tracing]\nsample_ratio = 1.5\n' },
    expected: [`${PROD}/telemetry.toml: telemetry.tracing.sample_ratio: expected a number 0..1, found 1.5`],
  },
  {
    name: 'a boolean written as a string',
    files: { 'database.toml': '[database.query_cache]\nenabled = "true"\n' },
    expected: [`${PROD}/database.toml: database.query_cache.enabled: expected true or false, found "true"`],
  },
  {
    name: 'unknown deployment mode',
    files: { 'orchestration.toml': '[orchestration]\ndeployment_mode = "Polling"\n' },
    expected: [
      `${PROD}/orchestration.toml: orchestration.deployment_mode: expected one of ${MODES}, found "Polling"`,
    ],
  },
  {
    name: 'deployment mode in the wrong case',
    files: { 'worker.toml': '[worker]\ndeployment_mode = "hybrid"\n' },
    expected: [`${PROD}/worker.toml: worker.deployment_mode: expected one of ${MODES}, found "hybrid"`],
  },
  {
    name: 'a number where a table belongs',
    files: { 'orchestration.toml': 'orchestration = 5\n' },
    expected: [`${PROD}/orchestration.toml: orchestration: expected a table [orchestration], found 5`],
  },
  {
    name: 'an array of tables where a table belongs',
    files: { 'database.toml': '[[database]]\nmax_connections = 5\n' },
    expected: [`${PROD}/database.toml: database: expected a table [database], found [{"max_connections":5}]`],
  },
  {
    name: 'a table where a string belongs',
    files: { 'database.toml': '[database.url]\nhost = "db"\n' },
    expected: [
      `${PROD}/database.toml: database.url: expected a postgres://… or pglite:<folder> URL, found a table`,
    ],
  },
  {
    name: 'a date-time where a string belongs',
    files: { 'telemetry.toml': '[telemetry]\nservice_name = 2026-01-15T00:00:00Z\n' },
    expected: [
      `${PROD}/telemetry.toml: telemetry.service_name: expected a non-empty string, found the date-time 2026-01-15T00:00:00.000Z`,
    ],
  },
  {
    name: 'a string where an array belongs (channels)',
    files: { 'orchestration.toml': '[orchestration.event_driven]\nchannels = "pgmq_queue_created"\n' },
    expected: [
      `${PROD}/orchestration.toml: orchestration.event_driven.channels: expected an array of ${CHANNELS} (at least 1), found "pgmq_queue_created"`,
    ],
  },
  {
    name: 'an empty channels array',
    files: { 'orchestration.toml': '[orchestration.event_driven]\nchannels = []\n' },
    expected: [
      `${PROD}/orchestration.toml: orchestration.event_driven.channels: expected an array of ${CHANNELS} (at least 1), found []`,
    ],
  },
  {
    name: 'an invalid channel name, reported at its index',
    files: {
      'orchestration.toml':
        '[orchestration.event_driven]\nchannels = ["pgmq_queue_created", "pgmq_message_ready.Orders"]\n',
    },
    expected: [
      `${PROD}/orchestration.toml: orchestration.event_driven.channels[1]: expected ${CHANNELS}, found "pgmq_message_ready.Orders"`,
    ],
  },
  {
    name: 'an invalid namespace in a file',
    files: { 'worker.toml': '[worker]\nnamespaces = ["payments", "order-intake"]\n' },
    expected: [
      `${PROD}/worker.toml: worker.namespaces[1]: expected namespace names (1-34 lowercase letters, digits, underscores), found "order-intake"`,
    ],
  },
  {
    name: 'TOML syntax error, with file:line:column',
    files: { 'orchestration.toml': '[orchestration.polling]\nbatch_size = = 5\n' },
    expected: [
      `${PROD}/orchestration.toml:2:14: TOML syntax error: invalid value near "batch_size = = 5"; a value is a "quoted string", a number, true or false, an [array] or an {inline = "table"}`,
    ],
  },
  {
    name: 'TOML syntax error: an unclosed table header',
    files: { 'orchestration.toml': '# header\n[orchestration.polling\nbatch_size = 5\n' },
    expected: [
      `${PROD}/orchestration.toml:2:23: TOML syntax error: illegal character in key near "[orchestration.polling"; close the table header: [orchestration.polling]`,
    ],
  },
  {
    name: 'TOML syntax error: a space in a bare key, with the line and the fix',
    files: { 'database.toml': '[database]\nmax connections = 5\n' },
    expected: [
      `${PROD}/database.toml:2:5: TOML syntax error: illegal character in key near "max connections = 5"; a bare key holds only letters, digits, _ and -: write max_connections = 5, or quote the key ("my key" = 5)`,
    ],
  },
  {
    name: 'a duplicate key in one file',
    files: { 'database.toml': '[database]\nmax_connections = 50\nmax_connections = 60\n' },
    expected: [
      `${PROD}/database.toml:3:1: TOML syntax error: trying to redefine an already defined table or value near "max_connections = 60"; each key and each [table] may appear only once per file`,
    ],
  },
  {
    name: 'a duplicate table in one file',
    files: { 'database.toml': '[database]\nmax_connections = 50\n\n[database]\nmin_connections = 5\n' },
    expected: [
      `${PROD}/database.toml:4:2: TOML syntax error: trying to redefine an already defined table or value near "[database]"; each key and each [table] may appear only once per file`,
    ],
  },
  {
    name: 'min_connections > max_connections',
    files: { 'database.toml': '[database]\nmax_connections = 20\nmin_connections = 30\n' },
    expected: [
      `${PROD}/database.toml: database.min_connections: database.min_connections is 30, greater than database.max_connections (20): the pool cannot keep more connections than it may open`,
    ],
  },
  {
    name: 'queue_low_watermark > queue_high_watermark',
    files: { 'executor_pools.toml': '[executor_pools.result_processor]\nqueue_low_watermark = 500\n' },
    expected: [
      `${PROD}/executor_pools.toml: executor_pools.result_processor.queue_low_watermark: executor_pools.result_processor.queue_low_watermark is 500, greater than executor_pools.result_processor.queue_high_watermark (200): the low watermark must not exceed the high watermark`,
    ],
  },
  {
    name: 'min_executors > max_executors',
    files: { 'executor_pools.toml': '[executor_pools.step_enqueuer]\nmin_executors = 16\n' },
    expected: [
      `${PROD}/executor_pools.toml: executor_pools.step_enqueuer.min_executors: executor_pools.step_enqueuer.min_executors is 16, greater than executor_pools.step_enqueuer.max_executors (15): min_executors must not exceed max_executors`,
    ],
  },
  {
    name: 'error_backoff_base_ms > error_backoff_max_ms (orchestration)',
    files: { 'orchestration.toml': '[orchestration.polling]\nerror_backoff_base_ms = 60000\n' },
    expected: [
      `${PROD}/orchestration.toml: orchestration.polling.error_backoff_base_ms: orchestration.polling.error_backoff_base_ms is 60000, greater than orchestration.polling.error_backoff_max_ms (30000): the first backoff must not exceed the cap`,
    ],
  },
  {
    name: 'error_backoff_max_ms < error_backoff_base_ms (worker), blamed on the key that was changed',
    files: { 'worker.toml': '[worker.polling]\nerror_backoff_max_ms = 500\n' },
    expected: [
      `${PROD}/worker.toml: worker.polling.error_backoff_max_ms: worker.polling.error_backoff_base_ms is 1000, greater than worker.polling.error_backoff_max_ms (500): the first backoff must not exceed the cap`,
    ],
  },
  {
    name: 'error_backoff_multiplier below 1',
    files: { 'orchestration.toml': '[orchestration.polling]\nerror_backoff_multiplier = 0.5\n' },
    expected: [
      `${PROD}/orchestration.toml: orchestration.polling.error_backoff_multiplier: expected a number 1..10, found 0.5`,
    ],
  },
  {
    name: 'batch_size > max_messages_per_poll',
    files: { 'orchestration.toml': '[orchestration.polling]\nbatch_size = 500\n' },
    expected: [
      `${PROD}/orchestration.toml: orchestration.polling.batch_size: orchestration.polling.batch_size is 500, greater than orchestration.polling.max_messages_per_poll (100): a poll cannot read more than it may handle`,
    ],
  },
  {
    name: 'Hybrid with both event listeners and polling disabled',
    files: {
      'orchestration.toml':
        '[orchestration.hybrid]\nenable_event_listeners = false\nenable_polling_fallback = false\n',
    },
    expected: [
      `${PROD}/orchestration.toml: orchestration.hybrid.enable_event_listeners: Hybrid mode with both event listeners and polling disabled can never receive work: enable one, or choose orchestration.deployment_mode = "EventDrivenOnly" or "PollingOnly"`,
    ],
  },
  {
    name: 'Hybrid worker with both disabled, across two files',
    files: {
      'a.toml': '[worker.hybrid]\nenable_event_listeners = false\n',
      'b.toml': '[worker.hybrid]\nenable_polling_fallback = false\n',
    },
    expected: [
      `${PROD}/a.toml: worker.hybrid.enable_event_listeners: Hybrid mode with both event listeners and polling disabled can never receive work: enable one, or choose worker.deployment_mode = "EventDrivenOnly" or "PollingOnly"`,
    ],
  },
  {
    name: 'heartbeat_timeout_ms equal to heartbeat_interval_ms',
    files: { 'pgmq.toml': '[pgmq]\nheartbeat_interval_ms = 5000\nheartbeat_timeout_ms = 5000\n' },
    expected: [
      `${PROD}/pgmq.toml: pgmq.heartbeat_timeout_ms: pgmq.heartbeat_timeout_ms (5000) must be shorter than pgmq.heartbeat_interval_ms (5000)`,
    ],
  },
  {
    name: 'heartbeat_timeout_ms longer than heartbeat_interval_ms',
    files: { 'pgmq.toml': '[pgmq]\nheartbeat_interval_ms = 1000\n' },
    expected: [
      `${PROD}/pgmq.toml: pgmq.heartbeat_interval_ms: pgmq.heartbeat_timeout_ms (5000) must be shorter than pgmq.heartbeat_interval_ms (1000)`,
    ],
  },
  {
    name: 'bind_address port above 65535',
    files: { 'orchestration.toml': '[orchestration.grpc]\nbind_address = "0.0.0.0:70000"\n' },
    expected: [
      `${PROD}/orchestration.toml: orchestration.grpc.bind_address: port 70000 is out of range: use 0..65535`,
    ],
  },
  {
    name: 'bind_address port above 65535 from a variable in the base',
    files: {},
    env: { TASKER_WORKER_WEB_BIND_ADDRESS: '0.0.0.0:99999' },
    expected: [`base/worker.toml: worker.web.bind_address: port 99999 is out of range: use 0..65535`],
  },
  {
    name: 'bind_address without a port',
    files: { 'worker.toml': '[worker.grpc]\nbind_address = "0.0.0.0"\n' },
    expected: [
      `${PROD}/worker.toml: worker.grpc.bind_address: expected host:port, for example 0.0.0.0:8080 or [::]:8080, found "0.0.0.0"`,
    ],
  },
  {
    name: 'database.url with a scheme that is not PostgreSQL',
    files: { 'database.toml': '[database]\nurl = "mysql://db.internal/tasker"\n' },
    expected: [
      `${PROD}/database.toml: database.url: expected a postgres://… or pglite:<folder> URL, found "mysql://db.internal/tasker"`,
    ],
  },
  {
    name: 'rabbitmq.url with an http scheme',
    files: { 'rabbitmq.toml': '[rabbitmq]\nurl = "http://mq.internal/"\n' },
    expected: [
      `${PROD}/rabbitmq.toml: rabbitmq.url: expected an amqp:// or amqps:// URL, found "http://mq.internal/"`,
    ],
  },
];

describe('malformed configuration: one mistake, one exact problem', () => {
  it.each(cases)('$name', ({ files, env, expected }) => {
    const prefixed = Object.fromEntries(
      Object.entries(files).map(([file, text]) => [`${PROD}/${file}`, text]),
    );
    const root = configRoot({ files: { [`${PROD}/.keep`]: '', ...prefixed } });
    expect(root.formatted({ TASKER_ENV: 'production', ...env })).toEqual(expected);
  });

  it('lists at least 15 different malformed inputs', () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
    expect(new Set(cases.map((c) => c.expected.join())).size).toBe(cases.length);
  });

  it('a cross-field problem is blamed on the highest layer involved (the environment file over the base)', () => {
    const root = configRoot({
      files: {
        'base/zz_pool.toml': '[database]\nmin_connections = 8\n',
        [`${PROD}/database.toml`]: '[database]\nmax_connections = 5\n',
      },
    });
    expect(root.formatted({ TASKER_ENV: 'production' })).toEqual([
      `${PROD}/database.toml: database.max_connections: database.min_connections is 8, greater than database.max_connections (5): the pool cannot keep more connections than it may open`,
    ]);
  });

  it('the seed example: batch_size = "fifty" reads exactly as documented', () => {
    const root = configRoot({
      files: { [`${PROD}/orchestration.toml`]: '[orchestration.polling]\nbatch_size = "fifty"\n' },
    });
    const problems = root.problems({ TASKER_ENV: 'production' });
    expect(problems).toEqual([
      {
        source: 'environments/production/orchestration.toml',
        path: 'orchestration.polling.batch_size',
        message: 'expected an integer 1..10000, found "fifty"',
      },
    ]);
    expect(problems.map(formatConfigProblem)).toEqual([
      'environments/production/orchestration.toml: orchestration.polling.batch_size: expected an integer 1..10000, found "fifty"',
    ]);
  });
});

describe('known defects (reported; remove `.fails` once fixed)', () => {
  // The bind_address pattern ^[^\s:]*:\d{1,5}$ allows no colon in the host, so the IPv6 any-address of a
  // dual-stack pod is refused: "expected host:port, for example 0.0.0.0:8080, found \"[::]:8080\"".
  it('an IPv6 bind address [::]:8080 is accepted', () => {
    const root = configRoot({ files: { [`${PROD}/.keep`]: '' } });
    const loaded = root.load({ TASKER_ENV: 'production', TASKER_WEB_BIND_ADDRESS: '[::]:8080' });
    expect(loaded.config.orchestration.web.bind_address).toBe('[::]:8080');
  });
});

describe('malformed environment selection and paths', () => {
  it('unknown TASKER_ENV lists the known environments', () => {
    const root = configRoot({
      files: {
        'environments/development/.keep': '',
        'environments/production/.keep': '',
        'environments/test/.keep': '',
        'environments/not-a-folder.toml': '',
      },
    });
    expect(root.formatted({ TASKER_ENV: 'staging' })).toEqual([
      `environment variable TASKER_ENV: unknown environment "staging": no folder environments/staging/ under ${root.folder} (known: development, production, test). Create the folder or fix TASKER_ENV.`,
    ]);
  });

  it('unknown TASKER_ENV with no environments/ folder at all says none are known', () => {
    const root = configRoot();
    expect(root.formatted({ TASKER_ENV: 'staging' })).toEqual([
      `environment variable TASKER_ENV: unknown environment "staging": no folder environments/staging/ under ${root.folder} (known: none). Create the folder or fix TASKER_ENV.`,
    ]);
  });

  it.each(['../etc', 'Production', 'prod/eu', '-x', 'a'.repeat(65)])(
    'an invalid TASKER_ENV name (%s) is refused before any file is read',
    (name) => {
      const root = configRoot();
      expect(root.formatted({ TASKER_ENV: name })).toEqual([
        `environment variable TASKER_ENV: expected an environment name (lowercase letters, digits, - and _), found ${JSON.stringify(name)}`,
      ]);
    },
  );

  it('a TASKER_CONFIG_PATH that names no file', () => {
    const dir = tempDir();
    const problems = configProblems(() =>
      loadConfig({ env: { TASKER_CONFIG_PATH: 'missing.toml' }, cwd: dir }),
    );
    expect(problems.map(formatConfigProblem)).toEqual([
      `environment variable TASKER_CONFIG_PATH: no file at ${join(dir, 'missing.toml')}: point TASKER_CONFIG_PATH at a TOML file, or unset it to use config/tasker/`,
    ]);
  });

  it('a TASKER_CONFIG_PATH that names a folder', () => {
    const dir = tempDir();
    const problems = configProblems(() => loadConfig({ env: { TASKER_CONFIG_PATH: dir }, cwd: dir }));
    expect(problems.map(formatConfigProblem)).toEqual([
      `environment variable TASKER_CONFIG_PATH: no file at ${dir}: point TASKER_CONFIG_PATH at a TOML file, or unset it to use config/tasker/`,
    ]);
  });
});

describe('many mistakes at once', () => {
  const files = {
    [`${PROD}/orchestration.toml`]: [
      '[orchestration]',
      'deployment_mode = "Sometimes"',
      '[orchestration.polling]',
      'batch_size = "fifty"',
      'batch_sise = 3',
      'error_backoff_base_ms = 99999',
      '[orchestration.event_driven]',
      'channels = ["pgmq_queue_created", "everything"]',
      '',
    ].join('\n'),
    [`${PROD}/database.toml`]:
      '[database]\nmax_connections = "${POOL}"\nmin_connections = 20\nurl = "${DB_URL}"\n',
    [`${PROD}/executor_pools.toml`]: '[executor_pools.task_initializer]\nmin_executors = 11\n',
    [`${PROD}/broken.toml`]: '[telemetry\nlog_level = "info"\n',
    [`${PROD}/extra.toml`]: '[circuit_breakers.cache]\nenabled = true\n',
  };
  const env: Env = {
    TASKER_ENV: 'production',
    TASKER_MESSAGING_BACKEND: 'kafka',
    WORKER_NAMESPACES: 'ok,NOT_OK',
  };
  const expected = [
    `${PROD}/broken.toml:1:11: TOML syntax error: illegal character in key near "[telemetry"; close the table header: [telemetry]`,
    `${PROD}/database.toml: database.max_connections: environment variable POOL is not set (or is empty) and has no default: set it, or write \${POOL:-default}`,
    `${PROD}/database.toml: database.url: environment variable DB_URL is not set (or is empty) and has no default: set it, or write \${DB_URL:-default}`,
    'environment variable TASKER_MESSAGING_BACKEND: expected "pgmq" or "rabbitmq", found "kafka"',
    `environment variable WORKER_NAMESPACES: worker.namespaces[1]: expected namespace names (1-34 lowercase letters, digits, underscores), found "NOT_OK"`,
    `${PROD}/orchestration.toml: orchestration.deployment_mode: expected one of ${MODES}, found "Sometimes"`,
    `${PROD}/orchestration.toml: orchestration.polling.batch_size: expected an integer 1..10000, found "fifty"`,
    `${PROD}/orchestration.toml: orchestration.polling.batch_sise: unknown key "batch_sise"; did you mean "batch_size"? (known keys in [orchestration.polling]: ${POLLING_KEYS})`,
    `${PROD}/orchestration.toml: orchestration.polling.error_backoff_base_ms: orchestration.polling.error_backoff_base_ms is 99999, greater than orchestration.polling.error_backoff_max_ms (30000): the first backoff must not exceed the cap`,
    `${PROD}/orchestration.toml: orchestration.event_driven.channels[1]: expected ${CHANNELS}, found "everything"`,
    `${PROD}/executor_pools.toml: executor_pools.task_initializer.min_executors: executor_pools.task_initializer.min_executors is 11, greater than executor_pools.task_initializer.max_executors (10): min_executors must not exceed max_executors`,
    `${PROD}/extra.toml: circuit_breakers.cache: unknown key "cache" (known keys in [circuit_breakers]: database, message_queue)`,
  ];

  it('reports every one of them in one ConfigError', () => {
    const root = configRoot({ files });
    let caught: unknown;
    try {
      root.load(env);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(error.code).toBe('TASKER_CONFIG_INVALID');
    expect(error.problems).toHaveLength(expected.length);
    expect(error.problems.map(formatConfigProblem).sort()).toEqual([...expected].sort());
    // The message lists them all too, one per line, after the count.
    const lines = error.message.split('\n');
    expect(lines[0]).toBe(`configuration has ${expected.length} problems:`);
    expect(lines.slice(1).sort()).toEqual(expected.map((line) => `  ${line}`).sort());
    expect(error.details).toEqual({ problems: error.problems });
  });

  it("a missing variable's key is reported once, not again as a type error", () => {
    const problems = configRoot({ files }).problems(env);
    expect(problems.filter((p) => p.path === 'database.max_connections')).toHaveLength(1);
    expect(problems.filter((p) => p.path === 'database.url')).toHaveLength(1);
    // min_connections = 20 is not compared with the unresolved max_connections.
    expect(problems.filter((p) => p.path === 'database.min_connections')).toEqual([]);
  });

  it('fixing the variables leaves exactly the other problems', () => {
    const problems = configRoot({ files }).problems({ ...env, POOL: '50', DB_URL: 'postgres://app@db/x' });
    expect(problems).toHaveLength(expected.length - 2);
    expect(problems.map((p) => p.path)).not.toContain('database.max_connections');
  });
});
