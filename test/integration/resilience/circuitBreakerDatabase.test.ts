/**
 * The breakers around real PostgreSQL, reached through a TCP proxy the test cuts and restores. Errors the
 * server answers (a unique violation, a lost compare-and-set, a missing queue) never open a breaker; a
 * database that refuses connections does, after `error_threshold` of them, and then calls fail at once with
 * TASKER_CIRCUIT_OPEN. The breakers' clock is the test's, so the open period passes without waiting.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../../../src/db/database.ts';
import { isConnectionError } from '../../../src/db/sqlState.ts';
import { PostgresDatabase } from '../../../src/db/postgresDatabase.ts';
import { CircuitError, ConflictError } from '../../../src/domain/errors.ts';
import { PgmqMessagingProvider } from '../../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import { CircuitBreaker } from '../../../src/resilience/circuitBreaker.ts';
import { CircuitBreakerDatabase } from '../../../src/resilience/circuitBreakerDatabase.ts';
import { CircuitBreakerMessagingProvider } from '../../../src/resilience/circuitBreakerMessagingProvider.ts';
import { proxiedUrl, startTcpProxy } from '../../helpers/tcpProxy.ts';
import type { TcpProxy } from '../../helpers/tcpProxy.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const getTestDb = useTestDatabase();

class ManualClock {
  ms = Date.now();
  readonly now = (): number => this.ms;
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

/** What a call ended with: its value, or the error it threw. */
const settle = (call: Promise<unknown>): Promise<unknown> => call.catch((error: unknown) => error);

describe('circuit breakers over real PostgreSQL through a proxy', () => {
  let proxy: TcpProxy;
  let direct: Database;
  let viaProxy: PostgresDatabase;
  let clock: ManualClock;
  let breaker: CircuitBreaker;
  let guarded: CircuitBreakerDatabase;

  beforeAll(async () => {
    proxy = await startTcpProxy();
    direct = getTestDb().db;
    viaProxy = new PostgresDatabase(proxiedUrl(getTestDb().url, proxy), {
      maxConnections: 3,
      connectionTimeoutMs: 2_000,
      applicationName: 'tasker-test-breaker',
    });
    await direct.exec(`
      CREATE TABLE breaker_items (id int PRIMARY KEY, version int NOT NULL DEFAULT 0);
      INSERT INTO breaker_items (id) VALUES (1);
    `);
  });

  afterAll(async () => {
    await viaProxy?.close();
    await proxy?.close();
  });

  beforeEach(async () => {
    await proxy.restore();
    clock = new ManualClock();
    breaker = new CircuitBreaker({
      name: 'database',
      errorThreshold: 3,
      timeoutSeconds: 30,
      halfOpenTimeoutSeconds: 10,
      now: clock.now,
    });
    guarded = new CircuitBreakerDatabase(viaProxy, breaker);
  });

  /** Refused connections until the breaker opens; each one is the database's own connection error. */
  async function tripOnRefusedConnections(): Promise<void> {
    await proxy.cut();
    for (let i = 0; i < 3; i++) {
      const error = await settle(guarded.query('SELECT 1'));
      expect(isConnectionError(error), String(error)).toBe(true);
      expect(error).not.toBeInstanceOf(CircuitError);
    }
    expect(breaker.state).toBe('open');
  }

  it('unique violations and lost compare-and-set races never open it', async () => {
    for (let i = 0; i < 10; i++) {
      const error = await settle(guarded.query('INSERT INTO breaker_items (id) VALUES (1)'));
      expect(error).toMatchObject({ code: '23505' });
    }
    for (let i = 0; i < 10; i++) {
      // Compare-and-set on a stale version: the update finds no row, our code reports the lost race.
      const error = await settle(
        guarded.transaction(async (tx) => {
          const { rowCount } = await tx.query(
            'UPDATE breaker_items SET version = version + 1 WHERE id = 1 AND version = $1',
            [-1],
          );
          if (rowCount === 0) throw new ConflictError('TASKER_DUPLICATE_TASK', 'lost the race');
          return rowCount;
        }),
      );
      expect(error).toBeInstanceOf(ConflictError);
    }
    expect(breaker.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0, rejectedCalls: 0 });
    expect((await guarded.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
  });

  it('opens on refused connections, then fails at once without touching the pool', async () => {
    await tripOnRefusedConnections();
    const calls = await Promise.all(Array.from({ length: 20 }, () => settle(guarded.query('SELECT 1'))));
    for (const error of calls) {
      expect(error).toBeInstanceOf(CircuitError);
      expect(error).toMatchObject({
        code: 'TASKER_CIRCUIT_OPEN',
        breaker: 'database',
        retryAfterSeconds: 30,
        details: { consecutive_failures: 3 },
      });
    }
    // Nothing queued for a connection: the refused calls never reached the pool.
    expect(viaProxy.poolStats().waiting).toBe(0);
    expect(breaker.snapshot()).toMatchObject({ rejectedCalls: 20 });
    expect(breaker.snapshot().lastError).toContain('TASKER_DATABASE_UNAVAILABLE');
    // A transaction is refused the same way, before BEGIN.
    let ran = false;
    const refused = await settle(
      guarded.transaction(() => {
        ran = true;
        return Promise.resolve();
      }),
    );
    expect(refused).toBeInstanceOf(CircuitError);
    expect(ran).toBe(false);
  });

  it('leaves the LISTEN connection alone: it reconnects with its own backoff while the breaker is open', async () => {
    await tripOnRefusedConnections();
    await proxy.restore();
    expect(await settle(guarded.query('SELECT 1'))).toBeInstanceOf(CircuitError);
    const connection = await guarded.openListenConnection(
      { onNotification: () => undefined, onLost: () => undefined },
      { connectTimeoutMs: 2_000 },
    );
    try {
      await connection.ping();
      expect(connection.backendPid).toBeGreaterThan(0);
    } finally {
      await connection.close();
    }
    expect(breaker.state).toBe('open');
  });

  it('half-open after timeout_seconds; once the database is back a trial closes it', async () => {
    await tripOnRefusedConnections();
    await proxy.restore();
    clock.advance(29);
    expect(await settle(guarded.query('SELECT 1'))).toBeInstanceOf(CircuitError);
    clock.advance(1);
    expect(breaker.state).toBe('half_open');
    const accepted = proxy.accepted;
    expect((await guarded.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    // The trial really went to the server, through a new connection.
    expect(proxy.accepted).toBeGreaterThan(accepted);
    expect(breaker.snapshot()).toMatchObject({
      state: 'closed',
      consecutiveFailures: 0,
      transitions: { open: 1, half_open: 1, closed: 1 },
    });
    expect(breaker.snapshot().recentTransitions.map((t) => t.reason)).toEqual([
      'error_threshold_reached',
      'open_timeout_elapsed',
      'trial_succeeded',
    ]);
  });

  it('a trial that meets the database still down opens it again', async () => {
    await tripOnRefusedConnections();
    clock.advance(30);
    const trial = await settle(guarded.query('SELECT 1'));
    expect(isConnectionError(trial)).toBe(true);
    expect(trial).not.toBeInstanceOf(CircuitError);
    expect(breaker.state).toBe('open');
    expect(breaker.retryAfterSeconds()).toBe(30);
    expect(breaker.snapshot().recentTransitions.at(-1)).toMatchObject({
      from: 'half_open',
      to: 'open',
      reason: 'trial_failed',
    });
    // A connection dropped mid-transaction counts too: restore, then cut while a transaction is open.
    await proxy.restore();
    clock.advance(30);
    const dropped = await settle(
      guarded.transaction(async (tx) => {
        await tx.query('SELECT 1');
        await proxy.cut();
        await tx.query('SELECT 2');
      }),
    );
    expect(isConnectionError(dropped), String(dropped)).toBe(true);
    expect(breaker.state).toBe('open');
  });

  it('the message_queue breaker: a missing queue is no failure, an unreachable queue is', async () => {
    const mqBreaker = new CircuitBreaker({
      name: 'message_queue',
      errorThreshold: 2,
      timeoutSeconds: 5,
      halfOpenTimeoutSeconds: 5,
      now: clock.now,
    });
    const queues = new CircuitBreakerMessagingProvider(new PgmqMessagingProvider(viaProxy), mqBreaker);
    for (let i = 0; i < 5; i++) {
      const error = await settle(queues.send('no_such_queue', { n: i }));
      expect(error).toMatchObject({ code: 'TASKER_QUEUE_NOT_FOUND' });
    }
    await queues.ensureQueue('breaker_q');
    const sent = await queues.send('breaker_q', { n: 1 });
    expect(mqBreaker.state).toBe('closed');

    await proxy.cut();
    for (let i = 0; i < 2; i++) {
      expect(
        isConnectionError(
          await settle(queues.receive('breaker_q', { limit: 1, visibilityTimeoutSeconds: 5 })),
        ),
      ).toBe(true);
    }
    expect(mqBreaker.state).toBe('open');
    const refused = await settle(queues.ack('breaker_q', sent));
    expect(refused).toBeInstanceOf(CircuitError);
    expect(refused).toMatchObject({ breaker: 'message_queue', retryAfterSeconds: 5 });
    // Health answers while the breaker is open: it is how operators see the queue is down.
    expect(await queues.health()).toMatchObject({ healthy: false, backend: 'pgmq' });

    await proxy.restore();
    clock.advance(5);
    const [message] = await queues.receive<{ n: number }>('breaker_q', {
      limit: 1,
      visibilityTimeoutSeconds: 5,
    });
    expect(message?.payload).toEqual({ n: 1 });
    expect(mqBreaker.state).toBe('closed');
    expect(await queues.ack('breaker_q', sent)).toBe(true);
    await queues.close();
  });
});
