import type { MessagingProvider } from '../messaging/messagingProvider.ts';
import type { NotificationListener } from '../messaging/pgmq/notificationListener.ts';
import type { Logger } from '../observability/logger.ts';
import type { ConsumerMetrics, TaskerMetrics } from '../observability/metrics.ts';
import { CoordinationMonitor } from './coordinationMonitor.ts';
import type { ListenerStateSource } from './coordinationMonitor.ts';
import type { CoordinationSettings } from './coordinationSettings.ts';

/** The LISTEN connection behind a provider that has one (PGMQ creates it on first subscribe). */
function providerListenerState(provider: MessagingProvider): ListenerStateSource {
  return () => {
    const listener = (provider as { notificationListener?: NotificationListener | null })
      .notificationListener;
    return listener?.state ?? null;
  };
}

/**
 * The coordination of one role (an Orchestrator or a Worker): its monitor, reading the given listener state
 * or the provider's and counting Hybrid's switches in the metrics, and what its queue consumers report to
 * the metrics (when there are any).
 */
export function roleCoordination(options: {
  settings: CoordinationSettings;
  provider: MessagingProvider;
  listenerState: ListenerStateSource | undefined;
  logger: Logger;
  metrics: TaskerMetrics | undefined;
}): { monitor: CoordinationMonitor; consumerMetrics: { metrics?: ConsumerMetrics } } {
  const { metrics, settings } = options;
  const monitor = new CoordinationMonitor({
    settings,
    listenerState: options.listenerState ?? providerListenerState(options.provider),
    logger: options.logger,
    ...(metrics !== undefined && { onSwitch: (to) => metrics.recordModeSwitch(settings.mode, to) }),
  });
  return {
    monitor,
    consumerMetrics: metrics === undefined ? {} : { metrics: metrics.consumerMetrics(settings.mode) },
  };
}
