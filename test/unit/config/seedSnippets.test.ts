import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import { poolOptions } from '../../../src/services/runtimeOptions.ts';
import {
  REPO_ROOT,
  SEED_DOCUMENT,
  SEED_FIXTURES,
  seedRoot,
  seedScenario,
  seedScenarios,
} from './configTestKit.ts';

/**
 * Every TOML block of the seed (docs "Deployment Patterns and Configuration") that is Tasker configuration,
 * copied verbatim into test/fixtures/config/seed/<scenario>/<file>.toml, loaded as the environment
 * `<scenario>` over the shipped base, and checked to mean what the seed says.
 */

const ORCHESTRATION = (scenario: string): string => `environments/${scenario}/orchestration.toml`;

describe('seed fixtures are verbatim copies of the seed', () => {
  it('has the fourteen snippets, one folder per scenario', () => {
    expect(seedScenarios()).toEqual([
      'event-driven-only',
      'grpc',
      'hybrid',
      'migration-step1',
      'migration-step3',
      'polling-only',
      'production',
      'production-polling-batch',
      'production-tuning',
      'rollback',
    ]);
    const files = seedScenarios().flatMap((scenario) =>
      Object.keys(seedScenario(scenario)).map((file) => `${scenario}/${file}`),
    );
    expect(files).toHaveLength(14);
  });

  it.skipIf(!existsSync(SEED_DOCUMENT))('each fixture occurs character for character in the seed', () => {
    const seed = readFileSync(SEED_DOCUMENT, 'utf8');
    for (const scenario of seedScenarios()) {
      for (const [file, text] of Object.entries(seedScenario(scenario))) {
        expect(text.endsWith('\n'), `${scenario}/${file} ends with a newline`).toBe(true);
        expect(seed.includes(text), `${scenario}/${file} is not verbatim`).toBe(true);
      }
    }
  });

  it('keeps the comments of the seed', () => {
    expect(seedScenario('hybrid')['orchestration.toml']).toContain(
      '# Worker event settings\n[orchestration.worker_events]\n',
    );
    expect(seedScenario('grpc')['orchestration.toml']).toContain(
      'enable_reflection = true       # Service discovery via grpcurl\n',
    );
    expect(seedScenario('rollback')['orchestration.toml']).toBe(
      '# Immediate rollback to PollingOnly\n[orchestration]\ndeployment_mode = "PollingOnly"\n\n' +
        '[orchestration.polling]\ntask_request_poll_interval_ms = 500    # Aggressive polling\n',
    );
    expect(readFileSync(join(SEED_FIXTURES, 'migration-step3', 'orchestration.toml'), 'utf8')).toBe(
      '# Once event listeners are stable\n[orchestration.hybrid]\n' +
        'polling_interval_ms = 5000        # Increase from 1000ms to 5000ms\n',
    );
  });
});

describe('seed snippets loaded over the shipped base', () => {
  it('Hybrid: listeners first, polling fallback every second, worker listeners on', () => {
    const loaded = seedRoot('hybrid').load({ TASKER_ENV: 'hybrid' });
    const { orchestration } = loaded.config;
    expect(loaded.environment).toBe('hybrid');
    expect(loaded.files.at(-1)).toBe(ORCHESTRATION('hybrid'));
    expect(orchestration.deployment_mode).toBe('Hybrid');
    expect(orchestration.hybrid).toEqual({
      enable_event_listeners: true,
      listener_reconnect_interval_ms: 5000,
      listener_health_check_interval_ms: 30000,
      enable_polling_fallback: true,
      polling_interval_ms: 1000,
      fallback_activation_threshold_ms: 5000,
    });
    expect(orchestration.worker_events).toEqual({
      enable_worker_listeners: true,
      worker_listener_reconnect_ms: 5000,
    });
    // The values equal the base; provenance proves the snippet is what set them.
    for (const key of [
      'orchestration.deployment_mode',
      'orchestration.hybrid.fallback_activation_threshold_ms',
      'orchestration.worker_events.enable_worker_listeners',
      'orchestration.worker_events.worker_listener_reconnect_ms',
    ]) {
      expect(loaded.provenance.get(key), key).toBe(ORCHESTRATION('hybrid'));
    }
    expect(loaded.provenance.get('orchestration.polling.batch_size')).toBe('base/orchestration.toml');
  });

  it('EventDrivenOnly: the three channels in order, 5 listener connections, 10 reconnect attempts', () => {
    const loaded = seedRoot('event-driven-only').load({ TASKER_ENV: 'event-driven-only' });
    const { orchestration } = loaded.config;
    expect(orchestration.deployment_mode).toBe('EventDrivenOnly');
    expect(orchestration.event_driven).toEqual({
      listener_reconnect_interval_ms: 2000,
      listener_health_check_interval_ms: 15000,
      max_reconnect_attempts: 10,
      channels: ['pgmq_message_ready.orchestration', 'pgmq_message_ready.*', 'pgmq_queue_created'],
      listener_pool_size: 5,
      connection_timeout_ms: 5000,
    });
    expect(loaded.provenance.get('orchestration.event_driven.channels')).toBe(
      ORCHESTRATION('event-driven-only'),
    );
    // The worker keeps its own mode: the snippet is about orchestration only.
    expect(loaded.config.worker.deployment_mode).toBe('Hybrid');
  });

  it('PollingOnly: 1000/500/2000 ms intervals, batches of 10, backoff 1s doubling up to 30s', () => {
    const loaded = seedRoot('polling-only').load({ TASKER_ENV: 'polling-only' });
    expect(loaded.config.orchestration.deployment_mode).toBe('PollingOnly');
    expect(loaded.config.orchestration.polling).toEqual({
      task_request_poll_interval_ms: 1000,
      step_result_poll_interval_ms: 500,
      finalization_poll_interval_ms: 2000,
      batch_size: 10,
      max_messages_per_poll: 100,
      error_backoff_base_ms: 1000,
      error_backoff_max_ms: 30000,
      error_backoff_multiplier: 2,
    });
    expect(loaded.provenance.get('orchestration.polling.error_backoff_multiplier')).toBe(
      ORCHESTRATION('polling-only'),
    );
  });

  it('production batch processing: longer intervals and larger batches; backoff kept from the base', () => {
    const loaded = seedRoot('production-polling-batch').load({ TASKER_ENV: 'production-polling-batch' });
    expect(loaded.config.orchestration.deployment_mode).toBe('PollingOnly');
    expect(loaded.config.orchestration.polling).toEqual({
      task_request_poll_interval_ms: 5000,
      step_result_poll_interval_ms: 2000,
      finalization_poll_interval_ms: 10000,
      batch_size: 50,
      max_messages_per_poll: 500,
      error_backoff_base_ms: 1000,
      error_backoff_max_ms: 30000,
      error_backoff_multiplier: 2,
    });
    expect(loaded.provenance.get('orchestration.polling.batch_size')).toBe(
      ORCHESTRATION('production-polling-batch'),
    );
    expect(loaded.provenance.get('orchestration.polling.error_backoff_max_ms')).toBe(
      'base/orchestration.toml',
    );
  });

  it('production orchestration: Hybrid, 1000 tasks, 2s fallback polling, health thresholds 3/2', () => {
    const loaded = seedRoot('production').load({ TASKER_ENV: 'production' });
    const { orchestration } = loaded.config;
    expect(orchestration.deployment_mode).toBe('Hybrid');
    expect(orchestration.max_concurrent_tasks).toBe(1000);
    expect(orchestration.task_timeout_seconds).toBe(3600);
    expect(orchestration.hybrid).toEqual({
      enable_event_listeners: true,
      listener_reconnect_interval_ms: 5000, // not in the snippet: from the base
      listener_health_check_interval_ms: 30000,
      enable_polling_fallback: true,
      polling_interval_ms: 2000,
      fallback_activation_threshold_ms: 10000,
    });
    expect(orchestration.health).toEqual({
      health_check_interval_ms: 30000,
      unhealthy_threshold: 3,
      recovery_threshold: 2,
    });
    expect(loaded.provenance.get('orchestration.health.unhealthy_threshold')).toBe(
      'environments/production/orchestration.toml',
    );
    expect(loaded.provenance.get('orchestration.hybrid.listener_reconnect_interval_ms')).toBe(
      'base/orchestration.toml',
    );
  });

  it('production database: pool 50/10, 5s acquire timeout, idle 600s, lifetime 1800s, query cache on', () => {
    const loaded = seedRoot('production').load({ TASKER_ENV: 'production' });
    const { database } = loaded.config;
    expect(database).toEqual({
      url: 'postgres://root@127.0.0.1:5432/tasker_development', // the snippet sets no url
      listen_url: '',
      max_connections: 50,
      min_connections: 10,
      connection_timeout_ms: 5000,
      idle_timeout_seconds: 600,
      max_lifetime_seconds: 1800,
      statement_timeout_ms: 30000, // not in the seed: Tasker's own bound on every statement
      idle_in_transaction_timeout_ms: 60000,
      query_cache: { enabled: true, max_size: 1000, ttl_seconds: 300 },
    });
    // What the pool is actually given.
    expect(poolOptions(loaded.config)).toEqual({
      maxConnections: 50,
      minConnections: 10,
      connectionTimeoutMs: 5000,
      idleTimeoutSeconds: 600,
      maxLifetimeSeconds: 1800,
      statementTimeoutMs: 30000,
      idleInTransactionTimeoutMs: 60000,
      listenUrl: '',
    });
    expect(loaded.provenance.get('database.query_cache.enabled')).toBe(
      'environments/production/database.toml',
    );
    expect(loaded.provenance.get('database.url')).toBe('base/database.toml');
  });

  it('production circuit breakers: database 5 errors/60s/30s, message queue 10 errors/120s/60s', () => {
    const loaded = seedRoot('production').load({ TASKER_ENV: 'production' });
    expect(loaded.config.circuit_breakers).toEqual({
      database: { enabled: true, error_threshold: 5, timeout_seconds: 60, half_open_timeout_seconds: 30 },
      message_queue: {
        enabled: true,
        error_threshold: 10,
        timeout_seconds: 120,
        half_open_timeout_seconds: 60,
      },
    });
    expect(loaded.provenance.get('circuit_breakers.message_queue.timeout_seconds')).toBe(
      'environments/production/circuit_breakers.toml',
    );
  });

  it('production executor pools: min/max executors and queue watermarks of the three stages', () => {
    const loaded = seedRoot('production').load({ TASKER_ENV: 'production' });
    expect(loaded.config.executor_pools).toEqual({
      task_initializer: {
        min_executors: 2,
        max_executors: 10,
        queue_high_watermark: 100,
        queue_low_watermark: 10,
      },
      result_processor: {
        min_executors: 5,
        max_executors: 20,
        queue_high_watermark: 200,
        queue_low_watermark: 20,
      },
      step_enqueuer: {
        min_executors: 3,
        max_executors: 15,
        queue_high_watermark: 150,
        queue_low_watermark: 15,
      },
    });
    expect(loaded.provenance.get('executor_pools.step_enqueuer.queue_low_watermark')).toBe(
      'environments/production/executor_pools.toml',
    );
    expect(loaded.files).toEqual([
      'base/circuit_breakers.toml',
      'base/database.toml',
      'base/executor_pools.toml',
      'base/orchestration.toml',
      'base/pgmq.toml',
      'base/query_cache.toml',
      'base/rabbitmq.toml',
      'base/telemetry.toml',
      'base/worker.toml',
      'environments/production/circuit_breakers.toml',
      'environments/production/database.toml',
      'environments/production/executor_pools.toml',
      'environments/production/orchestration.toml',
    ]);
  });

  it('the commented production tuning snippets (pool, breakers) mean the same as the plain ones', () => {
    const tuning = seedRoot('production-tuning').load({ TASKER_ENV: 'production-tuning' }).config;
    const production = seedRoot('production').load({ TASKER_ENV: 'production' }).config;
    expect(poolOptions(tuning)).toEqual(poolOptions(production));
    expect(tuning.circuit_breakers).toEqual(production.circuit_breakers);
    // The tuning snippet has no [database.query_cache]: the base keeps it off.
    expect(tuning.database.query_cache.enabled).toBe(false);
  });

  it('the shipped production environment holds the seed values', () => {
    const shipped = loadConfig({ env: { TASKER_ENV: 'production' }, cwd: REPO_ROOT }).config;
    const seed = seedRoot('production').load({ TASKER_ENV: 'production' }).config;
    // Beyond the seed (which predates auth): production requires credentials (docs/security.md).
    expect(shipped.orchestration.web.auth.enabled).toBe(true);
    const withSeedAuth = { ...shipped.orchestration.web, auth: seed.orchestration.web.auth };
    expect({ ...shipped.orchestration, web: withSeedAuth }).toEqual(seed.orchestration);
    expect(shipped.circuit_breakers).toEqual(seed.circuit_breakers);
    expect(shipped.executor_pools).toEqual(seed.executor_pools);
    expect({ ...shipped.database, url: 'ignored' }).toEqual({ ...seed.database, url: 'ignored' });
  });

  describe('[orchestration.grpc] with ${TASKER_ORCHESTRATION_GRPC_BIND_ADDRESS:-0.0.0.0:9190}', () => {
    it('binds 0.0.0.0:9190 when the variable is unset', () => {
      const loaded = seedRoot('grpc').load({ TASKER_ENV: 'grpc' });
      expect(loaded.config.orchestration.grpc).toEqual({
        enabled: true,
        bind_address: '0.0.0.0:9190',
        enable_reflection: true,
        enable_health_service: true,
      });
      expect(loaded.provenance.get('orchestration.grpc.bind_address')).toBe(ORCHESTRATION('grpc'));
    });

    it('binds the address of the variable when it is set', () => {
      const loaded = seedRoot('grpc').load({
        TASKER_ENV: 'grpc',
        TASKER_ORCHESTRATION_GRPC_BIND_ADDRESS: '127.0.0.1:19190',
      });
      expect(loaded.config.orchestration.grpc.bind_address).toBe('127.0.0.1:19190');
      // Only the orchestration server: the worker's gRPC keeps its own address.
      expect(loaded.config.worker.grpc.bind_address).toBe('0.0.0.0:9191');
    });

    it('falls back to the default when the variable is set but empty', () => {
      const loaded = seedRoot('grpc').load({
        TASKER_ENV: 'grpc',
        TASKER_ORCHESTRATION_GRPC_BIND_ADDRESS: '',
      });
      expect(loaded.config.orchestration.grpc.bind_address).toBe('0.0.0.0:9190');
    });

    it('reports a variable that holds an invalid address, naming the file and key', () => {
      const root = seedRoot('grpc');
      expect(
        root.formatted({ TASKER_ENV: 'grpc', TASKER_ORCHESTRATION_GRPC_BIND_ADDRESS: 'localhost' }),
      ).toEqual([
        'environments/grpc/orchestration.toml: orchestration.grpc.bind_address: expected host:port, for example 0.0.0.0:8080 or [::]:8080, found "localhost"',
      ]);
    });
  });

  it('migration step 1: Hybrid with listeners on and polling kept on', () => {
    const loaded = seedRoot('migration-step1').load({ TASKER_ENV: 'migration-step1' });
    expect(loaded.config.orchestration.deployment_mode).toBe('Hybrid');
    expect(loaded.config.orchestration.hybrid.enable_event_listeners).toBe(true);
    expect(loaded.config.orchestration.hybrid.enable_polling_fallback).toBe(true);
    expect(loaded.provenance.get('orchestration.hybrid.enable_polling_fallback')).toBe(
      ORCHESTRATION('migration-step1'),
    );
  });

  it('migration step 3: fallback polling slowed from 1000 ms to 5000 ms, nothing else changed', () => {
    const root = seedRoot('migration-step3');
    const loaded = root.load({ TASKER_ENV: 'migration-step3' });
    expect(loaded.config.orchestration.hybrid.polling_interval_ms).toBe(5000);
    const before = root.load({
      TASKER_ENV: 'migration-step3',
      TASKER_CONFIG_PATH: `${root.folder}/base/orchestration.toml`,
    });
    expect(before.config.orchestration.hybrid.polling_interval_ms).toBe(1000);
    expect({ ...loaded.config.orchestration.hybrid, polling_interval_ms: 0 }).toEqual({
      ...before.config.orchestration.hybrid,
      polling_interval_ms: 0,
    });
    expect(loaded.config.orchestration.deployment_mode).toBe('Hybrid');
  });

  it('rollback: PollingOnly with aggressive 500 ms task request polling; other intervals from the base', () => {
    const loaded = seedRoot('rollback').load({ TASKER_ENV: 'rollback' });
    expect(loaded.config.orchestration.deployment_mode).toBe('PollingOnly');
    expect(loaded.config.orchestration.polling.task_request_poll_interval_ms).toBe(500);
    expect(loaded.config.orchestration.polling.finalization_poll_interval_ms).toBe(2000);
    expect(loaded.provenance.get('orchestration.polling.task_request_poll_interval_ms')).toBe(
      ORCHESTRATION('rollback'),
    );
    expect(loaded.provenance.get('orchestration.polling.finalization_poll_interval_ms')).toBe(
      'base/orchestration.toml',
    );
  });

  it("the seed's Kubernetes DEPLOYMENT_MODE=EventDrivenOnly turns the production Hybrid pod event-driven", () => {
    const loaded = seedRoot('production').load({
      TASKER_ENV: 'production',
      DEPLOYMENT_MODE: 'EventDrivenOnly',
    });
    expect(loaded.config.orchestration.deployment_mode).toBe('EventDrivenOnly');
    expect(loaded.provenance.get('orchestration.deployment_mode')).toBe(
      'environment variable DEPLOYMENT_MODE',
    );
    // The rest of the production file still applies.
    expect(loaded.config.orchestration.max_concurrent_tasks).toBe(1000);
  });
});
