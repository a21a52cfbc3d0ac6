/**
 * `tasker-workflows/testing`: run your workflows in your own test suite (docs/testing.md). `createTestTasker`
 * starts orchestration and a worker on a fresh in-memory database and runs tasks to their end; `runStep` runs
 * one step's code with the context a worker would give it, without a database.
 */
export { createTestTasker, runStep } from './services/testTasker.ts';
export type { TestTasker, TestTaskerOptions, RunStepOptions } from './services/testTasker.ts';
export { WorkflowRun, WorkflowRunError } from './domain/workflowRun.ts';
export type { TaskRequestOptions } from './services/embeddedTasker.ts';
