/**
 * `tasker-workflows/embed`: orchestration, a worker or both in your own process, from plain options
 * (docs/embedding.md). The configuration resolves through the same schema and shipped settings as the
 * `tasker orchestration` and `tasker worker` services, so an embedded worker behaves like the service.
 */
export { startTasker } from './services/embeddedTasker.ts';
export type {
  StartTaskerOptions,
  EmbeddedTasker,
  EmbeddedWorkerOptions,
  EmbeddedListenOptions,
  EmbeddedTaskRequest,
  ListenAddress,
  TaskRequestOptions,
} from './services/embeddedTasker.ts';
export { WorkflowRun, WorkflowRunError } from './domain/workflowRun.ts';
export type { RunWaitOptions } from './domain/workflowRun.ts';
export type { TaskView } from './api/rest/views.ts';
export type { CreatedTask } from './db/queries/createTask.ts';
export type { Database, Queryable, QueryResult, SqlParam } from './db/database.ts';
export type { TaskerConfig } from './config/schema.ts';
export type { Logger, LogLevel } from './observability/logger.ts';
