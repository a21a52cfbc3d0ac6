import type { MigrationReport } from '../db/migrate.ts';

/** The one line `tasker dev` and `tasker demo` print after migrating: the version and what this run applied. */
export function schemaReportLine(report: MigrationReport): string {
  const applied = [
    report.applied.length > 0 ? `${report.applied.length} migrations` : '',
    report.appliedFunctions.length > 0 ? `${report.appliedFunctions.length} SQL function files` : '',
  ].filter((part) => part !== '');
  const notes = [
    ...(applied.length > 0 ? [`applied ${applied.join(', ')}`] : []),
    ...(report.legacyLayout ? ['upgraded from the layout of an older Tasker'] : []),
  ];
  return `✓ Schema at version ${report.current}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`;
}
