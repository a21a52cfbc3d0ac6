import { DEFAULT_TASK_LIMITS } from '../domain/limits.ts';
import type { z } from 'zod';
import { PERMISSION_SYNTAX } from '../domain/auth/permissions.ts';
import { bool, decimal, int, list, oneOf, table, tableList, text } from './schemaBuilder.ts';

/**
 * The one configuration schema: every key, its type, range, default and meaning. Types are inferred from it
 * and docs/configuration.md is generated from it (`npm run docs:config`).
 */

export const DEPLOYMENT_MODES = ['Hybrid', 'EventDrivenOnly', 'PollingOnly'] as const;
export type DeploymentMode = (typeof DEPLOYMENT_MODES)[number];
export const MESSAGING_BACKENDS = ['pgmq', 'rabbitmq'] as const;
/** The default database URL: a local development database, never right for production (validateConfig.ts). */
export const DEVELOPMENT_DATABASE_URL = 'postgres://root@127.0.0.1:5432/tasker_development';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const ENGINE_PENDING = 'workflow engine (issue 4)';
const RABBITMQ_PENDING = 'RabbitMQ backend (roadmap: later)';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/** Worker namespaces become queue names `worker_<ns>_queue`, which must fit PGMQ's 47 characters. */
const NAMESPACE_PATTERN = /^[a-z_][a-z0-9_]{0,33}$/;
const NAMESPACE = {
  pattern: NAMESPACE_PATTERN,
  expected: 'namespace names (1-34 lowercase letters, digits, underscores)',
};
const CHANNEL = {
  pattern: /^(pgmq_message_ready(\.([a-z_][a-z0-9_]{0,43}|\*))?|pgmq_queue_created)$/,
  expected:
    'channels: pgmq_message_ready, pgmq_message_ready.<namespace>, pgmq_message_ready.* or pgmq_queue_created',
};
const BIND_ADDRESS = {
  pattern: /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]*):\d{1,5}$/,
  expected: 'host:port, for example 0.0.0.0:8080 or [::]:8080',
};
const URL_EXPECTED = 'a URL';

const poolSettings = {
  max_connections: int(1, 10_000, 10, 'Largest number of connections in the pool.'),
  min_connections: int(
    0,
    10_000,
    0,
    'Connections kept open even when idle. Must not exceed max_connections.',
  ),
  connection_timeout_ms: int(
    100,
    10 * MINUTE_MS,
    5_000,
    'How long a query waits for a free connection before failing (pool exhausted).',
  ),
  idle_timeout_seconds: int(1, 86_400, 300, 'Close a connection idle this long (down to min_connections).'),
  max_lifetime_seconds: int(1, 7 * 86_400, 1_800, 'Recycle every connection after this long.'),
  statement_timeout_ms: int(
    100,
    24 * 60 * MINUTE_MS,
    30_000,
    'The longest one statement of the pool may run: PostgreSQL cancels it then (TASKER_STATEMENT_TIMEOUT, HTTP 503), so no request, sweep or scrape holds a connection without bound. Migrations are exempt.',
  ),
  idle_in_transaction_timeout_ms: int(
    100,
    24 * 60 * MINUTE_MS,
    60_000,
    'PostgreSQL ends a session that stays idle inside an open transaction this long (a stalled process), releasing its locks.',
  ),
};

const breaker = (errorThreshold: number, timeoutSeconds: number, halfOpenSeconds: number, what: string) =>
  table(
    {
      enabled: bool(
        true,
        `Whether the breaker guarding ${what} opens at all; when false it only counts failures (health, metrics).`,
      ),
      error_threshold: int(
        1,
        10_000,
        errorThreshold,
        'Consecutive connection failures that open the breaker; while open, calls fail at once (TASKER_CIRCUIT_OPEN, HTTP 503 with Retry-After). Errors the server answers (constraint violations) do not count, and calls that fail together (all backends terminated at once) count once.',
      ),
      timeout_seconds: int(
        1,
        86_400,
        timeoutSeconds,
        'The longest the breaker stays open. While open it probes the dependency (`SELECT 1`) 1 s after opening, then with doubling waits of at most 4 s, and lets trial calls through (half-open) as soon as a probe answers, so recovery takes about as long as the outage; without an answer, trial calls start after this many seconds.',
      ),
      half_open_timeout_seconds: int(
        1,
        86_400,
        halfOpenSeconds,
        'Seconds of half-open trial: the first successful call closes the breaker, a failure re-opens it, and so does the end of this window without a success.',
      ),
    },
    { description: `Circuit breaker guarding ${what}.` },
  );

const executorPool = (min: number, max: number, high: number, low: number, what: string) =>
  table(
    {
      min_executors: int(
        1,
        10_000,
        min,
        "Drains of the stage's queue allowed at once when it is short (capped at half of database.max_connections).",
      ),
      max_executors: int(
        1,
        10_000,
        max,
        'Drains allowed at once under load (capped at half of database.max_connections).',
      ),
      queue_high_watermark: int(1, 10_000_000, high, 'Queue depth above which concurrency grows toward max.'),
      queue_low_watermark: int(0, 10_000_000, low, 'Queue depth below which concurrency shrinks toward min.'),
    },
    { description: `Executor pool for ${what}.` },
  );

const pollingBackoff = {
  error_backoff_base_ms: int(1, HOUR_MS, 1_000, 'First wait after a failed poll; grows by the multiplier.'),
  error_backoff_max_ms: int(1, HOUR_MS, 30_000, 'Longest wait between failing polls.'),
  error_backoff_multiplier: decimal(1, 10, 2, 'Growth of the wait per consecutive failed poll.'),
};

const grpcSettings = (port: number) =>
  table(
    {
      enabled: bool(true, 'Serve gRPC.'),
      bind_address: text(`0.0.0.0:${port}`, 'Address and port of the gRPC server.', BIND_ADDRESS),
      enable_reflection: bool(true, 'Server reflection, so `grpcurl -plaintext host:port list` works.'),
      enable_health_service: bool(true, 'grpc.health.v1.Health and tasker.v1.HealthService.'),
    },
    { description: 'gRPC server (health checks, reflection).' },
  );

/** Asymmetric JWS algorithms only: `none` and HS* (a public key used as an HMAC secret) can never verify. */
export const JWT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;
const PERMISSION_GRANT = {
  pattern: PERMISSION_SYNTAX,
  expected: 'permissions `resource:action` or `resource:*` (`tasker auth show-permissions` lists them)',
};

const authSettings = (role: 'orchestration' | 'worker') =>
  table(
    {
      enabled: bool(
        false,
        'Require credentials (a JWT or an API key) on the API routes; liveness and readiness probes stay public. The production environment turns it on; turning it off there logs a warning at every start. TASKER_AUTH_ENABLED overrides it.',
      ),
      jwt_public_key: text(
        '',
        'PEM public key (`-----BEGIN PUBLIC KEY-----`) that verifies bearer tokens. At most one of jwt_public_key, jwt_public_key_path and jwks_url.',
        {
          pattern: /^(|\s*-----BEGIN PUBLIC KEY-----[\s\S]+-----END PUBLIC KEY-----\s*)$/,
          expected: 'empty, or a PEM public key (-----BEGIN PUBLIC KEY----- …)',
        },
      ),
      jwt_public_key_path: text('', 'File holding the PEM public key; read at start.', {
        pattern: /^.*$/,
        expected: 'empty, or a file path',
      }),
      jwks_url: text(
        '',
        'JSON Web Key Set URL (your identity provider’s `jwks_uri`); tokens pick their key by `kid`.',
        { pattern: /^(https?:\/\/.+)?$/, expected: 'empty, or an http(s):// URL' },
      ),
      jwks_refresh_interval_seconds: int(
        10,
        86_400,
        3_600,
        'The key set is fetched again when it is older than this (on the next request).',
      ),
      jwks_stale_grace_seconds: int(
        0,
        86_400,
        300,
        'When a refresh fails, the old key set keeps verifying for this long past its refresh time; then requests needing it get 503 TASKER_AUTH_UNAVAILABLE.',
      ),
      jwks_unknown_kid_cooldown_seconds: int(
        1,
        3_600,
        30,
        'A token whose `kid` is not in the key set triggers one refresh (a key rotated in), at most once per this many seconds, so random kids cannot flood the key server.',
      ),
      jwt_allowed_algorithms: list(
        {
          pattern: new RegExp(`^(${JWT_ALGORITHMS.join('|')})$`),
          expected: `asymmetric JWS algorithms (${JWT_ALGORITHMS.join(', ')}); "none" and HS* are refused: with a public key they let anyone forge tokens`,
        },
        ['RS256'],
        'Algorithms a token may be signed with (its `alg` header).',
        { min: 1 },
      ),
      jwt_issuer: text('', 'Required `iss` claim; empty: not checked.', {
        pattern: /^.{0,512}$/,
        expected: 'a string (empty: not checked)',
      }),
      jwt_audience: text('', 'Required `aud` claim (one of the token’s audiences); empty: not checked.', {
        pattern: /^.{0,512}$/,
        expected: 'a string (empty: not checked)',
      }),
      jwt_clock_skew_seconds: int(0, 600, 30, 'Tolerance on `exp` and `nbf` for clocks that disagree.'),
      permissions_claim: text('permissions', 'Claim holding the token’s permissions (an array of strings).', {
        pattern: /^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$/,
        expected: 'a claim name',
      }),
      api_keys: tableList(
        {
          key: text('', 'The key itself (at least 16 characters).', {
            pattern: /^(.{16,})?$/,
            expected: 'empty, or a key of at least 16 characters',
            secret: true,
          }),
          key_env: text('', 'Name of an environment variable holding the key.', {
            pattern: /^([A-Za-z_][A-Za-z0-9_]*)?$/,
            expected: 'empty, or an environment variable name',
          }),
          key_file: text('', 'File holding the key (a Docker or Kubernetes secret); read at start.', {
            pattern: /^.*$/,
            expected: 'empty, or a file path',
          }),
          permissions: list(PERMISSION_GRANT, [], 'What the key may do.'),
          description: text('', 'Who holds the key, for operators (never logged with the key).', {
            pattern: /^.{0,200}$/,
            expected: 'a string of at most 200 characters',
          }),
        },
        `Keys accepted in the X-API-Key header, as [[${role}.web.auth.api_keys]] tables, each with exactly one of key, key_env or key_file, plus permissions and description. Keys are held as SHA-256 digests and compared in constant time.`,
        'an array of tables {key | key_env | key_file, permissions, description}',
        'One API key.',
      ),
      strict_validation: bool(
        true,
        'Unknown permission strings are errors: in api_keys at start (naming the key), in a token 401. False: they grant nothing.',
      ),
      protect_operational_endpoints: bool(
        false,
        '/health/detailed, /metrics and the OpenAPI document and UI require a valid credential (any permission, an API key with none will do). False: public like the probes, so Prometheus scrapes without a secret; they carry no secrets or task data.',
      ),
    },
    {
      description: `Authentication and permissions of the ${role} HTTP API (docs/security.md). /health, /health/live and /health/ready are always public, and so is gRPC (it serves only health).`,
    },
  );

const webSettings = <Extra extends object>(port: number, role: 'orchestration' | 'worker', extra: Extra) =>
  table(
    {
      enabled: bool(true, 'Serve the REST API and health endpoints.'),
      bind_address: text(`0.0.0.0:${port}`, 'Address and port of the HTTP server.', BIND_ADDRESS),
      request_timeout_ms: int(100, 10 * MINUTE_MS, 30_000, 'Longest time a request may take.'),
      body_limit_bytes: int(1_024, 100 * 1_048_576, 1_048_576, 'Largest request body accepted (413 beyond).'),
      ...extra,
      auth: authSettings(role),
    },
    { description: 'HTTP server.' },
  );

const listenerSettings = (reconnectMs: number, healthCheckMs: number) => ({
  listener_reconnect_interval_ms: int(
    10,
    10 * MINUTE_MS,
    reconnectMs,
    'First delay before re-opening a lost LISTEN connection; doubles per failure (with jitter).',
  ),
  listener_health_check_interval_ms: int(
    100,
    HOUR_MS,
    healthCheckMs,
    'How often the listener proves notifications still arrive (a NOTIFY to itself).',
  ),
});

/** `[<role>.hybrid]`: the same keys for orchestration and worker. */
const hybridSettings = (notifications: string, description: string) =>
  table(
    {
      enable_event_listeners: bool(true, `LISTEN for ${notifications}.`),
      ...listenerSettings(5_000, 30_000),
      enable_polling_fallback: bool(true, 'Poll as a safety net and when listeners fail.'),
      polling_interval_ms: int(10, HOUR_MS, 1_000, 'Safety-net polling interval.'),
      fallback_activation_threshold_ms: int(
        10,
        HOUR_MS,
        5_000,
        'Listener down or lagging this long switches polling to active fallback.',
      ),
    },
    { description },
  );

export const configSchema = table(
  {
    database: table(
      {
        url: text(DEVELOPMENT_DATABASE_URL, 'PostgreSQL URL, or pglite:<folder>.', {
          pattern: /^(postgres(ql)?:\/\/.+|pglite:.+)$/,
          expected: 'a postgres://… or pglite:<folder> URL',
          secret: true,
        }),
        listen_url: text(
          '',
          'A direct PostgreSQL URL for the LISTEN connection when `url` goes through a transaction pooler (PgBouncer in transaction mode loses LISTEN); empty: `url`.',
          {
            pattern: /^(postgres(ql)?:\/\/.+)?$/,
            expected: 'empty, or a postgres://… URL',
            secret: true,
          },
        ),
        ...poolSettings,
        query_cache: table(
          {
            // Off by default: the only invalidation is the TTL, and development re-registers templates under
            // the same version as they are edited. Each creation then reads its template once. Production
            // turns it on: that read halved in-process creation throughput (bench/README.md).
            enabled: bool(
              false,
              'Cache template lookups in memory. Off: each task creation reads its template once, and a template a worker re-registers with changes is used from the next task on. On: no read while cached, but a template changed under the same version is used only after `ttl_seconds` (a new version is found at once).',
            ),
            max_size: int(1, 1_000_000, 1_000, 'Most cached entries.'),
            ttl_seconds: int(
              1,
              86_400,
              300,
              'Seconds an entry stays cached (a re-registered template is seen after it).',
            ),
          },
          {
            description:
              'In-process cache for read-mostly queries (task templates looked up at task creation).',
          },
        ),
      },
      { description: 'The PostgreSQL database and its connection pool.' },
    ),

    limits: table(
      {
        max_steps_per_task: int(
          1,
          100_000,
          DEFAULT_TASK_LIMITS.maxStepsPerTask,
          'Most steps a template (and so a task) may have: workers refuse a larger template when they load it, task creation refuses it (TASKER_LIMIT_EXCEEDED).',
        ),
        max_context_bytes: int(
          2,
          256 * 1_048_576,
          DEFAULT_TASK_LIMITS.maxContextBytes,
          "Most bytes of a task's context as JSON, however it is created (REST, library, task-request queue); larger is refused with TASKER_LIMIT_EXCEEDED.",
        ),
        max_result_bytes: int(
          4,
          256 * 1_048_576,
          DEFAULT_TASK_LIMITS.maxResultBytes,
          "Most bytes of one step's result as JSON: a handler returning more fails its step for good (not retried), with a message naming the size.",
        ),
      },
      { description: 'How much work one request may cause: steps per task, context and result sizes.' },
    ),

    messaging: table(
      {
        backend: oneOf(
          MESSAGING_BACKENDS,
          'pgmq',
          'Queue backend: PGMQ-style queues in PostgreSQL, or RabbitMQ.',
          {
            pending: RABBITMQ_PENDING,
          },
        ),
      },
      { description: 'Which message queue carries work between services.' },
    ),

    pgmq: table(
      {
        visibility_timeout_seconds: int(
          1,
          43_200,
          30,
          'Seconds a received message stays invisible to other consumers (extended while a step runs).',
        ),
        heartbeat_interval_ms: int(
          100,
          HOUR_MS,
          30_000,
          "How often the LISTEN connection of tools without a role (demo, queue commands) is proven alive by a NOTIFY to itself; the services use their mode's listener_health_check_interval_ms.",
        ),
        heartbeat_timeout_ms: int(10, MINUTE_MS, 5_000, 'How long that NOTIFY may take to come back.'),
        reconnect_max_ms: int(
          10,
          HOUR_MS,
          4_000,
          'Cap on the delay between LISTEN reconnection attempts: after an outage, the LISTEN connection (and with it an EventDrivenOnly process) is back at most this long after the database. Attempts are one connection each.',
        ),
      },
      { description: 'The PGMQ-compatible queue in PostgreSQL and its notification listener.' },
    ),

    rabbitmq: table(
      {
        url: text('amqp://guest:guest@127.0.0.1:5672/%2F', 'AMQP URL of the broker.', {
          pattern: /^amqps?:\/\/.+/,
          expected: 'an amqp:// or amqps:// URL',
          secret: true,
          pending: RABBITMQ_PENDING,
        }),
        prefetch_count: int(1, 65_535, 100, 'Unacknowledged deliveries per consumer.', {
          pending: RABBITMQ_PENDING,
        }),
        heartbeat_seconds: int(0, 3_600, 30, 'AMQP heartbeat; 0 disables.', { pending: RABBITMQ_PENDING }),
      },
      { description: 'RabbitMQ, when messaging.backend = "rabbitmq".', pending: RABBITMQ_PENDING },
    ),

    orchestration: table(
      {
        deployment_mode: oneOf(DEPLOYMENT_MODES, 'Hybrid', 'How this orchestrator learns of work.'),
        max_concurrent_tasks: int(1, 1_000_000, 100, 'Tasks processed at once by this orchestrator.', {
          pending: ENGINE_PENDING,
        }),
        task_timeout_seconds: int(
          60,
          365 * 86_400,
          3_600,
          'An unfinished task older than this is moved to error with a DLQ entry by the staleness detector (template lifecycle.max_duration_minutes overrides).',
        ),
        shutdown_timeout_ms: int(
          0,
          10 * MINUTE_MS,
          30_000,
          'How long a stop (SIGTERM) may take: in-flight requests and drains finish within it; then the database statements still running are cancelled and the stop ends within 2 s more (the process exits 10 s after the deadline at the latest).',
        ),
        hybrid: hybridSettings('queue notifications', 'Hybrid mode: listeners first, polling as fallback.'),
        event_driven: table(
          {
            ...listenerSettings(2_000, 15_000),
            max_reconnect_attempts: int(
              0,
              1_000_000,
              10,
              'Failed reconnects in a row before the listener is declared unhealthy.',
            ),
            channels: list(
              CHANNEL,
              ['pgmq_message_ready.orchestration', 'pgmq_message_ready.*', 'pgmq_queue_created'],
              'Notification channels to LISTEN on; `.*` expands to every known namespace.',
              { min: 1 },
            ),
            listener_pool_size: int(
              1,
              100,
              5,
              'Accepted for compatibility with tasker-core; one LISTEN connection per process carries every channel, so no pool is needed.',
            ),
            connection_timeout_ms: int(
              100,
              10 * MINUTE_MS,
              5_000,
              'Timeout opening the LISTEN connection (a timed-out attempt counts toward max_reconnect_attempts).',
            ),
          },
          { description: 'EventDrivenOnly mode: LISTEN/NOTIFY only, no polling.' },
        ),
        polling: table(
          {
            task_request_poll_interval_ms: int(
              10,
              HOUR_MS,
              1_000,
              'Poll orchestration_task_requests this often.',
            ),
            step_result_poll_interval_ms: int(
              10,
              HOUR_MS,
              500,
              'Poll orchestration_step_results this often.',
            ),
            finalization_poll_interval_ms: int(
              10,
              HOUR_MS,
              2_000,
              'Poll orchestration_task_finalizations this often.',
            ),
            batch_size: int(1, 10_000, 10, 'Messages read per queue read.'),
            max_messages_per_poll: int(1, 1_000_000, 100, 'Most messages handled in one polling cycle.'),
            ...pollingBackoff,
          },
          { description: 'PollingOnly mode (and the polling side of Hybrid).' },
        ),
        worker_events: table(
          {
            enable_worker_listeners: bool(
              true,
              'LISTEN for notifications on orchestration_step_results (results routed through orchestration); false: that queue is polled at step_result_poll_interval_ms instead, in every mode.',
            ),
            worker_listener_reconnect_ms: int(
              10,
              10 * MINUTE_MS,
              5_000,
              "Accepted for compatibility with tasker-core; step-result notifications share the process's one LISTEN connection, which reconnects per the mode's listener_reconnect_interval_ms.",
            ),
          },
          { description: 'Notifications from workers to orchestration.' },
        ),
        staleness: table(
          {
            enabled: bool(
              true,
              'Run the staleness detector: a task without progress past its threshold moves to error with a DLQ entry.',
            ),
            detection_interval_seconds: int(
              1,
              86_400,
              300,
              'Seconds between detector runs (every orchestrator runs one; row locks keep them apart).',
            ),
            batch_size: int(1, 10_000, 100, 'Most tasks moved to error per run.'),
            waiting_for_dependencies_minutes: int(
              1,
              525_600,
              60,
              'Minutes without progress allowed in pending and waiting_for_dependencies (template lifecycle.max_waiting_for_dependencies_minutes overrides).',
            ),
            waiting_for_retry_minutes: int(
              1,
              525_600,
              30,
              'Minutes without progress allowed in waiting_for_retry, past a scheduled retry (template lifecycle.max_waiting_for_retry_minutes overrides).',
            ),
            steps_in_process_minutes: int(
              1,
              525_600,
              30,
              'Minutes without progress (no task or step transition) allowed in steps_in_process and the other active states (template lifecycle.max_steps_in_process_minutes overrides).',
            ),
            dry_run: bool(false, 'Only log the tasks that are stale; change nothing.'),
          },
          { description: 'Staleness detection and the dead-letter queue (DLQ).' },
        ),
        retention: table(
          {
            enabled: bool(
              true,
              'Delete finished tasks and archived queue messages once they are older than their retention (every orchestrator sweeps; row locks keep them apart).',
            ),
            sweep_interval_seconds: int(10, 86_400, 300, 'Seconds between retention sweeps.'),
            finished_task_hours: int(
              1,
              876_000,
              720,
              'Hours a task is kept after it reached complete, error, cancelled or resolved_manually; then it goes with its steps, transitions, result audit and resolved DLQ entries. A task with a pending DLQ entry is kept.',
            ),
            queue_archive_hours: int(
              1,
              876_000,
              168,
              'Hours an archived queue message (pgmq.a_<queue>) is kept.',
            ),
            batch_size: int(
              1,
              100_000,
              1_000,
              'Most tasks (and, per queue, archive rows) deleted in one commit; a sweep repeats batches until one comes back short or it has run for one interval.',
            ),
          },
          {
            description:
              'Retention: bounded table growth. Finished tasks and archived messages are deleted after their retention; running tasks and live messages never are.',
          },
        ),
        health: table(
          {
            health_check_interval_ms: int(
              100,
              HOUR_MS,
              30_000,
              "How often /health's checks also run in the background (every /health request runs them too).",
            ),
            unhealthy_threshold: int(
              1,
              1_000,
              3,
              'Failed evaluations in a row before /health reports unhealthy (1: at once).',
            ),
            recovery_threshold: int(
              1,
              1_000,
              2,
              'Passed evaluations in a row before /health reports healthy again.',
            ),
          },
          {
            description:
              'Health evaluation of the orchestration /health endpoint: hysteresis, so one slow check does not flip a probe. /health/ready, /health/live and gRPC readiness answer their live checks.',
          },
        ),
        web: webSettings(8080, 'orchestration', {
          // Only orchestration serves long polls.
          max_waiting_requests: int(
            1,
            100_000,
            500,
            'Most `?wait=` requests (long polls) waiting at once; beyond it they are answered 503 with Retry-After at once. Waiters cost memory, not queries: one LISTEN and one batched check per second serve them all.',
          ),
        }),
        grpc: grpcSettings(9190),
      },
      { description: 'The orchestration service.' },
    ),

    worker: table(
      {
        deployment_mode: oneOf(DEPLOYMENT_MODES, 'Hybrid', 'How this worker learns of work.'),
        namespaces: list(
          NAMESPACE,
          [],
          'Namespaces this worker serves (queues worker_<namespace>_queue); empty means those of its templates.',
        ),
        handlers_module: text(
          '',
          'Module exporting the step handlers (TypeScript or JavaScript); TASKER_HANDLERS_MODULE or --handlers override it.',
          { pattern: /^.*$/, expected: 'a module path, or empty for none' },
        ),
        template_paths: list(
          { pattern: /^.+$/, expected: 'folders or files of task templates' },
          [],
          'Where task templates (YAML) are read; TASKER_TEMPLATE_PATH (":"-separated) or --templates override it.',
        ),
        max_concurrent_handlers: int(
          1,
          100_000,
          10,
          'Handlers running at once; more work waits in the queue.',
        ),
        handler_timeout_ms: int(
          10,
          7 * 24 * HOUR_MS,
          30_000,
          'Default per-step timeout (templates may override).',
        ),
        shutdown_timeout_ms: int(
          0,
          10 * MINUTE_MS,
          30_000,
          'On SIGTERM, how long running handlers may finish before their steps are handed back.',
        ),
        apply_results_inline: bool(
          true,
          "Apply a step's result in the worker's completing commit (one commit per step) instead of through orchestration_step_results.",
        ),
        hybrid: hybridSettings('step notifications', 'Hybrid mode for the worker.'),
        event_driven: table(
          {
            ...listenerSettings(2_000, 15_000),
            max_reconnect_attempts: int(
              0,
              1_000_000,
              10,
              'Failed reconnects in a row before the listener is declared unhealthy.',
            ),
          },
          { description: 'EventDrivenOnly mode for the worker.' },
        ),
        polling: table(
          {
            polling_interval_ms: int(10, HOUR_MS, 1_000, 'Poll each namespace queue this often.'),
            batch_size: int(1, 10_000, 10, 'Messages read per queue read.'),
            ...pollingBackoff,
          },
          { description: 'PollingOnly mode for the worker.' },
        ),
        web: webSettings(8081, 'worker', {}),
        grpc: grpcSettings(9191),
      },
      { description: 'The worker service.' },
    ),

    circuit_breakers: table(
      {
        database: breaker(5, 60, 30, 'database access'),
        message_queue: breaker(10, 120, 60, 'the message queue'),
      },
      { description: 'Circuit breakers, by the dependency they guard.' },
    ),

    executor_pools: table(
      {
        task_initializer: executorPool(2, 10, 100, 10, 'task creation'),
        result_processor: executorPool(5, 20, 200, 20, 'step result processing'),
        step_enqueuer: executorPool(3, 15, 150, 15, 'step enqueueing'),
      },
      {
        description:
          'Elastic concurrency of the orchestration stages: task_initializer (orchestration_task_requests), result_processor (orchestration_step_results), step_enqueuer (orchestration_task_finalizations). The queue depth is sampled every second.',
      },
    ),

    telemetry: table(
      {
        log_level: oneOf(LOG_LEVELS, 'info', 'Lowest level written to the log on stderr.'),
        log_format: oneOf(
          ['auto', 'json', 'pretty'] as const,
          'auto',
          'Log line format on stderr: `json` (one JSON object per line, for log collectors), `pretty` (one human-readable line per event: time, level, component, message, key=value fields) or `auto` (pretty in the development environment when stderr is a terminal, json otherwise).',
        ),
        service_name: text(
          'tasker',
          'service.name of the exported spans (OTEL_SERVICE_NAME overrides it); `tasker.role` tells orchestration and worker apart.',
        ),
        metrics: table(
          {
            enabled: bool(
              true,
              'Serve Prometheus metrics at /metrics on the orchestration and worker HTTP ports (docs/operations.md).',
            ),
          },
          { description: 'Prometheus metrics.' },
        ),
        tracing: table(
          {
            enabled: bool(
              false,
              'Export OpenTelemetry spans of tasks and steps (create, claim, execute, result); one trace per task, its id the task UUID.',
            ),
            otlp_endpoint: text(
              'http://127.0.0.1:4318',
              'OTLP/HTTP collector base URL; spans go to <otlp_endpoint>/v1/traces. OTEL_EXPORTER_OTLP_ENDPOINT overrides it.',
              { pattern: /^https?:\/\/.+/, expected: URL_EXPECTED },
            ),
            sample_ratio: decimal(
              0,
              1,
              1,
              "Fraction of tasks traced, decided from the task's trace id alike in every process.",
            ),
          },
          { description: 'OpenTelemetry tracing (docs/decisions/0006-opentelemetry.md).' },
        ),
      },
      { description: 'Logs, metrics and traces.' },
    ),
  },
  { description: 'Tasker configuration.' },
);

export type TaskerConfig = z.output<typeof configSchema>;
