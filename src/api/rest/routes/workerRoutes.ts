import type { FastifyInstance } from 'fastify';
import { listLiveWorkers } from '../../../db/queries/workerRegistry.ts';
import type { RestContext } from '../restContext.ts';
import { errorResponses, timestamp } from '../schemas/common.ts';
import { iso } from '../views.ts';

const liveWorkerSchema = {
  type: 'object',
  required: [
    'worker_id',
    'hostname',
    'pid',
    'namespaces',
    'capacity',
    'version',
    'started_at',
    'heartbeat_at',
    'heartbeat_age_seconds',
  ],
  properties: {
    worker_id: { type: 'string' },
    hostname: { type: 'string' },
    pid: { type: 'integer' },
    namespaces: { type: 'array', items: { type: 'string' }, description: 'Namespaces it claims steps of' },
    capacity: { type: 'integer', description: 'Steps it runs at once' },
    version: { type: 'string', description: 'Tasker version of the worker' },
    started_at: timestamp('First heartbeat of this worker'),
    heartbeat_at: timestamp('Latest heartbeat'),
    heartbeat_age_seconds: {
      type: 'number',
      description: 'Seconds since the latest heartbeat (database clock)',
    },
  },
} as const;

/**
 * The worker registry over HTTP, so operators (`tasker worker list`) see who serves which namespace without
 * database access. `system:handlers_read` is the permission of the list that reads what serves the
 * handlers; a token for task operations need not see the fleet.
 */
export function registerWorkerRoutes(app: FastifyInstance, ctx: RestContext): void {
  app.get(
    '/v1/workers',
    {
      config: { access: { permission: 'system:handlers_read' } },
      schema: {
        tags: ['workers'],
        summary: 'List live workers',
        description:
          'Workers whose heartbeat (every 10 s) is younger than 30 s, oldest first, with the namespaces they serve.',
        response: {
          200: {
            type: 'object',
            required: ['workers'],
            properties: { workers: { type: 'array', items: liveWorkerSchema } },
          },
          ...errorResponses(),
        },
      },
    },
    async () => {
      const workers = await listLiveWorkers(ctx.db);
      return {
        workers: workers.map((worker) => ({
          ...worker,
          started_at: iso(worker.started_at),
          heartbeat_at: iso(worker.heartbeat_at),
        })),
      };
    },
  );
}
