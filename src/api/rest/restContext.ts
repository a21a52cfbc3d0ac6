import type { Database } from '../../db/database.ts';
import type { TaskLimits } from '../../domain/limits.ts';
import type { Logger } from '../../observability/logger.ts';
import type { TaskerMetrics } from '../../observability/metrics.ts';
import type { TaskerTracing } from '../../observability/tracing.ts';
import type { TemplateCache } from '../../orchestration/templateCache.ts';
import type { TaskCompletionWaiter } from './taskCompletionWaiter.ts';

/** What route handlers work with: built once by buildRestServer from its options. */
export interface RestContext {
  db: Database;
  logger: Logger;
  /** Shared by task creation and the 201 answer (which reads the template createTask just cached). */
  templates: TemplateCache;
  /** `[limits]` task creation enforces. */
  limits: TaskLimits;
  processorUuid: string | undefined;
  /** Seconds to wait when load must be shed, or null. */
  backpressure: () => number | null;
  /** Wakes `?wait=N` requests when their task finishes; without it they poll. */
  completionWaiter: TaskCompletionWaiter | undefined;
  /** Created tasks are counted here when set. */
  metrics: TaskerMetrics | undefined;
  /** Created tasks start their trace here when set. */
  tracing: TaskerTracing | undefined;
  /** The longest `?wait` honoured: it must end before the request timeout does. */
  maxWaitMs: number;
}
