import { afterEach, describe, expect, it } from 'vitest';
import type { Database, ListenConnection, ListenHandlers } from '../../src/db/database.ts';
import { PostgresDatabase } from '../../src/db/postgresDatabase.ts';
import { NotificationListener } from '../../src/messaging/pgmq/notificationListener.ts';
import { PgmqMessagingProvider } from '../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import type { QueueSignal } from '../../src/messaging/messagingProvider.ts';
import { createTestDatabase, useTestDatabase } from '../helpers/testDatabase.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** A Database whose queries go to `queries` and whose listen connections come from `listens`. */
function splitDatabase(queries: Database, listens: Pick<Database, 'openListenConnection'>): Database {
  return {
    kind: queries.kind,
    displayName: queries.displayName,
    query: (sql, params, options) => queries.query(sql, params, options),
    exec: (sql) => queries.exec(sql),
    transaction: (fn) => queries.transaction(fn),
    openListenConnection: (handlers) => listens.openListenConnection(handlers),
    poolStats: () => queries.poolStats(),
    cancelRunning: () => queries.cancelRunning(),
    close: () => queries.close(),
  };
}

describe('notification listener under faults (PostgreSQL)', () => {
  const getTestDb = useTestDatabase();
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('reconnects after pg_terminate_backend and its caller catches up on what was sent meanwhile', async () => {
    const { db } = getTestDb();
    const listener = new NotificationListener(db, { reconnectBaseMs: 1_000, heartbeatTimeoutMs: 2_000 });
    const provider = new PgmqMessagingProvider(db, { listener });
    cleanups.push(
      () => listener.stop(),
      () => provider.close(),
    );
    const queue = 'worker_fault_queue';
    await provider.ensureQueue(queue);
    const signals: QueueSignal[] = [];
    const caughtUp: string[] = [];
    await provider.subscribe([queue], (signal) => {
      signals.push(signal);
      if (signal.kind === 'catch_up') {
        // What a consumer does on catch_up: read the queue.
        void provider
          .receive<{ n: number }>(queue, { limit: 10, visibilityTimeoutSeconds: 30 })
          .then((messages) => {
            caughtUp.push(...messages.map((m) => m.id));
          });
      }
    });
    const before = listener.state;
    expect(before).toMatchObject({ connected: true, reconnects: 0, notificationsVerified: true });
    expect(before.backendPid).toEqual(expect.any(Number));

    const { rows } = await db.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [
      before.backendPid,
    ]);
    expect(rows[0]?.ok).toBe(true);
    await waitUntil(() => !listener.state.connected);
    signals.length = 0;
    const sentWhileDown = await provider.send(queue, { n: 1 });

    await waitUntil(() => listener.state.connected && caughtUp.includes(sentWhileDown));
    const after = listener.state;
    expect(after.reconnects).toBe(1);
    expect(after.backendPid).not.toBe(before.backendPid);
    // The notification was lost with the connection; the catch-up read is what found the message.
    expect(signals.filter((s) => s.kind === 'message_ready')).toEqual([]);
    expect(signals).toContainEqual({ kind: 'catch_up', queue });

    // And the new connection is listening again.
    const sentAfter = await provider.send(queue, { n: 2 });
    await waitUntil(() => signals.some((s) => s.kind === 'message_ready' && s.messageId === sentAfter));
  });

  it('the start-up self-test reports notifications that never arrive (as behind a transaction pooler)', async () => {
    const testDb = getTestDb();
    // NOTIFY is per database: sending through a pool on another database never reaches this listener,
    // exactly like a pooler handing the pool's statements to a different session than the LISTEN.
    const elsewhere = await createTestDatabase();
    cleanups.push(() => elsewhere.drop());
    const db = splitDatabase(elsewhere.db, testDb.db);
    const listener = new NotificationListener(db, { heartbeatTimeoutMs: 500 });
    cleanups.push(() => listener.stop());
    await listener.start();
    expect(listener.state).toMatchObject({ connected: true, notificationsVerified: false });
    expect(await listener.verifyNotifications()).toBe(false);
  });

  it('a listen connection that goes silent is detected by the heartbeat and replaced', async () => {
    const { db } = getTestDb();
    let silenceCurrent: (() => void) | undefined;
    const flaky: Pick<Database, 'openListenConnection'> = {
      openListenConnection: async (handlers: ListenHandlers): Promise<ListenConnection> => {
        let silent = false;
        const real = await db.openListenConnection({
          onNotification: (channel, payload) => {
            if (!silent) handlers.onNotification(channel, payload);
          },
          onLost: (error) => handlers.onLost(error),
        });
        silenceCurrent = () => {
          silent = true;
        };
        return {
          backendPid: real.backendPid,
          listen: (channel) => real.listen(channel),
          unlisten: (channel) => real.unlisten(channel),
          // A black-holed network: the round trip never completes.
          ping: () => (silent ? new Promise<void>(() => undefined) : real.ping()),
          close: () => real.close(),
        };
      },
    };
    const listener = new NotificationListener(splitDatabase(db, flaky), {
      heartbeatIntervalMs: 200,
      heartbeatTimeoutMs: 200,
      reconnectBaseMs: 50,
    });
    cleanups.push(() => listener.stop());
    const reconnected: boolean[] = [];
    listener.onConnected(({ reconnect }) => reconnected.push(reconnect));
    await listener.start();
    expect(reconnected).toEqual([false]);
    silenceCurrent?.();
    await waitUntil(() => listener.state.reconnects === 1 && listener.state.connected);
    expect(reconnected).toEqual([false, true]);
    await waitUntil(() => listener.state.notificationsVerified === true);
  });

  it('reports unhealthy after max reconnect attempts, and keeps trying', async () => {
    const { db } = getTestDb();
    // Nothing listens on port 1: every attempt is refused at once.
    const unreachable = new PostgresDatabase('postgres://root:hunter2@127.0.0.1:1/nowhere', {
      connectionTimeoutMs: 500,
    });
    cleanups.push(() => unreachable.close());
    const listener = new NotificationListener(splitDatabase(db, unreachable), {
      reconnectBaseMs: 20,
      reconnectMaxMs: 40,
      maxReconnectAttempts: 2,
    });
    const provider = new PgmqMessagingProvider(db, { listener });
    cleanups.push(
      () => listener.stop(),
      () => provider.close(),
    );
    await provider.subscribe(['worker_any_queue'], () => undefined);
    await waitUntil(() => listener.state.status === 'failed');
    expect(listener.state).toMatchObject({ connected: false });
    expect(listener.state.consecutiveFailures).toBeGreaterThanOrEqual(3);
    // Still trying at the capped delay: a database that comes back is found without a restart.
    const failures = listener.state.consecutiveFailures;
    await waitUntil(() => listener.state.consecutiveFailures >= failures + 2);
    expect(listener.state.status).toBe('failed');
    expect(listener.state.lastError).toMatch(/127\.0\.0\.1:1/);
    expect(listener.state.lastError).not.toContain('hunter2');
    const health = await provider.health();
    expect(health).toMatchObject({ healthy: false, backend: 'pgmq' });
    expect(health.message).toMatch(/listener failed/);
  });
});
