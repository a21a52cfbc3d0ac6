import type { Command } from 'commander';
import { migrate, schemaStatus } from '../db/migrate.ts';
import { migrationLabel as label } from '../db/schemaFiles.ts';
import { addDatabaseOption, openCreatingDatabase, resolveDatabase } from './databaseOption.ts';
import type { DatabaseOptions } from './databaseOption.ts';

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
        if (status.legacyLayout) {
          process.stdout.write(
            `Database ${db.displayName}: schema of an older Tasker (SQL functions inside numbered migrations); \`tasker migrate\` upgrades it in one transaction\n`,
          );
          return;
        }
        process.stdout.write(
          `Database ${db.displayName}: schema version ${status.current} of ${status.latest}\n`,
        );
        for (const m of status.pending) process.stdout.write(`  pending: ${label(m)}\n`);
        for (const f of status.pendingFunctions) process.stdout.write(`  pending: src/db/sql/${f.file}\n`);
        return;
      }
      const report = await migrate(db);
      if (report.legacyLayout) {
        process.stdout.write('  upgraded: the schema of an older Tasker to SQL functions as source files\n');
      }
      if (report.applied.length === 0 && report.appliedFunctions.length === 0) {
        process.stdout.write(
          `✓ Database ${db.displayName} is up to date (schema version ${report.current})\n`,
        );
      } else {
        for (const m of report.applied) process.stdout.write(`  applied: ${label(m)}\n`);
        for (const f of report.appliedFunctions) process.stdout.write(`  applied: src/db/sql/${f.file}\n`);
        process.stdout.write(`✓ Database ${db.displayName} migrated to schema version ${report.current}\n`);
      }
    } finally {
      await db.close();
    }
  });
}
