import type { Command } from 'commander';
import { assertSchemaCurrent } from '../db/migrate.ts';
import { openDatabase } from '../db/openDatabase.ts';
import { addDatabaseOption, resolveDatabase } from './databaseOption.ts';
import type { DatabaseOptions } from './databaseOption.ts';

interface MetricsRow {
  queue_name: string;
  queue_length: string | number;
  queue_visible_length: string | number;
  oldest_msg_age_sec: number | null;
  total_messages: string | number;
}

export function registerQueueCommands(program: Command): void {
  const queue = program.command('queue').description('inspect the message queues');
  addDatabaseOption(queue.command('list').description('list queues with their depth and age')).action(
    async (options: DatabaseOptions) => {
      const { url, pool } = resolveDatabase(options);
      const db = await openDatabase(url, { ...pool, maxConnections: 1, minConnections: 0 });
      try {
        await assertSchemaCurrent(db);
        const { rows } = await db.query<MetricsRow>('SELECT * FROM pgmq.metrics_all()');
        const table = rows.map((r) => [
          r.queue_name,
          String(r.queue_length),
          String(r.queue_visible_length),
          r.oldest_msg_age_sec === null ? '-' : `${r.oldest_msg_age_sec}s`,
          String(r.total_messages),
        ]);
        const header = ['QUEUE', 'DEPTH', 'VISIBLE', 'OLDEST', 'SENT'];
        const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]?.length ?? 0)));
        for (const row of [header, ...table]) {
          process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ')}\n`);
        }
        if (rows.length === 0) process.stdout.write('(no queues yet)\n');
      } finally {
        await db.close();
      }
    },
  );
}
