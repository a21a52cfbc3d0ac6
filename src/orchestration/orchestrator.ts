import { hostname } from 'node:os';
import { v7 as uuidv7 } from 'uuid';
import type { Database } from '../db/database.ts';
import { processOrchestrationQueues } from '../db/queries/orchestrationQueues.ts';
import { isTaskerError } from '../domain/errors.ts';
import type { MessagingProvider } from '../messaging/messagingProvider.ts';
import { WakeupLoop } from '../messaging/wakeupLoop.ts';
import type { Logger } from '../observability/logger.ts';
import { silentLogger } from '../observability/logger.ts';
import type { TaskerMetrics } from '../observability/metrics.ts';
import { createTask } from './taskInitializer.ts';

export const STEP_RESULTS_QUEUE = 'orchestration_step_results';
export const TASK_REQUESTS_QUEUE = 'orchestration_task_requests';
export const FINALIZATIONS_QUEUE = 'orchestration_task_finalizations';

export interface OrchestratorOptions {
  db: Database;
  provider: MessagingProvider;
  logger?: Logger;
  /** Messages read per queue read. @defaultValue 50 */
  batchSize?: number;
  /** Seconds a read message stays hidden while it is processed. @defaultValue 30 */
  visibilityTimeoutSeconds?: number;
  /** LISTEN for queue notifications. @defaultValue true */
  listen?: boolean;
  /** Safety-net polling of the three queues; null disables. @defaultValue 1000 */
  pollIntervalMs?: number | null;
  /** Counts tasks created from orchestration_task_requests. @defaultValue none */
  metrics?: TaskerMetrics;
}

interface TaskRequestMessage {
  request_id?: string;
  task_request?: unknown;
}

/**
 * The orchestration role at library level: consumes its three queues (reference §6.1) — step results
 * (applied exactly once, next steps enqueued, tasks finalized), task requests from any producer (created
 * exactly like API requests), and finalization requests. Replicas need no coordination: every effect is a
 * compare-and-set inside one SQL function.
 */
export class Orchestrator {
  readonly processorUuid = uuidv7();
  readonly id = `${hostname()}-${process.pid}-orchestrator-${this.processorUuid.slice(-8)}`;
  private readonly options: OrchestratorOptions;
  private readonly logger: Logger;
  private readonly loop: WakeupLoop;

  constructor(options: OrchestratorOptions) {
    this.options = options;
    this.logger = (options.logger ?? silentLogger).child({
      component: 'orchestrator',
      processor_uuid: this.processorUuid,
    });
    this.loop = new WakeupLoop({
      provider: options.provider,
      queues: [STEP_RESULTS_QUEUE, TASK_REQUESTS_QUEUE, FINALIZATIONS_QUEUE],
      drain: () => this.drain(),
      listen: options.listen ?? true,
      pollIntervalMs: options.pollIntervalMs === undefined ? 1_000 : options.pollIntervalMs,
      logger: this.logger,
    });
  }

  /** Safe to call twice. */
  async start(): Promise<void> {
    await this.loop.start();
    this.logger.info('orchestrator started');
  }

  /** Finishes the batch in progress, then stops. Safe to call twice. */
  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /** Handles everything waiting in the three queues now. */
  async drain(): Promise<void> {
    const batch = this.options.batchSize ?? 50;
    const vt = this.options.visibilityTimeoutSeconds ?? 30;
    for (;;) {
      // Step results and finalizations are applied in SQL, in one round trip that also says whether task
      // requests wait; those need TypeScript (validation, identity), so only then do we read them.
      const pass = await processOrchestrationQueues(this.options.db, batch, vt, this.processorUuid);
      const requests = pass.taskRequestsWaiting ? await this.processTaskRequests(batch, vt) : 0;
      if (pass.stepResults < batch && requests < batch && pass.finalizations < batch) return;
    }
  }

  private async processTaskRequests(batch: number, vt: number): Promise<number> {
    const messages = await this.options.provider.receive<TaskRequestMessage>(TASK_REQUESTS_QUEUE, {
      limit: batch,
      visibilityTimeoutSeconds: vt,
    });
    for (const message of messages) {
      const payload: unknown = message.payload;
      const body =
        typeof payload === 'object' && payload !== null && 'task_request' in payload
          ? (payload as TaskRequestMessage).task_request
          : payload;
      try {
        await createTask(this.options.db, body, {
          processorUuid: this.processorUuid,
          requestMsgId: message.id,
          ...(this.options.metrics !== undefined && { metrics: this.options.metrics }),
        });
      } catch (error) {
        if (!isTaskerError(error)) throw error;
        // A request that can never become a task (bad input, unknown template, duplicate) is archived with
        // the reason logged; it stays in a_orchestration_task_requests for inspection.
        this.logger.warn(
          {
            request_id: (payload as TaskRequestMessage | null)?.request_id,
            msg_id: message.id,
            code: error.code,
            err: error.message,
          },
          'task request rejected',
        );
        await this.options.provider.ack(TASK_REQUESTS_QUEUE, message.id);
      }
    }
    return messages.length;
  }
}
