/**
 * Starts orchestrators and workers against one test database the way a deployment would, each with its
 * own PgmqMessagingProvider (and so its own LISTEN connection), and stops all of them again.
 */
import type { Database } from '../../../src/db/database.ts';
import type { TaskTemplate } from '../../../src/domain/template/taskTemplate.ts';
import { PgmqMessagingProvider } from '../../../src/messaging/pgmq/pgmqMessagingProvider.ts';
import type { Logger } from '../../../src/observability/logger.ts';
import { Orchestrator } from '../../../src/orchestration/orchestrator.ts';
import type { StepHandlerDefinition } from '../../../src/worker/handlerApi.ts';
import { Worker } from '../../../src/worker/worker.ts';
import type { WorkerOptions } from '../../../src/worker/worker.ts';
import { ExecutionRecorder } from './recorder.ts';

export interface ClusterOptions {
  db: Database;
  /** @defaultValue 1 */
  orchestrators?: number;
  /** @defaultValue 1 */
  workers?: number;
  /** Workers apply results in their own commit (true) or hand them to orchestration (false). */
  inline: boolean;
  handlers: readonly StepHandlerDefinition[];
  templates: readonly TaskTemplate[];
  /** Shared by every worker; a new one when omitted. */
  recorder?: ExecutionRecorder;
  /** @defaultValue 2 */
  leaseSeconds?: number;
  /** Polling of every component. @defaultValue 200 */
  pollIntervalMs?: number;
  maxConcurrentHandlers?: number;
  /** Orchestrators and workers log here (silent when omitted). */
  logger?: Logger;
  /** Anything else for every worker. */
  worker?: Partial<Omit<WorkerOptions, 'db' | 'provider' | 'handlers' | 'templates'>>;
}

export interface Cluster {
  orchestrators: Orchestrator[];
  workers: Worker[];
  recorder: ExecutionRecorder;
  /** Stops workers, then orchestrators, then closes every provider. Safe to call twice. */
  stop(): Promise<void>;
}

/** Starts workers first (they register the templates), then orchestrators. */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const recorder = options.recorder ?? new ExecutionRecorder();
  const orchestrators: Orchestrator[] = [];
  const workers: Worker[] = [];
  const providers: PgmqMessagingProvider[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const failures: unknown[] = [];
    const attempt = async (fn: () => Promise<void>): Promise<void> => {
      try {
        await fn();
      } catch (error) {
        failures.push(error);
      }
    };
    for (const worker of workers) await attempt(() => worker.stop());
    for (const orchestrator of orchestrators) await attempt(() => orchestrator.stop());
    for (const provider of providers) await attempt(() => provider.close());
    if (failures.length > 0) throw new AggregateError(failures, 'stopping the cluster failed');
  };
  const cluster: Cluster = { orchestrators, workers, recorder, stop };
  try {
    for (let i = 0; i < (options.workers ?? 1); i++) {
      const provider = new PgmqMessagingProvider(options.db);
      providers.push(provider);
      const holder = { id: '' };
      const worker = new Worker({
        db: options.db,
        provider,
        handlers: recorder.wrap(options.handlers, () => holder.id),
        templates: options.templates,
        leaseSeconds: options.leaseSeconds ?? 2,
        pollIntervalMs: options.pollIntervalMs ?? 200,
        applyResultsInline: options.inline,
        shutdownTimeoutMs: 1_000,
        ...(options.maxConcurrentHandlers !== undefined && {
          maxConcurrentHandlers: options.maxConcurrentHandlers,
        }),
        ...(options.logger !== undefined && { logger: options.logger }),
        ...options.worker,
      });
      holder.id = worker.id;
      workers.push(worker);
      await worker.start();
    }
    for (let i = 0; i < (options.orchestrators ?? 1); i++) {
      const provider = new PgmqMessagingProvider(options.db);
      providers.push(provider);
      const orchestrator = new Orchestrator({
        db: options.db,
        provider,
        pollIntervalMs: options.pollIntervalMs ?? 200,
        ...(options.logger !== undefined && { logger: options.logger }),
      });
      orchestrators.push(orchestrator);
      await orchestrator.start();
    }
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  return cluster;
}

/** Both ways results reach orchestration; engine scenarios run in each. */
export const RESULT_MODES = [
  { mode: 'inline results', inline: true },
  { mode: 'results via orchestration_step_results', inline: false },
] as const;
