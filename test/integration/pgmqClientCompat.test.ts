/**
 * An independent PGMQ client from npm (pgmq-js, written against the real PGMQ extension) pointed at our
 * plain-SQL queue: every method it has must work unchanged, and messages must flow both ways between it and
 * our PgmqMessagingProvider.
 */
import { Pgmq } from 'pgmq-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgmqMessagingProvider } from '../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import { useTestDatabase } from '../helpers/testDatabase.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type PgPoolConfig = Parameters<typeof Pgmq.new>[0];

describe('pgmq-js 1.3 against our PGMQ-compatible SQL queue', () => {
  const getTestDb = useTestDatabase();
  let pgmq: Pgmq;
  let counter = 0;

  beforeAll(async () => {
    const url = new URL(getTestDb().url);
    const config: PgPoolConfig & { application_name: string } = {
      host: url.hostname,
      port: Number(url.port || 5432),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database: getTestDb().name,
      ssl: false,
      max: 4,
      // pgmq-js sets max=1000 when idleTimeoutMillis is missing; give it one.
      idleTimeoutMillis: 1_000,
      // Not in pgmq-js's type, but pg-pool hands it to pg: names the connections in a leak report.
      application_name: 'pgmq-js-compat',
    };
    pgmq = await Pgmq.new(config, { skipExtensionCreation: true });
  });

  // Registered after useTestDatabase, so it runs before the database is dropped (hooks run as a stack).
  afterAll(async () => {
    await pgmq.close();
  });

  const db = () => getTestDb().db;

  /** A fresh queue per test, created by pgmq-js. */
  async function freshQueue(prefix = 'compat'): Promise<string> {
    const queue = `${prefix}_${++counter}`;
    await pgmq.queue.create(queue);
    return queue;
  }

  async function countRows(table: string): Promise<number> {
    const { rows } = await db().query<{ n: number }>(`SELECT count(*)::int AS n FROM pgmq.${table}`);
    return rows[0]?.n ?? -1;
  }

  describe('queue manager', () => {
    it('create and createUnlogged make queues that list() reports with the right flags', async () => {
      const started = Date.now();
      await pgmq.queue.create('compat_logged');
      await pgmq.queue.createUnlogged('compat_unlogged');
      // create is idempotent, as in PGMQ
      await pgmq.queue.create('compat_logged');

      const listed = await pgmq.queue.list();
      const byName = new Map(listed.map((q) => [q.name, q]));
      expect(listed.filter((q) => q.name === 'compat_logged')).toHaveLength(1);
      expect(byName.get('compat_logged')).toMatchObject({ isPartitioned: false, isUnlogged: false });
      expect(byName.get('compat_unlogged')).toMatchObject({ isPartitioned: false, isUnlogged: true });
      for (const name of ['compat_logged', 'compat_unlogged']) {
        const createdAt = byName.get(name)?.createdAt;
        expect(createdAt).toBeInstanceOf(Date);
        expect(Math.abs((createdAt?.getTime() ?? 0) - started)).toBeLessThan(60_000);
      }

      const { rows } = await db().query<{ relname: string; relpersistence: string }>(
        `SELECT relname, relpersistence FROM pg_class
         WHERE relnamespace = 'pgmq'::regnamespace AND relname IN ('q_compat_logged', 'q_compat_unlogged', 'a_compat_logged')
         ORDER BY relname`,
      );
      expect(rows).toEqual([
        { relname: 'a_compat_logged', relpersistence: 'p' },
        { relname: 'q_compat_logged', relpersistence: 'p' },
        { relname: 'q_compat_unlogged', relpersistence: 'u' },
      ]);
    });

    it('getMetrics counts length, visible messages and total sent; getAllMetrics covers every queue', async () => {
      const queue = await freshQueue();
      const empty = await freshQueue();
      const ids = await pgmq.msg.sendBatch(queue, [{ n: 1 }, { n: 2 }, { n: 3 }]);
      const read = await pgmq.msg.read<{ n: number }>(queue, 60);
      expect(read.msgId).toBe(ids[0]);
      const popped = await pgmq.msg.pop<{ n: number }>(queue);
      expect(popped?.msgId).toBe(ids[1]);

      const metrics = await pgmq.queue.getMetrics(queue);
      // 3 sent, one popped (gone), one read (still in the queue, hidden)
      expect(metrics).toMatchObject({ queueName: queue, queueLength: 2, totalMessages: 3 });
      expect(metrics.oldestMsgAgeSec).toBeGreaterThanOrEqual(0);
      expect(metrics.newestMsgAgeSec).toBeGreaterThanOrEqual(0);
      expect(metrics.scrapeTime).toBeInstanceOf(Date);
      expect(Number.isNaN(metrics.scrapeTime.getTime())).toBe(false);

      const emptyMetrics = await pgmq.queue.getMetrics(empty);
      expect(emptyMetrics).toMatchObject({ queueName: empty, queueLength: 0, totalMessages: 0 });
      expect(emptyMetrics.oldestMsgAgeSec).toBeUndefined();
      expect(emptyMetrics.newestMsgAgeSec).toBeUndefined();

      const all = await pgmq.queue.getAllMetrics();
      const listedNames = (await pgmq.queue.list()).map((q) => q.name).sort();
      expect(all.map((m) => m.queueName).sort()).toEqual(listedNames);
      expect(all.find((m) => m.queueName === queue)).toMatchObject({ queueLength: 2, totalMessages: 3 });
      expect(all.find((m) => m.queueName === empty)).toMatchObject({ queueLength: 0, totalMessages: 0 });
    });

    it('purge empties the queue table but keeps the archive and the queue', async () => {
      const queue = await freshQueue();
      const ids = await pgmq.msg.sendBatch(
        queue,
        [1, 2, 3, 4].map((n) => ({ n })),
      );
      expect(await pgmq.msg.archive(queue, ids[0] ?? -1)).toBe(true);
      await pgmq.queue.purge(queue);
      expect(await countRows(`q_${queue}`)).toBe(0);
      expect(await countRows(`a_${queue}`)).toBe(1);
      expect(await pgmq.queue.getMetrics(queue)).toMatchObject({ queueLength: 0, totalMessages: 4 });
      // the queue still works, and ids keep counting up
      const next = await pgmq.msg.send(queue, { after: 'purge' });
      expect(next).toBe((ids[3] ?? 0) + 1);
    });

    it('detachArchive is accepted (deprecated no-op) and leaves queue and archive working', async () => {
      const queue = await freshQueue();
      const id = await pgmq.msg.send(queue, { keep: 'me' });
      await pgmq.queue.detachArchive(queue);
      expect(await pgmq.msg.archive(queue, id)).toBe(true);
      const { rows } = await db().query<{ message: unknown }>(`SELECT message FROM pgmq.a_${queue}`);
      expect(rows).toEqual([{ message: { keep: 'me' } }]);
      await expect(pgmq.queue.detachArchive('compat_never_created')).rejects.toMatchObject({ code: '42P01' });
    });

    it('drop removes both tables and the meta row; the queue is gone for every client', async () => {
      const queue = await freshQueue();
      await pgmq.msg.send(queue, { doomed: true });
      await pgmq.queue.drop(queue);
      expect((await pgmq.queue.list()).map((q) => q.name)).not.toContain(queue);
      const { rows } = await db().query<{ q: boolean; a: boolean }>(
        `SELECT to_regclass('pgmq.q_${queue}') IS NULL AS q, to_regclass('pgmq.a_${queue}') IS NULL AS a`,
      );
      expect(rows[0]).toEqual({ q: true, a: true });
      await expect(pgmq.msg.send(queue, {})).rejects.toMatchObject({ code: '42P01' });
      await expect(pgmq.queue.getMetrics(queue)).rejects.toMatchObject({ code: '42P01' });
      // dropping again is harmless
      await pgmq.queue.drop(queue);
    });

    it('rejects invalid queue names with invalid_parameter_value and creates nothing', async () => {
      for (const name of ['Upper', 'has-dash', "x'; DROP TABLE pgmq.meta; --", 'a'.repeat(48)]) {
        await expect(pgmq.queue.create(name)).rejects.toMatchObject({ code: '22023' });
      }
      const { rows } = await db().query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pgmq.meta WHERE queue_name !~ '^[a-z_][a-z0-9_]*$'",
      );
      expect(rows[0]).toEqual({ n: 0 });
    });
  });

  describe('message manager', () => {
    it('send returns increasing ids and bodies of every JSON kind survive the round trip', async () => {
      const queue = await freshQueue();
      const bodies: unknown[] = [
        { nested: { list: [1, 'two', null, true], deep: { x: 1.5 } } },
        'a plain string',
        42,
        [1, 2, 3],
        { unicode: 'héllo ✓ 日本' },
        null,
      ];
      const ids: number[] = [];
      for (const body of bodies) ids.push(await pgmq.msg.send(queue, body));
      expect(ids.every((id) => typeof id === 'number' && Number.isInteger(id))).toBe(true);
      expect(ids).toEqual(ids.map((_, i) => (ids[0] ?? 0) + i));

      const read = await pgmq.msg.readBatch<unknown>(queue, 30, 100);
      expect(read.map((m) => m.msgId)).toEqual(ids);
      expect(read.map((m) => m.message)).toEqual(bodies);
      expect(read.every((m) => m.readCount === 1)).toBe(true);
    });

    it('send with a delay hides the message until the delay has passed', async () => {
      const queue = await freshQueue();
      const before = Date.now();
      const delayed = await pgmq.msg.send(queue, { later: true }, 1);
      const now = await pgmq.msg.send(queue, { now: true });
      expect(now).toBe(delayed + 1);

      const first = await pgmq.msg.readBatch<Record<string, boolean>>(queue, 30, 10);
      expect(first.map((m) => m.message)).toEqual([{ now: true }]);
      expect(await pgmq.queue.getMetrics(queue)).toMatchObject({ queueLength: 2, totalMessages: 2 });

      await sleep(1_200);
      const later = await pgmq.msg.read<Record<string, boolean>>(queue, 30);
      expect(later).toMatchObject({ msgId: delayed, message: { later: true }, readCount: 1 });
      expect(later.enqueuedAt.getTime()).toBeGreaterThanOrEqual(before - 1_000);
    });

    it('read hides a message for vt seconds: a second read gets nothing, then it comes back with readCount 2', async () => {
      const queue = await freshQueue();
      const id = await pgmq.msg.send(queue, { job: 'x' });
      const first = await pgmq.msg.read<{ job: string }>(queue, 1);
      expect(first).toMatchObject({ msgId: id, readCount: 1, message: { job: 'x' } });
      expect(first.vt.getTime()).toBeGreaterThan(first.enqueuedAt.getTime());

      expect(await pgmq.msg.read(queue, 1)).toBeUndefined();
      expect(await pgmq.msg.readBatch(queue, 1, 10)).toEqual([]);

      await sleep(1_200);
      const again = await pgmq.msg.read<{ job: string }>(queue, 30);
      expect(again).toMatchObject({ msgId: id, readCount: 2, message: { job: 'x' } });
      expect(again.enqueuedAt.getTime()).toBe(first.enqueuedAt.getTime());
    });

    it('read with the default vt of 0 leaves the message visible and counts each read', async () => {
      const queue = await freshQueue();
      const id = await pgmq.msg.send(queue, { v: 0 });
      expect(await pgmq.msg.read(queue)).toMatchObject({ msgId: id, readCount: 1 });
      expect(await pgmq.msg.read(queue)).toMatchObject({ msgId: id, readCount: 2 });
    });

    it('sendBatch returns consecutive ids in order; readBatch reads them oldest first, in pages', async () => {
      const queue = await freshQueue();
      const payloads = Array.from({ length: 7 }, (_, i) => ({ i, tag: `m${i}` }));
      const ids = await pgmq.msg.sendBatch(queue, payloads);
      expect(ids).toHaveLength(7);
      expect(ids).toEqual(ids.map((_, i) => (ids[0] ?? 0) + i));

      const start = Date.now();
      const page1 = await pgmq.msg.readBatch<{ i: number }>(queue, 30, 3);
      const page2 = await pgmq.msg.readBatch<{ i: number }>(queue, 30, 10);
      expect(page1.map((m) => m.msgId)).toEqual(ids.slice(0, 3));
      expect(page2.map((m) => m.msgId)).toEqual(ids.slice(3));
      expect([...page1, ...page2].map((m) => m.message)).toEqual(payloads);
      for (const m of [...page1, ...page2]) {
        // hidden for ~30 s from the read
        expect(m.vt.getTime() - start).toBeGreaterThan(25_000);
        expect(m.vt.getTime() - start).toBeLessThan(35_000);
      }
      expect(await pgmq.msg.readBatch(queue, 30, 10)).toEqual([]);

      // a delayed batch
      const delayedIds = await pgmq.msg.sendBatch(queue, [{ d: 1 }, { d: 2 }], 60);
      expect(delayedIds).toEqual([(ids[6] ?? 0) + 1, (ids[6] ?? 0) + 2]);
      expect(await pgmq.msg.readBatch(queue, 30, 10)).toEqual([]);
      expect(await pgmq.queue.getMetrics(queue)).toMatchObject({ queueLength: 9, totalMessages: 9 });
    });

    it('pop returns the oldest visible message and removes it without archiving', async () => {
      const queue = await freshQueue();
      const ids = await pgmq.msg.sendBatch(queue, [{ p: 1 }, { p: 2 }]);
      const popped = await pgmq.msg.pop<{ p: number }>(queue);
      expect(popped).toMatchObject({ msgId: ids[0], message: { p: 1 }, readCount: 0 });
      expect(await countRows(`q_${queue}`)).toBe(1);
      expect(await countRows(`a_${queue}`)).toBe(0);

      // a hidden message is not popped
      await pgmq.msg.read(queue, 30);
      expect(await pgmq.msg.pop(queue)).toBeUndefined();
      expect(await countRows(`q_${queue}`)).toBe(1);
    });

    it('archive moves a message into pgmq.a_<queue> with its body and read count', async () => {
      const queue = await freshQueue();
      const id = await pgmq.msg.send(queue, { keep: true });
      await pgmq.msg.read(queue, 30);
      expect(await pgmq.msg.archive(queue, id)).toBe(true);
      expect(await pgmq.msg.archive(queue, id)).toBe(false);

      expect(await countRows(`q_${queue}`)).toBe(0);
      const { rows } = await db().query<{
        msg_id: string;
        read_ct: number;
        message: unknown;
        archived_at: Date;
      }>(`SELECT msg_id, read_ct, message, archived_at FROM pgmq.a_${queue}`);
      expect(rows.map((r) => [Number(r.msg_id), r.read_ct, r.message])).toEqual([[id, 1, { keep: true }]]);
      expect(rows[0]?.archived_at).toBeInstanceOf(Date);
    });

    it('archiveBatch archives the ids that exist and returns only those', async () => {
      const queue = await freshQueue();
      const ids = await pgmq.msg.sendBatch(queue, [{ a: 1 }, { a: 2 }, { a: 3 }, { a: 4 }]);
      const archived = await pgmq.msg.archiveBatch(queue, [ids[0] ?? -1, ids[2] ?? -1, 999_999]);
      expect(archived.sort((x, y) => x - y)).toEqual([ids[0], ids[2]]);

      const inArchive = await db().query<{ msg_id: string; message: unknown }>(
        `SELECT msg_id, message FROM pgmq.a_${queue} ORDER BY msg_id`,
      );
      expect(inArchive.rows.map((r) => [Number(r.msg_id), r.message])).toEqual([
        [ids[0], { a: 1 }],
        [ids[2], { a: 3 }],
      ]);
      const left = await pgmq.msg.readBatch<{ a: number }>(queue, 30, 10);
      expect(left.map((m) => m.message)).toEqual([{ a: 2 }, { a: 4 }]);
    });

    it('delete and deleteBatch remove messages for good, reporting only what existed', async () => {
      const queue = await freshQueue();
      const ids = await pgmq.msg.sendBatch(queue, [{ d: 1 }, { d: 2 }, { d: 3 }, { d: 4 }]);
      expect(await pgmq.msg.delete(queue, ids[0] ?? -1)).toBe(true);
      expect(await pgmq.msg.delete(queue, ids[0] ?? -1)).toBe(false);

      const deleted = await pgmq.msg.deleteBatch(queue, [ids[1] ?? -1, ids[2] ?? -1, ids[0] ?? -1, 999_999]);
      expect(deleted.sort((x, y) => x - y)).toEqual([ids[1], ids[2]]);
      expect(await pgmq.msg.deleteBatch(queue, [999_999])).toEqual([]);

      const left = await pgmq.msg.readBatch<{ d: number }>(queue, 30, 10);
      expect(left.map((m) => [m.msgId, m.message])).toEqual([[ids[3], { d: 4 }]]);
      expect(await countRows(`a_${queue}`)).toBe(0);
    });

    it('setVt hides or reveals a message and returns it; an unknown id gives undefined', async () => {
      const queue = await freshQueue();
      const id = await pgmq.msg.send(queue, { s: 1 });
      await pgmq.msg.read(queue, 30);
      expect(await pgmq.msg.read(queue, 30)).toBeUndefined();

      // reveal now
      const revealed = await pgmq.msg.setVt<{ s: number }>(queue, id, 0);
      expect(revealed).toMatchObject({ msgId: id, readCount: 1, message: { s: 1 } });
      expect(revealed?.vt.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
      const reread = await pgmq.msg.read<{ s: number }>(queue, 1);
      expect(reread).toMatchObject({ msgId: id, readCount: 2 });

      // extend: after the read's 1 s window the message is still hidden
      const extended = await pgmq.msg.setVt(queue, id, 60);
      expect((extended?.vt.getTime() ?? 0) - Date.now()).toBeGreaterThan(50_000);
      await sleep(1_200);
      expect(await pgmq.msg.read(queue, 30)).toBeUndefined();

      expect(await pgmq.msg.setVt(queue, 999_999, 10)).toBeUndefined();
    });

    it('concurrent readBatch calls (8 at once over a 4-connection pool) never get the same message', async () => {
      const queue = await freshQueue();
      const ids = await pgmq.msg.sendBatch(
        queue,
        Array.from({ length: 40 }, (_, i) => ({ i })),
      );
      const batches = await Promise.all(Array.from({ length: 8 }, () => pgmq.msg.readBatch(queue, 30, 10)));
      const got = batches.flat().map((m) => m.msgId);
      expect(new Set(got).size).toBe(got.length);
      expect(got.sort((a, b) => a - b)).toEqual(ids);
    });
  });

  describe('interop with PgmqMessagingProvider', () => {
    it('a message sent by pgmq-js is received and acked (archived) by our provider', async () => {
      const provider = new PgmqMessagingProvider(db());
      try {
        const queue = await freshQueue('interop');
        const id = await pgmq.msg.send(queue, { from: 'pgmq-js', n: 7 });
        const [message, ...rest] = await provider.receive<{ from: string; n: number }>(queue, {
          limit: 10,
          visibilityTimeoutSeconds: 30,
        });
        expect(rest).toEqual([]);
        expect(message).toMatchObject({
          id: String(id),
          queue,
          payload: { from: 'pgmq-js', n: 7 },
          readCount: 1,
          headers: null,
        });
        // hidden from pgmq-js while our provider holds it
        expect(await pgmq.msg.read(queue, 30)).toBeUndefined();
        expect(await provider.ack(queue, String(id))).toBe(true);
        expect(await pgmq.queue.getMetrics(queue)).toMatchObject({ queueLength: 0, totalMessages: 1 });
        const { rows } = await db().query<{ msg_id: string }>(`SELECT msg_id FROM pgmq.a_${queue}`);
        expect(rows.map((r) => Number(r.msg_id))).toEqual([id]);
      } finally {
        await provider.close();
      }
    });

    it('messages sent by our provider (with notify, single and batch) are read and archived by pgmq-js', async () => {
      const provider = new PgmqMessagingProvider(db());
      try {
        const queue = `interop_${++counter}`;
        await provider.ensureQueue(queue);
        expect((await pgmq.queue.list()).find((q) => q.name === queue)).toMatchObject({ isUnlogged: false });

        const single = await provider.send(queue, { from: 'tasker', kind: 'single' });
        const batch = await provider.sendBatch(queue, [{ b: 1 }, { b: 2 }]);
        const quiet = await provider.send(queue, { from: 'tasker', kind: 'quiet' }, { notify: false });
        expect(await provider.queueDepth(queue)).toMatchObject({ total: 4, visible: 4 });

        const read = await pgmq.msg.readBatch<unknown>(queue, 30, 10);
        expect(read.map((m) => String(m.msgId))).toEqual([single, ...batch, quiet]);
        expect(read.map((m) => m.message)).toEqual([
          { from: 'tasker', kind: 'single' },
          { b: 1 },
          { b: 2 },
          { from: 'tasker', kind: 'quiet' },
        ]);
        expect(await provider.receive(queue, { limit: 10, visibilityTimeoutSeconds: 30 })).toEqual([]);

        expect(await pgmq.msg.archive(queue, Number(single))).toBe(true);
        expect(await pgmq.msg.deleteBatch(queue, batch.map(Number))).toEqual(batch.map(Number));
        // our provider can release what pgmq-js holds
        await provider.nack(queue, quiet);
        const [released] = await provider.receive<{ kind: string }>(queue, {
          limit: 1,
          visibilityTimeoutSeconds: 30,
        });
        expect(released).toMatchObject({ id: quiet, readCount: 2, payload: { kind: 'quiet' } });

        const { rows } = await db().query<{ msg_id: string; message: unknown }>(
          `SELECT msg_id, message FROM pgmq.a_${queue}`,
        );
        expect(rows.map((r) => [String(r.msg_id), r.message])).toEqual([
          [single, { from: 'tasker', kind: 'single' }],
        ]);
      } finally {
        await provider.close();
      }
    });

    it('a queue dropped by pgmq-js is reported as TASKER_QUEUE_NOT_FOUND by our provider', async () => {
      const provider = new PgmqMessagingProvider(db());
      try {
        const queue = await freshQueue('interop');
        await provider.ensureQueue(queue);
        await pgmq.queue.drop(queue);
        await expect(provider.send(queue, {})).rejects.toMatchObject({ code: 'TASKER_QUEUE_NOT_FOUND' });
      } finally {
        await provider.close();
      }
    });
  });
});
