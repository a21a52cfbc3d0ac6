import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../observability/logger.ts';
import type { HealthReport, HealthStatus } from './healthReport.ts';

/** Facts about the process that do not change while it runs; they fill HealthInfo. */
interface ProcessInfo {
  role: 'orchestration' | 'worker';
  version: string;
  environment?: string;
  deploymentMode?: string;
}

export interface TaskerHealthServiceOptions {
  info: ProcessInfo;
  /** Must not reject (see runHealthProvider). */
  readiness: () => Promise<HealthReport>;
  /** Must not reject. */
  detailed: () => Promise<HealthReport>;
  logger: Logger;
}

const STATUS: Record<HealthStatus, string> = {
  healthy: 'HEALTH_STATUS_HEALTHY',
  degraded: 'HEALTH_STATUS_DEGRADED',
  unhealthy: 'HEALTH_STATUS_UNHEALTHY',
};

function timestamp(at: Date): { seconds: string; nanos: number } {
  const ms = at.getTime();
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}

/** google.protobuf.Struct from flat JSON values (field names as protobufjs bundles them). */
function struct(values: Record<string, string | number | boolean>): { fields: Record<string, object> } {
  return {
    fields: Object.fromEntries(
      Object.entries(values).map(([key, value]) => [
        key,
        typeof value === 'string'
          ? { stringValue: value }
          : typeof value === 'number'
            ? { numberValue: value }
            : { boolValue: value },
      ]),
    ),
  };
}

function info(process: ProcessInfo, details: Record<string, string | number | boolean>) {
  return {
    version: process.version,
    environment: process.environment ?? '',
    deployment_mode: process.deploymentMode ?? '',
    role: process.role,
    details: struct(details),
  };
}

function reportMessage(process: ProcessInfo, report: HealthReport) {
  return {
    status: STATUS[report.status],
    timestamp: timestamp(new Date()),
    checks: Object.fromEntries(
      Object.entries(report.checks).map(([name, check]) => [
        name,
        { status: STATUS[check.status], message: check.message ?? '', duration_ms: check.duration_ms ?? 0 },
      ]),
    ),
    info: info(process, report.info ?? {}),
  };
}

function unary(
  answer: () => object | Promise<object>,
  logger: Logger,
): grpc.handleUnaryCall<unknown, object> {
  return (call, callback) => {
    Promise.resolve()
      .then(answer)
      .then(
        (response) => callback(null, response),
        (error: unknown) => {
          logger.error({ err: error, method: call.getPath() }, 'gRPC health call failed');
          callback({ code: grpc.status.INTERNAL, details: 'health check failed; see the service log' });
        },
      );
  };
}

/**
 * Handlers of tasker.v1.HealthService (proto/tasker/v1/health.proto). Health is reported in the response
 * (`status`), never as a gRPC error: an unhealthy process still answers OK with its checks.
 */
export function taskerHealthHandlers(options: TaskerHealthServiceOptions): grpc.UntypedServiceImplementation {
  const { logger } = options;
  const live = () => ({ status: STATUS.healthy, timestamp: timestamp(new Date()) });
  return {
    CheckHealth: unary(() => ({ ...live(), info: info(options.info, {}) }), logger),
    CheckLiveness: unary(live, logger),
    CheckReadiness: unary(async () => reportMessage(options.info, await options.readiness()), logger),
    CheckDetailedHealth: unary(async () => reportMessage(options.info, await options.detailed()), logger),
  };
}
