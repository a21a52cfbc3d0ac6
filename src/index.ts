/**
 * The package's main entry (`import { defineHandler, workflow } from 'tasker-workflows'`): what step handler
 * and workflow authors write with, and the errors programs catch. It loads no server code (no pg, fastify, gRPC or pino), so a
 * handlers module stays cheap to import. Everything not exported here or from `tasker-workflows/client` is
 * internal and may change; users never import a deep path.
 */
export {
  defineHandler,
  StepHandler,
  PermanentError,
  RetryableError,
  isPermanentError,
  isRetryableError,
} from './worker/handlerApi.ts';
export type {
  StepContext,
  StepLogger,
  StepLogFunction,
  HandlerFunction,
  StepHandlerDefinition,
} from './worker/handlerApi.ts';
export { HandlerRegistry } from './worker/handlerRegistry.ts';
export { workflow, Workflow } from './worker/workflow.ts';
export type {
  WorkflowStep,
  WorkflowContext,
  WorkflowStepOptions,
  WorkflowOptions,
  WorkflowInputSchema,
  WorkflowRetry,
  StepResult,
  WorkflowOutputOf,
} from './worker/workflow.ts';
export { workflowReference, WorkflowRun, WorkflowRunError } from './domain/workflowRun.ts';
export type {
  WorkflowReference,
  WorkflowInput,
  WorkflowOutput,
  WorkflowOutputShape,
  RunWaitOptions,
} from './domain/workflowRun.ts';
export { TaskerError, isTaskerError } from './domain/errors.ts';
export type { TaskerErrorCode } from './domain/errors.ts';
