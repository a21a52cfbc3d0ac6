import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import { ConfigError } from '../../../src/domain/errors.ts';
import { PgmqMessagingProvider } from '../../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import { CircuitBreakerDatabase } from '../../../src/resilience/circuitBreakerDatabase.ts';
import { CircuitBreakerMessagingProvider } from '../../../src/resilience/circuitBreakerMessagingProvider.ts';
import { createServiceCircuitBreakers } from '../../../src/resilience/serviceCircuitBreakers.ts';
import { createPgliteDatabase } from '../../helpers/testDatabase.ts';
import { createMemoryLogger, LOG_LEVEL } from '../../helpers/engine/memoryLogger.ts';

function configFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tasker-breakers-')), 'tasker.toml');
  writeFileSync(file, text);
  return file;
}

const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

describe('the circuit breakers of a service, from [circuit_breakers]', () => {
  it('take their settings from the configuration and log each transition', async () => {
    const loaded = loadConfig({
      env: {
        TASKER_CONFIG_PATH: configFile(`
[circuit_breakers.database]
error_threshold = 2
timeout_seconds = 7
half_open_timeout_seconds = 4

[circuit_breakers.message_queue]
enabled = false
`),
      },
    });
    let now = Date.UTC(2025, 0, 1);
    const logs = createMemoryLogger('info');
    const breakers = createServiceCircuitBreakers(loaded.config.circuit_breakers, logs.logger, {
      now: () => now,
    });
    expect(
      breakers
        .snapshots()
        .map((s) => [s.name, s.enabled, s.errorThreshold, s.timeoutSeconds, s.halfOpenTimeoutSeconds]),
    ).toEqual([
      ['database', true, 2, 7, 4],
      // Unset keys keep the seed's defaults.
      ['message_queue', false, 10, 120, 60],
    ]);

    for (let i = 0; i < 2; i++) {
      await breakers.database.execute(() => Promise.reject(refused())).catch(() => undefined);
    }
    now += 7_000;
    await breakers.database.execute(() => Promise.resolve());
    expect(logs.entries.map((e) => [e.level, e.msg, e.breaker, e.to])).toEqual([
      [
        LOG_LEVEL.warn,
        'circuit breaker opened: calls fail fast until a probe finds the dependency back',
        'database',
        'open',
      ],
      [LOG_LEVEL.info, 'circuit breaker half-open: letting trial calls through', 'database', 'half_open'],
      [LOG_LEVEL.info, 'circuit breaker closed: the dependency answers again', 'database', 'closed'],
    ]);
    expect(logs.entries[0]).toMatchObject({
      consecutive_failures: 2,
      last_error: 'ECONNREFUSED',
      max_open_seconds: 7,
      reason: 'error_threshold_reached',
    });

    // Disabled: counted, never opened.
    for (let i = 0; i < 20; i++) {
      await breakers.messageQueue.execute(() => Promise.reject(refused())).catch(() => undefined);
    }
    expect(breakers.messageQueue.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 20 });
  });

  it('guard a database and a messaging provider, which keep their identity and listener', async () => {
    const loaded = loadConfig({ env: { TASKER_CONFIG_PATH: configFile('') } });
    const breakers = createServiceCircuitBreakers(
      loaded.config.circuit_breakers,
      createMemoryLogger().logger,
    );
    const db = await createPgliteDatabase();
    try {
      const guarded = breakers.guardDatabase(db);
      expect(guarded).toBeInstanceOf(CircuitBreakerDatabase);
      expect([guarded.kind, guarded.displayName]).toEqual([db.kind, db.displayName]);
      expect((await guarded.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      const pgmq = new PgmqMessagingProvider(db);
      const queues = breakers.guardMessaging(pgmq);
      expect(queues).toBeInstanceOf(CircuitBreakerMessagingProvider);
      expect(queues.backend).toBe('pgmq');
      await queues.ensureQueue('guarded_q');
      await queues.send('guarded_q', { n: 1 });
      expect((await queues.queueDepth('guarded_q')).total).toBe(1);
      expect(queues.notificationListener).toBeNull();
      await queues.subscribe(['guarded_q'], () => undefined);
      expect(queues.notificationListener).toBe(pgmq.notificationListener);
      await queues.close();
      expect(breakers.snapshots().map((s) => s.state)).toEqual(['closed', 'closed']);
    } finally {
      await db.close();
    }
  });

  it('a setting out of range is a configuration problem naming file, key, expected and found', () => {
    const file = configFile(
      '[circuit_breakers.message_queue]\nerror_threshold = 0\nhalf_open_timeout_seconds = "1m"\n',
    );
    let caught: unknown;
    try {
      loadConfig({ env: { TASKER_CONFIG_PATH: file } });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toEqual([
      {
        source: file,
        path: 'circuit_breakers.message_queue.error_threshold',
        message: 'expected an integer 1..10000, found 0',
      },
      {
        source: file,
        path: 'circuit_breakers.message_queue.half_open_timeout_seconds',
        message: 'expected an integer 1..86400, found "1m"',
      },
    ]);
  });
});
