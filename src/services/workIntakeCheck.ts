import type { CoordinationMonitor } from '../coordination/coordinationMonitor.ts';

/**
 * The readiness check both services run over HTTP and gRPC: can work reach this role now? Unhealthy when it
 * cannot (EventDrivenOnly with its listener failed, reconnecting or deaf); degraded when polling carries the
 * work because listeners are in trouble (Hybrid in fallback); healthy otherwise, naming the mode.
 */
export function workIntakeCheck(monitor: CoordinationMonitor) {
  return () => {
    const status = monitor.status();
    return Promise.resolve(
      !status.canReceiveWork
        ? { status: 'unhealthy' as const, message: status.problem ?? 'no work can arrive' }
        : status.problem !== null
          ? { status: 'degraded' as const, message: status.problem }
          : { status: 'healthy' as const, message: status.deploymentMode },
    );
  };
}
