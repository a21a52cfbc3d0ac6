import type { MessagingProvider } from '../messaging/messagingProvider.ts';
import type { NotificationListener } from '../messaging/pgmq/notificationListener.ts';
import type { Logger } from '../observability/logger.ts';
import type { TaskerMetrics } from '../observability/metrics.ts';
import { CoordinationMonitor } from './coordinationMonitor.ts';
import type { ListenerStateSource } from './coordinationMonitor.ts';
import type { CoordinationSettings } from './coordinationSettings.ts';

/** The LISTEN connection behind a provider that has one (PGMQ creates it on first subscribe). */
export function providerListenerState(provider: MessagingProvider): ListenerStateSource {
  return () => {
    const listener = (provider as { notificationListener?: NotificationListener | null })
      .notificationListener;
    return listener?.state ?? null;
  };
}

/**
 * The monitor of one role (an Orchestrator or a Worker): reads the given listener state, or the provider's,
 * and counts Hybrid's switches in the metrics when there are any.
 */
export function roleMonitor(options: {
  settings: CoordinationSettings;
  provider: MessagingProvider;
  listenerState: ListenerStateSource | undefined;
  logger: Logger;
  metrics: TaskerMetrics | undefined;
}): CoordinationMonitor {
  const { metrics, settings } = options;
  return new CoordinationMonitor({
    settings,
    listenerState: options.listenerState ?? providerListenerState(options.provider),
    logger: options.logger,
    ...(metrics !== undefined && { onSwitch: (to) => metrics.recordModeSwitch(settings.mode, to) }),
  });
}
