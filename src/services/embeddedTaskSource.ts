import { taskAlreadyFinished, taskNotFound } from '../api/rest/routes/taskRoutes.ts';
import type { TaskCompletionWaiter } from '../api/rest/taskCompletionWaiter.ts';
import { taskView } from '../api/rest/views.ts';
import type { TaskView } from '../api/rest/views.ts';
import type { Queryable } from '../db/database.ts';
import { cancelTask } from '../db/queries/orchestrationQueues.ts';
import { getTaskSnapshot, getTaskView } from '../db/queries/taskViews.ts';
import { isFinished } from '../domain/workflowRun.ts';
import type { TaskSource } from '../domain/workflowRun.ts';

/**
 * Tasks read straight from the database, in the REST API's view (so a run followed in-process answers what
 * `GET /v1/tasks/{uuid}` would). Waiting wakes on the task-finished notification when orchestration runs in
 * this process with LISTEN; otherwise, and as a safety net, the waiter re-reads the task's row.
 */
export function databaseTaskSource(
  db: Queryable,
  completions: TaskCompletionWaiter,
  processorUuid: string | null,
): TaskSource<TaskView> {
  const get = async (taskUuid: string): Promise<TaskView> => {
    const row = await getTaskView(db, taskUuid);
    if (row === undefined) throw taskNotFound(taskUuid);
    return taskView(row);
  };
  return {
    get,
    async wait(taskUuid, { waitMs, signal }) {
      // The cheap primary-key read while waiting; the full view (with readiness) once, at the end.
      await completions.waitFor(
        taskUuid,
        async () => {
          const row = await getTaskSnapshot(db, taskUuid);
          if (row === undefined) throw taskNotFound(taskUuid);
          return row;
        },
        (row) => isFinished({ task_uuid: row.task_uuid, status: row.status }),
        waitMs,
        signal,
      );
      signal?.throwIfAborted();
      return get(taskUuid);
    },
    async cancel(taskUuid) {
      const outcome = await cancelTask(db, taskUuid, processorUuid);
      if (outcome === 'not_found') throw taskNotFound(taskUuid);
      if (outcome !== 'cancelled') throw taskAlreadyFinished(taskUuid, outcome);
      return get(taskUuid);
    },
  };
}
