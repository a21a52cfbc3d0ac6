import { describe, expect, it } from 'vitest';
import { PgmqMessagingProvider } from '../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import { useTestDatabase } from '../helpers/testDatabase.ts';

const MESSAGES = 10_000;
const CONSUMERS = 8;

describe('PGMQ queue under concurrent consumers (PostgreSQL)', () => {
  const getTestDb = useTestDatabase();

  it(`${CONSUMERS} concurrent consumers over ${MESSAGES} messages: each message received exactly once, none lost`, async () => {
    const testDb = getTestDb();
    const producer = new PgmqMessagingProvider(testDb.db);
    const queue = 'concurrency_exactly_once';
    await producer.ensureQueue(queue);
    for (let start = 0; start < MESSAGES; start += 1_000) {
      const chunk = Array.from({ length: 1_000 }, (_, i) => ({ n: start + i }));
      await producer.sendBatch(queue, chunk, { notify: false });
    }

    // Each consumer has its own connection, so reads truly race inside PostgreSQL.
    const consumers = Array.from({ length: CONSUMERS }, () => {
      const provider = new PgmqMessagingProvider(testDb.openPool({ maxConnections: 1 }));
      const seen: number[] = [];
      const run = async (): Promise<void> => {
        for (;;) {
          const batch = await provider.receive<{ n: number }>(queue, {
            limit: 25,
            visibilityTimeoutSeconds: 120,
          });
          if (batch.length === 0) return;
          for (const message of batch) {
            seen.push(message.payload.n);
            expect(message.readCount).toBe(1);
            expect(await provider.ack(queue, message.id)).toBe(true);
          }
        }
      };
      return { seen, run };
    });
    await Promise.all(consumers.map((consumer) => consumer.run()));

    const all = consumers.flatMap((consumer) => consumer.seen);
    expect(all).toHaveLength(MESSAGES);
    expect(new Set(all).size).toBe(MESSAGES);
    expect(Math.min(...all)).toBe(0);
    expect(Math.max(...all)).toBe(MESSAGES - 1);
    // Work was actually spread out: every consumer got some.
    for (const consumer of consumers) expect(consumer.seen.length).toBeGreaterThan(0);
    const counts = await testDb.db.query<{ live: number; archived: number; reread: number }>(
      `SELECT (SELECT count(*)::int FROM pgmq.q_${queue}) AS live,
              (SELECT count(*)::int FROM pgmq.a_${queue}) AS archived,
              (SELECT count(*)::int FROM pgmq.a_${queue} WHERE read_ct <> 1) AS reread`,
    );
    expect(counts.rows[0]).toEqual({ live: 0, archived: MESSAGES, reread: 0 });
  });

  it('no message is handed to two readers inside its visibility window, even without acks', async () => {
    const testDb = getTestDb();
    const producer = new PgmqMessagingProvider(testDb.db);
    const queue = 'concurrency_no_double_read';
    await producer.ensureQueue(queue);
    await producer.sendBatch(
      queue,
      Array.from({ length: 2_000 }, (_, n) => ({ n })),
      { notify: false },
    );
    const readers = Array.from(
      { length: CONSUMERS },
      () => new PgmqMessagingProvider(testDb.openPool({ maxConnections: 1 })),
    );
    const received = await Promise.all(
      readers.map(async (reader) => {
        const ids: string[] = [];
        for (let round = 0; round < 30; round++) {
          const batch = await reader.receive(queue, { limit: 10, visibilityTimeoutSeconds: 300 });
          ids.push(...batch.map((m) => m.id));
        }
        return ids;
      }),
    );
    const all = received.flat();
    expect(all.length).toBe(2_000);
    expect(new Set(all).size).toBe(all.length);
  });
});
