import { afterEach, describe, expect, it } from 'vitest';
import { NotificationListener } from '../../src/messaging/pgmq/notificationListener.ts';
import { PgmqMessagingProvider } from '../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import type { QueueSignal } from '../../src/messaging/messagingProvider.ts';
import { queueNamespace } from '../../src/messaging/queueName.ts';
import { BACKENDS, useBackendDatabase } from '../helpers/testDatabase.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(read: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`nothing arrived within ${timeoutMs} ms`);
    await sleep(10);
  }
}

describe.each(BACKENDS)('send with notify on %s', (backend) => {
  const getDb = useBackendDatabase(backend);
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function listenRaw(
    channels: string[],
  ): Promise<{ got: { channel: string; payload: Record<string, unknown> }[] }> {
    const listener = new NotificationListener(getDb(), { heartbeatTimeoutMs: 2_000 });
    cleanups.push(() => listener.stop());
    await listener.start();
    const got: { channel: string; payload: Record<string, unknown> }[] = [];
    for (const channel of channels) {
      await listener.subscribe(channel, (payload, ch) =>
        got.push({ channel: ch, payload: JSON.parse(payload) as Record<string, unknown> }),
      );
    }
    return { got };
  }

  async function provider(): Promise<PgmqMessagingProvider> {
    const p = new PgmqMessagingProvider(getDb());
    cleanups.push(() => p.close());
    return Promise.resolve(p);
  }

  it('notifies only after commit, and never after rollback', async () => {
    const p = await provider();
    const queue = 'worker_commit_queue';
    await p.ensureQueue(queue);
    const signals: QueueSignal[] = [];
    await p.subscribe([queue], (signal) => signals.push(signal));
    await sleep(50);
    signals.length = 0;

    let sentId = '';
    await getDb().transaction(async (tx) => {
      const { rows } = await tx.query<{ id: unknown }>(
        'SELECT tasker.pgmq_send_with_notify($1, $2::jsonb, 0) AS id',
        [queue, '{"x":1}'],
      );
      sentId = String(rows[0]?.id);
      await sleep(300);
      // Still inside the transaction: nobody may have been woken for a message they cannot see.
      expect(signals).toEqual([]);
    });
    const signal = await waitFor(() => signals.find((s) => s.kind === 'message_ready'));
    expect(signal).toMatchObject({ kind: 'message_ready', queue, messageId: sentId });

    signals.length = 0;
    await expect(
      getDb().transaction(async (tx) => {
        await tx.query('SELECT tasker.pgmq_send_with_notify($1, $2::jsonb, 0)', [queue, '{"x":2}']);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    await sleep(500);
    expect(signals).toEqual([]);
    const received = await p.receive(queue, { limit: 10, visibilityTimeoutSeconds: 30 });
    expect(received.map((m) => m.payload)).toEqual([{ x: 1 }]);
  });

  it('signals on pgmq_message_ready.<namespace> and pgmq_message_ready with a small payload, never the body', async () => {
    const p = await provider();
    const queue = 'worker_payments_queue';
    await p.ensureQueue(queue);
    const { got } = await listenRaw(['pgmq_message_ready.payments', 'pgmq_message_ready']);
    const id = await p.send(queue, { secret_body: 'x'.repeat(5_000) });
    await waitFor(() => (got.length >= 2 ? true : undefined));
    expect(got.map((g) => g.channel).sort()).toEqual(['pgmq_message_ready', 'pgmq_message_ready.payments']);
    for (const { payload } of got) {
      expect(payload).toMatchObject({
        event_type: 'message_ready',
        queue_name: queue,
        namespace: 'payments',
        delay_seconds: 0,
      });
      expect(String(payload.msg_id)).toBe(id);
      expect(Object.keys(payload).sort()).toEqual([
        'delay_seconds',
        'event_type',
        'msg_id',
        'namespace',
        'queue_name',
        'ready_at',
      ]);
      expect(JSON.stringify(payload)).not.toContain('secret_body');
    }
  });

  it('a batch send emits one batch signal naming the first id and the count', async () => {
    const p = await provider();
    const queue = 'orchestration_step_results';
    await p.ensureQueue(queue);
    const signals: QueueSignal[] = [];
    await p.subscribe([queue], (signal) => signals.push(signal));
    const ids = await p.sendBatch(queue, [{ a: 1 }, { a: 2 }, { a: 3 }]);
    const signal = await waitFor(() => signals.find((s) => s.kind === 'batch_ready'));
    expect(signal).toMatchObject({ kind: 'batch_ready', queue, messageId: ids[0], count: 3 });
    expect(signals.filter((s) => s.kind === 'batch_ready')).toHaveLength(1);
  });

  it('subscribers get only their queues, although orchestration queues share one channel', async () => {
    const p = await provider();
    await p.ensureQueue('orchestration_task_requests');
    await p.ensureQueue('orchestration_task_finalizations');
    const signals: QueueSignal[] = [];
    await p.subscribe(['orchestration_task_finalizations'], (signal) => signals.push(signal));
    await p.send('orchestration_task_requests', { not: 'mine' });
    const mine = await p.send('orchestration_task_finalizations', { mine: true });
    await waitFor(() => signals.find((s) => s.kind === 'message_ready'));
    await sleep(100);
    expect(signals.filter((s) => s.kind !== 'catch_up')).toEqual([
      expect.objectContaining({ queue: 'orchestration_task_finalizations', messageId: mine }),
    ]);
  });

  it('a subscription starts with a catch_up signal per queue, so messages sent before it are read', async () => {
    const p = await provider();
    await p.ensureQueue('worker_early_queue');
    await p.send('worker_early_queue', { early: true });
    const signals: QueueSignal[] = [];
    await p.subscribe(['worker_early_queue'], (signal) => signals.push(signal));
    expect(signals).toContainEqual({ kind: 'catch_up', queue: 'worker_early_queue' });
  });

  it("answers the seed's diagnostic NOTIFY pgmq_message_ready, 'test' by looking at the orchestration queues", async () => {
    const p = await provider();
    await p.ensureQueue('orchestration_step_results');
    const signals: QueueSignal[] = [];
    await p.subscribe(['orchestration_step_results'], (signal) => signals.push(signal));
    const received = p.notificationListener?.state.notificationsReceived ?? 0;
    signals.length = 0;
    await getDb().query("NOTIFY pgmq_message_ready, 'test'");
    await waitFor(() => signals.find((s) => s.kind === 'catch_up'));
    expect(signals).toEqual([{ kind: 'catch_up', queue: 'orchestration_step_results' }]);
    expect(p.notificationListener?.state.notificationsReceived).toBe(received + 1);
  });

  it('a delayed send says when the message will be ready', async () => {
    const p = await provider();
    const queue = 'worker_delayed_queue';
    await p.ensureQueue(queue);
    const signals: QueueSignal[] = [];
    await p.subscribe([queue], (signal) => signals.push(signal));
    const before = Date.now();
    await p.send(queue, { later: true }, { delaySeconds: 30 });
    const signal = await waitFor(() => signals.find((s) => s.kind === 'message_ready'));
    expect(
      signal.kind === 'message_ready' && signal.readyAt !== null && signal.readyAt.getTime() - before,
    ).toBeGreaterThan(29_000);
  });

  it('creating a queue notifies pgmq_queue_created with its namespace', async () => {
    const p = await provider();
    const { got } = await listenRaw(['pgmq_queue_created']);
    await p.ensureQueue('worker_inventory_queue');
    const created = await waitFor(() => got.find((g) => g.payload.queue_name === 'worker_inventory_queue'));
    expect(created.payload).toEqual({
      event_type: 'queue_created',
      queue_name: 'worker_inventory_queue',
      namespace: 'inventory',
    });
  });

  it('derives namespaces the same way in SQL and TypeScript', async () => {
    const names = [
      'worker_payments_queue',
      'orchestration_step_results',
      'orchestration',
      'fulfillment_queue',
      'plain',
      'worker_a_b_queue',
    ];
    const { rows } = await getDb().query<{ name: string; ns: string }>(
      'SELECT name, tasker.queue_namespace(name) AS ns FROM unnest($1::text[]) AS name',
      [names],
    );
    expect(rows.map((r) => r.ns)).toEqual(names.map(queueNamespace));
    expect(rows.map((r) => r.ns)).toEqual([
      'payments',
      'orchestration',
      'orchestration',
      'fulfillment',
      'default',
      'a_b',
    ]);
  });
});
