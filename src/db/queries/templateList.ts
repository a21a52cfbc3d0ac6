import type { Queryable } from '../database.ts';
import type { TaskTemplate } from '../../domain/template/taskTemplate.ts';

/** One registered template (tasker.named_tasks), without its steps. */
export interface TemplateSummaryRow {
  namespace: string;
  name: string;
  version: string;
  description: string | null;
  step_count: number;
  identity_strategy: string;
  registered_at: Date;
  updated_at: Date;
}

/** Registered templates, optionally of one namespace, ordered by namespace, name, then newest first. */
export async function listTemplates(db: Queryable, namespace?: string): Promise<TemplateSummaryRow[]> {
  const { rows } = await db.query<TemplateSummaryRow>(
    `SELECT ns.name AS namespace, nt.name, nt.version, nt.description,
            coalesce(jsonb_array_length(nt.configuration -> 'steps'), 0)::int AS step_count,
            nt.identity_strategy, nt.created_at AS registered_at, nt.updated_at
     FROM tasker.named_tasks nt JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid
     WHERE $1::text IS NULL OR ns.name = $1
     ORDER BY ns.name, nt.name, nt.created_at DESC`,
    [namespace ?? null],
  );
  return rows;
}

/** The whole registered template (as the worker registered it) with its registration times, or undefined. */
export async function getRegisteredTemplate(
  db: Queryable,
  namespace: string,
  name: string,
  version: string,
): Promise<{ template: TaskTemplate; registeredAt: Date; updatedAt: Date } | undefined> {
  const { rows } = await db.query<{ configuration: TaskTemplate; created_at: Date; updated_at: Date }>(
    `SELECT nt.configuration, nt.created_at, nt.updated_at
     FROM tasker.named_tasks nt JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid
     WHERE ns.name = $1 AND nt.name = $2 AND nt.version = $3`,
    [namespace, name, version],
  );
  const row = rows[0];
  return row === undefined
    ? undefined
    : { template: row.configuration, registeredAt: row.created_at, updatedAt: row.updated_at };
}
