import { reportFromChecks, startGrpcServer } from '../api/grpc/grpcServer.ts';
import type { HealthCheck, RunningGrpcServer } from '../api/grpc/grpcServer.ts';
import type { LoadedConfig } from '../config/loadConfig.ts';
import type { Database } from '../db/database.ts';
import type { Logger } from '../observability/logger.ts';
import { TASKER_VERSION } from './version.ts';

export interface ServiceGrpcOptions {
  role: 'orchestration' | 'worker';
  loaded: LoadedConfig;
  db: Database;
  logger: Logger;
  /** Overrides `[<role>.grpc] bind_address`. */
  bindAddress: string | undefined;
  /** Checks beside the database's, e.g. "not shutting down". */
  checks: Record<string, HealthCheck>;
  info: Record<string, string>;
}

/**
 * The gRPC health server of a service, from `[<role>.grpc]`: readiness is the database answering plus the
 * service's own checks. Undefined when `[<role>.grpc] enabled = false`.
 */
export async function startServiceGrpc(options: ServiceGrpcOptions): Promise<RunningGrpcServer | undefined> {
  const { config, environment } = options.loaded;
  const grpc = config[options.role].grpc;
  if (!grpc.enabled) return undefined;
  const { db, logger } = options;
  return startGrpcServer({
    role: options.role,
    bindAddress: options.bindAddress ?? grpc.bind_address,
    enableReflection: grpc.enable_reflection,
    enableHealthService: grpc.enable_health_service,
    version: TASKER_VERSION,
    environment,
    deploymentMode: config[options.role].deployment_mode,
    logger,
    readiness: () =>
      reportFromChecks(
        {
          database: async () => {
            await db.query('SELECT 1');
            return { status: 'healthy' };
          },
          ...options.checks,
        },
        { logger, info: options.info },
      ),
  });
}
