import type { Queryable } from '../database.ts';
import type { TaskTemplate } from '../../domain/template/taskTemplate.ts';

/**
 * Upserts a template by (namespace, name, version) and makes sure its namespace queue exists. Workers call
 * this at start-up for the templates they serve; orchestration reads templates only from the database.
 * Returns the named task's uuid.
 */
export async function registerTemplate(db: Queryable, template: TaskTemplate): Promise<string> {
  const { rows } = await db.query<{ named_task_uuid: string }>(
    `WITH ns AS (
       INSERT INTO tasker.task_namespaces (name) VALUES ($1)
       ON CONFLICT (name) DO UPDATE SET updated_at = tasker.task_namespaces.updated_at
       RETURNING task_namespace_uuid
     ), queue AS (
       SELECT pgmq.create('worker_' || $1 || '_queue')
     )
     INSERT INTO tasker.named_tasks (task_namespace_uuid, name, version, description, identity_strategy, configuration)
     SELECT ns.task_namespace_uuid, $2, $3, $4, $5, $6::jsonb FROM ns, queue
     ON CONFLICT (task_namespace_uuid, name, version) DO UPDATE
       SET description = EXCLUDED.description,
           identity_strategy = EXCLUDED.identity_strategy,
           configuration = EXCLUDED.configuration,
           updated_at = now()
     RETURNING named_task_uuid`,
    [
      template.namespace,
      template.name,
      template.version,
      template.description,
      template.identityStrategy,
      JSON.stringify(template),
    ],
  );
  const uuid = rows[0]?.named_task_uuid;
  if (uuid === undefined)
    throw new Error(`registering template ${template.namespace}/${template.name} returned no row`);
  return uuid;
}
