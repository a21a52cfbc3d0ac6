/**
 * The client entry (`import { TaskerClient } from 'tasker-workflows/client'`): the REST client for programs that
 * create and follow tasks on a Tasker server. It loads no server code (no pg, fastify, gRPC or pino): an app
 * that only creates tasks stays small. test/e2e/package.test.ts checks its module graph.
 */
export * from './client/taskerClient.ts';
export { TaskerError, isTaskerError } from './domain/errors.ts';
export type { TaskerErrorCode } from './domain/errors.ts';
