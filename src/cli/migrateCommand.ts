import type { Command } from 'commander';
import { migrate, schemaStatus } from '../db/migrate.ts';
import { addDatabaseOption, openCreatingDatabase, resolveDatabase } from './databaseOption.ts';
import type { DatabaseOptions } from './databaseOption.ts';

const label = (m: { version: number; name: string }): string =>
  `${String(m.version).padStart(4, '0')}_${m.name}`;

export function registerMigrateCommand(program: Command): void {
  addDatabaseOption(
    program
      .command('migrate')
      .description('apply pending database migrations (safe to run from several processes at once)')
      .option('--status', 'only show the schema version and pending migrations'),
  ).action(async (options: DatabaseOptions & { status?: boolean }) => {
    const { url, pool } = resolveDatabase(options);
    const { db, created } = await openCreatingDatabase(url, {
      ...pool,
      maxConnections: 2,
      minConnections: 0,
    });
    try {
      if (created) process.stdout.write(`✓ Created database ${db.displayName}\n`);
      if (options.status === true) {
        const status = await schemaStatus(db);
        process.stdout.write(
          `Database ${db.displayName}: schema version ${status.current} of ${status.latest}\n`,
        );
        for (const m of status.pending) process.stdout.write(`  pending: ${label(m)}\n`);
        return;
      }
      const report = await migrate(db);
      if (report.applied.length === 0) {
        process.stdout.write(
          `✓ Database ${db.displayName} is up to date (schema version ${report.current})\n`,
        );
      } else {
        for (const m of report.applied) process.stdout.write(`  applied: ${label(m)}\n`);
        process.stdout.write(`✓ Database ${db.displayName} migrated to schema version ${report.current}\n`);
      }
    } finally {
      await db.close();
    }
  });
}
