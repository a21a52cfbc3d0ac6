import { describe, expect, it } from 'vitest';
import { PgmqMessagingProvider } from '../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import { TaskerError } from '../../src/domain/errors.ts';
import { BACKENDS, useBackendDatabase } from '../helpers/testDatabase.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(BACKENDS)('PGMQ-compatible queue on %s', (backend) => {
  const getDb = useBackendDatabase(backend);
  let counter = 0;
  /** A fresh queue per test, so tests do not see each other's messages. */
  async function freshQueue(): Promise<{ provider: PgmqMessagingProvider; queue: string }> {
    const provider = new PgmqMessagingProvider(getDb());
    const queue = `q_${backend}_${++counter}`;
    await provider.ensureQueue(queue);
    return { provider, queue };
  }

  it('delivers messages in FIFO order with their payloads', async () => {
    const { provider, queue } = await freshQueue();
    for (let i = 0; i < 20; i++) await provider.send(queue, { n: i });
    const first = await provider.receive<{ n: number }>(queue, { limit: 7, visibilityTimeoutSeconds: 30 });
    const rest = await provider.receive<{ n: number }>(queue, { limit: 100, visibilityTimeoutSeconds: 30 });
    expect([...first, ...rest].map((m) => m.payload.n)).toEqual([...Array(20).keys()]);
    expect(first).toHaveLength(7);
    expect(await provider.receive(queue, { limit: 10, visibilityTimeoutSeconds: 30 })).toEqual([]);
  });

  it('hides a received message for its visibility timeout, then delivers it again with read_ct counted', async () => {
    const { provider, queue } = await freshQueue();
    const id = await provider.send(queue, { job: 'x' });
    const [first] = await provider.receive(queue, { limit: 1, visibilityTimeoutSeconds: 1 });
    expect(first?.id).toBe(id);
    expect(first?.readCount).toBe(1);
    expect(await provider.receive(queue, { limit: 1, visibilityTimeoutSeconds: 1 })).toEqual([]);
    await sleep(1_200);
    const [again] = await provider.receive(queue, { limit: 1, visibilityTimeoutSeconds: 30 });
    expect(again?.id).toBe(id);
    expect(again?.readCount).toBe(2);
  });

  it('archive moves the row from q_<queue> to a_<queue>; delete removes it', async () => {
    const { provider, queue } = await freshQueue();
    const db = getDb();
    const archivedId = await provider.send(queue, { keep: true });
    const deletedId = await provider.send(queue, { keep: false });
    expect(await provider.ack(queue, archivedId)).toBe(true);
    expect(await provider.ack(queue, archivedId)).toBe(false);
    const { rows: deleted } = await db.query<{ ok: boolean }>('SELECT pgmq.delete($1, $2::bigint) AS ok', [
      queue,
      deletedId,
    ]);
    expect(deleted[0]?.ok).toBe(true);
    const live = await db.query(`SELECT msg_id FROM pgmq.q_${queue}`);
    expect(live.rows).toEqual([]);
    const archived = await db.query<{ msg_id: unknown; message: unknown; archived_at: Date }>(
      `SELECT msg_id, message, archived_at FROM pgmq.a_${queue}`,
    );
    expect(archived.rows.map((r) => [String(r.msg_id), r.message])).toEqual([[archivedId, { keep: true }]]);
    expect(archived.rows[0]?.archived_at).toBeInstanceOf(Date);
  });

  it('a delayed message stays invisible until its delay has passed', async () => {
    const { provider, queue } = await freshQueue();
    await provider.send(queue, { later: true }, { delaySeconds: 1 });
    expect(await provider.receive(queue, { limit: 1, visibilityTimeoutSeconds: 30 })).toEqual([]);
    expect(await provider.queueDepth(queue)).toMatchObject({ total: 1, visible: 0 });
    await sleep(1_200);
    const [message] = await provider.receive(queue, { limit: 1, visibilityTimeoutSeconds: 30 });
    expect(message?.payload).toEqual({ later: true });
  });

  it('sends and acks batches', async () => {
    const { provider, queue } = await freshQueue();
    const payloads = Array.from({ length: 50 }, (_, i) => ({ i, nested: { list: [i, 'two'] } }));
    const ids = await provider.sendBatch(queue, payloads);
    expect(ids).toHaveLength(50);
    expect(new Set(ids).size).toBe(50);
    const received = await provider.receive<{ i: number }>(queue, {
      limit: 100,
      visibilityTimeoutSeconds: 30,
    });
    expect(received.map((m) => m.payload)).toEqual(payloads);
    const { rows } = await getDb().query<{ id: unknown }>('SELECT pgmq.archive($1, $2::bigint[]) AS id', [
      queue,
      ids.slice(0, 30),
    ]);
    expect(rows.map((r) => String(r.id)).sort()).toEqual(ids.slice(0, 30).sort());
    const { rows: del } = await getDb().query<{ id: unknown }>('SELECT pgmq.delete($1, $2::bigint[]) AS id', [
      queue,
      ids.slice(30),
    ]);
    expect(del).toHaveLength(20);
    expect(await provider.queueDepth(queue)).toMatchObject({ total: 0 });
  });

  it('nack requeues (optionally delayed) and extendVisibility keeps a message hidden', async () => {
    const { provider, queue } = await freshQueue();
    const id = await provider.send(queue, { n: 1 });
    await provider.receive(queue, { limit: 1, visibilityTimeoutSeconds: 60 });
    await provider.nack(queue, id);
    const [redelivered] = await provider.receive(queue, { limit: 1, visibilityTimeoutSeconds: 1 });
    expect(redelivered?.id).toBe(id);
    expect(await provider.extendVisibility(queue, id, 60)).toBe(true);
    await sleep(1_200);
    expect(await provider.receive(queue, { limit: 1, visibilityTimeoutSeconds: 30 })).toEqual([]);
    await provider.nack(queue, id, { requeue: false });
    expect(await provider.queueDepth(queue)).toMatchObject({ total: 0 });
    expect(await provider.extendVisibility(queue, id, 10)).toBe(false);
  });

  it('pop, set_vt, purge_queue, metrics, list_queues and drop_queue behave like PGMQ', async () => {
    const { provider, queue } = await freshQueue();
    const db = getDb();
    await provider.sendBatch(queue, [{ a: 1 }, { a: 2 }, { a: 3 }], { notify: false });
    const popped = await db.query<{ message: unknown }>('SELECT * FROM pgmq.pop($1)', [queue]);
    expect(popped.rows.map((r) => r.message)).toEqual([{ a: 1 }]);
    const metrics = await db.query<Record<string, unknown>>('SELECT * FROM pgmq.metrics($1)', [queue]);
    expect(metrics.rows[0]).toMatchObject({ queue_name: queue });
    expect(Number(metrics.rows[0]?.queue_length)).toBe(2);
    expect(Number(metrics.rows[0]?.total_messages)).toBe(3);
    const all = await db.query<{ queue_name: string }>('SELECT * FROM pgmq.metrics_all()');
    expect(all.rows.map((r) => r.queue_name)).toContain(queue);
    const listed = await db.query<{ queue_name: string; is_partitioned: boolean }>(
      'SELECT * FROM pgmq.list_queues()',
    );
    expect(listed.rows.find((r) => r.queue_name === queue)).toMatchObject({ is_partitioned: false });
    const purged = await db.query<{ n: unknown }>('SELECT pgmq.purge_queue($1) AS n', [queue]);
    expect(Number(purged.rows[0]?.n)).toBe(2);
    const dropped = await db.query<{ ok: boolean }>('SELECT pgmq.drop_queue($1) AS ok', [queue]);
    expect(dropped.rows[0]?.ok).toBe(true);
    const gone = await db.query("SELECT to_regclass('pgmq.q_' || $1::text) IS NULL AS gone", [queue]);
    expect(gone.rows[0]).toEqual({ gone: true });
    await expect(provider.send(queue, {})).rejects.toMatchObject({ code: 'TASKER_QUEUE_NOT_FOUND' });
  });

  it('ensureQueue is idempotent', async () => {
    const { provider, queue } = await freshQueue();
    const other = new PgmqMessagingProvider(getDb());
    await Promise.all([other.ensureQueue(queue), other.ensureQueue(queue), provider.ensureQueue(queue)]);
    const { rows } = await getDb().query('SELECT queue_name FROM pgmq.meta WHERE queue_name = $1', [queue]);
    expect(rows).toHaveLength(1);
  });

  it.each([
    ['Upper', 'uppercase'],
    ['has-dash', 'dash'],
    ["x'; DROP TABLE pgmq.meta; --", 'injection'],
    ['a'.repeat(48), 'too long'],
    ['', 'empty'],
    ['9starts_with_digit', 'leading digit'],
  ])('rejects the queue name %j (%s) before any SQL and in SQL too', async (name) => {
    const provider = new PgmqMessagingProvider(getDb());
    const error = await provider.ensureQueue(name).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskerError);
    expect(error).toMatchObject({ code: 'TASKER_INVALID_QUEUE_NAME' });
    expect((error as Error).message).toMatch(/lowercase letters, digits and underscores/);
    const sqlError = await getDb()
      .query('SELECT pgmq.create($1)', [name])
      .catch((e: unknown) => e);
    expect(sqlError).toMatchObject({ code: '22023' });
    const meta = await getDb().query('SELECT count(*)::int AS n FROM pgmq.meta WHERE queue_name = $1', [
      name,
    ]);
    expect(meta.rows[0]).toEqual({ n: 0 });
    expect((await getDb().query("SELECT to_regclass('pgmq.meta') IS NOT NULL AS ok")).rows[0]).toEqual({
      ok: true,
    });
  });

  it('rejects a negative delay and a zero receive limit with clear errors', async () => {
    const { provider, queue } = await freshQueue();
    await expect(provider.send(queue, {}, { delaySeconds: -1 })).rejects.toThrow(
      /delaySeconds must be a whole number of 0 or more/,
    );
    await expect(provider.receive(queue, { limit: 0, visibilityTimeoutSeconds: 1 })).rejects.toThrow(
      /limit must be/,
    );
    await expect(getDb().query('SELECT pgmq.send($1, $2::jsonb, -5)', [queue, '{}'])).rejects.toMatchObject({
      code: '22023',
    });
  });
});
