import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { ValidationError } from '../../domain/errors.ts';
import { silentLogger } from '../../observability/logger.ts';
import type { Logger } from '../../observability/logger.ts';
import { clientAddress, hostPort, parseGrpcBindAddress } from './bindTarget.ts';
import type { BindTarget } from './bindTarget.ts';
import { runHealthProvider } from './healthReport.ts';
import type { HealthProvider, HealthReport } from './healthReport.ts';
import {
  loadProtos,
  loadReflectionProtos,
  REFLECTION_PROTOS,
  serviceDefinition,
  STANDARD_HEALTH_PROTO,
  TASKER_HEALTH_PROTO,
  TASKER_HEALTH_SERVICE,
} from './protoLoader.ts';
import { ReadinessMonitor } from './readinessMonitor.ts';
import { StandardHealth } from './standardHealth.ts';
import { taskerHealthHandlers } from './taskerHealthService.ts';

export { reportFromChecks } from './healthReport.ts';
export type { HealthCheck, HealthReport } from './healthReport.ts';

export interface GrpcServerOptions {
  role: 'orchestration' | 'worker';
  /** `host:port`: "0.0.0.0:9190", "[::]:9190", "127.0.0.1:0" (port 0: any free port). */
  bindAddress: string;
  /** Server reflection, so `grpcurl -plaintext host:port list` works. */
  enableReflection: boolean;
  /** grpc.health.v1.Health and tasker.v1.HealthService. */
  enableHealthService: boolean;
  /** Tasker's version, reported in HealthInfo. */
  version: string;
  /** TASKER_ENV, reported in HealthInfo. @defaultValue "" */
  environment?: string;
  /** The role's deployment_mode, reported in HealthInfo. @defaultValue "" */
  deploymentMode?: string;
  /**
   * Readiness (database reachable, listener up, not shutting down...): called per request and by the
   * standard health refresh. Should report failures as unhealthy checks rather than throw.
   */
  readiness: HealthProvider;
  /** Detailed health (a superset of readiness). @defaultValue readiness */
  detailed?: HealthProvider;
  /** A readiness or detailed evaluation taking longer counts as unhealthy. @defaultValue 2000 */
  healthTimeoutMs?: number;
  /** How often the standard health status is re-evaluated without a Check call. @defaultValue 5000 */
  refreshIntervalMs?: number;
  logger?: Logger;
}

export interface RunningGrpcServer {
  /** The bound port (the one the system chose when bindAddress asked for port 0). */
  readonly port: number;
  /** `host:port` where a client on this machine connects; a wildcard host becomes 127.0.0.1. */
  readonly address: string;
  /**
   * `false` makes every health answer NOT_SERVING / unhealthy whatever readiness says, until set back to
   * `true`; call it when shutdown begins so probes fail at once.
   */
  setServing(serving: boolean): void;
  /**
   * Marks the server not serving, ends health Watch streams, lets calls in flight finish for `graceMs`,
   * then cancels the rest. Safe to call twice.
   * @param graceMs @defaultValue 5000
   */
  stop(graceMs?: number): Promise<void>;
}

const DEFAULT_HEALTH_TIMEOUT_MS = 2_000;
const DEFAULT_REFRESH_INTERVAL_MS = 5_000;
const DEFAULT_GRACE_MS = 5_000;

/**
 * The gRPC server of a Tasker process (orchestration :9190, worker :9191): tasker.v1.HealthService, the
 * standard grpc.health.v1.Health that Kubernetes gRPC probes call, and server reflection.
 * @throws ValidationError TASKER_LISTEN_FAILED when the address is malformed, in use or not available
 */
export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const logger = options.logger ?? silentLogger;
  const key = `[${options.role}.grpc] bind_address`;
  const bind = parseGrpcBindAddress(options.bindAddress, key);
  const timeoutMs = options.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
  const server = new grpc.Server();
  const served: string[] = [];

  let monitor: ReadinessMonitor | undefined;
  let standard: StandardHealth | undefined;
  if (options.enableHealthService) {
    const health = new StandardHealth([TASKER_HEALTH_SERVICE]);
    const readiness = new ReadinessMonitor({
      readiness: options.readiness,
      timeoutMs,
      logger,
      onServingChange: (serving) => health.setServing(serving),
    });
    const detailed = options.detailed;
    server.addService(
      serviceDefinition(loadProtos([TASKER_HEALTH_PROTO]), TASKER_HEALTH_SERVICE),
      taskerHealthHandlers({
        info: {
          role: options.role,
          version: options.version,
          ...(options.environment !== undefined && { environment: options.environment }),
          ...(options.deploymentMode !== undefined && { deploymentMode: options.deploymentMode }),
        },
        readiness: () => readiness.check(),
        detailed:
          detailed === undefined
            ? () => readiness.check()
            : async (): Promise<HealthReport> =>
                readiness.applyServing(await runHealthProvider(detailed, timeoutMs, logger)),
        logger,
      }),
    );
    health.addToServer(server, () => readiness.check());
    served.push(TASKER_HEALTH_PROTO, STANDARD_HEALTH_PROTO);
    monitor = readiness;
    standard = health;
  }
  if (options.enableReflection) {
    new ReflectionService(loadReflectionProtos([...served, ...REFLECTION_PROTOS])).addToServer(server);
  }

  const port = await bindServer(server, bind, key);
  monitor?.start(options.refreshIntervalMs ?? DEFAULT_REFRESH_INTERVAL_MS);
  const address = clientAddress(bind.host, port);
  logger.info(
    {
      address: hostPort(bind.host, port),
      health: options.enableHealthService,
      reflection: options.enableReflection,
    },
    'gRPC server listening',
  );

  let stopped: Promise<void> | undefined;
  return {
    port,
    address,
    setServing: (serving) => monitor?.setServing(serving),
    stop: (graceMs = DEFAULT_GRACE_MS) =>
      (stopped ??= (async () => {
        monitor?.setServing(false);
        monitor?.stop();
        standard?.endWatches();
        await shutDown(server, graceMs);
        logger.info({ address }, 'gRPC server stopped');
      })()),
  };
}

function bindServer(server: grpc.Server, bind: BindTarget, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const fail = (error: unknown) => {
      server.forceShutdown();
      reject(listenFailed(bind, key, error));
    };
    try {
      server.bindAsync(bind.target, grpc.ServerCredentials.createInsecure(), (error, port) => {
        if (error === null) resolve(port);
        else fail(error);
      });
    } catch (error) {
      fail(error);
    }
  });
}

function listenFailed(bind: BindTarget, key: string, error: unknown): ValidationError {
  const reason = error instanceof Error ? error.message : String(error);
  // grpc-js reports bind failures as one message with the errno inside and no `code`; its text is all we have.
  const inUse = /EADDRINUSE/.test(reason);
  return new ValidationError(
    'TASKER_LISTEN_FAILED',
    inUse
      ? `cannot serve gRPC on ${bind.target}: the port is in use by another process; stop it or change ${key}`
      : `cannot serve gRPC on ${bind.target}: ${reason}; check ${key}`,
    { details: { address: bind.target, key }, cause: error },
  );
}

/** Lets calls in flight finish for `graceMs`, then cancels whatever is left. */
function shutDown(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const deadline = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(deadline);
      resolve();
    });
  });
}
