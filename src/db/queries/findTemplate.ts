import type { Queryable } from '../database.ts';
import type { TaskTemplate } from '../../domain/template/taskTemplate.ts';

export interface RegisteredTemplate {
  namedTaskUuid: string;
  template: TaskTemplate;
}

/** The registered template for namespace/name/version, or undefined. Version "latest" is not guessed here. */
export async function findTemplate(
  db: Queryable,
  namespace: string,
  name: string,
  version: string,
): Promise<RegisteredTemplate | undefined> {
  const { rows } = await db.query<{ named_task_uuid: string; configuration: TaskTemplate }>(
    `SELECT nt.named_task_uuid, nt.configuration
     FROM tasker.named_tasks nt JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid
     WHERE ns.name = $1 AND nt.name = $2 AND nt.version = $3`,
    [namespace, name, version],
    { name: 'tasker_find_template' },
  );
  const row = rows[0];
  return row === undefined ? undefined : { namedTaskUuid: row.named_task_uuid, template: row.configuration };
}

/** Versions registered for namespace/name, newest first by registration; for "did you mean" answers. */
export async function listTemplateVersions(
  db: Queryable,
  namespace: string,
  name: string,
): Promise<string[]> {
  const { rows } = await db.query<{ version: string }>(
    `SELECT nt.version FROM tasker.named_tasks nt
     JOIN tasker.task_namespaces ns ON ns.task_namespace_uuid = nt.task_namespace_uuid
     WHERE ns.name = $1 AND nt.name = $2 ORDER BY nt.created_at DESC`,
    [namespace, name],
  );
  return rows.map((row) => row.version);
}
