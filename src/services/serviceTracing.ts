import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  RandomIdGenerator,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { TaskerConfig } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { TaskRootIdGenerator } from '../observability/taskTraceContext.ts';
import { TaskerTracing, TRACER_NAME } from '../observability/tracing.ts';
import { TASKER_VERSION } from './version.ts';

/** How long one OTLP export (and the flush at shutdown) may take: a missing collector must not hold up stop. */
const EXPORT_TIMEOUT_MS = 5_000;

export interface ServiceTracing {
  /** What the engine components of the service trace with. */
  readonly tracing: TaskerTracing;
  /** Exports the spans still buffered (bounded by EXPORT_TIMEOUT_MS) and stops. Safe to call twice. */
  shutdown(): Promise<void>;
}

export interface ServiceTracingOptions {
  telemetry: TaskerConfig['telemetry'];
  role: 'orchestration' | 'worker';
  logger: Logger;
  /** Where spans go instead of OTLP/HTTP, each as it ends (tests: InMemorySpanExporter). */
  exporter?: SpanExporter;
}

/**
 * The OpenTelemetry SDK of a service process, from `[telemetry]`: undefined when `[telemetry.tracing]
 * enabled` is false (then nothing is loaded into the engine's path and no span is made).
 *
 * - Ids: TaskRootIdGenerator, so a task's root span gets the ids derived from the task (taskTraceContext.ts).
 * - Sampling: by trace id, with the same ratio for roots and for remote parents, so every process decides
 *   alike for a task (a worker builds the task's root as a remote parent); local children follow the parent.
 * - Export: OTLP/HTTP (JSON) to `<otlp_endpoint>/v1/traces`, batched.
 * - The first service of a process also registers its provider and an AsyncLocalStorage context manager as
 *   the OpenTelemetry globals, so spans a step handler starts with `trace.getTracer()` nest under
 *   `tasker.step.execute`. It gives them back at shutdown; a provider registered before (an application's own
 *   SDK) is left alone and keeps the globals.
 */
export function startServiceTracing(options: ServiceTracingOptions): ServiceTracing | undefined {
  const { telemetry, role, logger } = options;
  if (!telemetry.tracing.enabled) return undefined;
  const ratio = new TraceIdRatioBasedSampler(telemetry.tracing.sample_ratio);
  const endpoint = `${telemetry.tracing.otlp_endpoint.replace(/\/+$/, '')}/v1/traces`;
  const processor =
    options.exporter !== undefined
      ? new SimpleSpanProcessor(options.exporter)
      : new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint, timeoutMillis: EXPORT_TIMEOUT_MS }), {
          exportTimeoutMillis: EXPORT_TIMEOUT_MS,
        });
  const provider = new BasicTracerProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({
        'service.name': telemetry.service_name,
        'service.version': TASKER_VERSION,
        'tasker.role': role,
      }),
    ),
    sampler: new ParentBasedSampler({ root: ratio, remoteParentSampled: ratio }),
    idGenerator: new TaskRootIdGenerator(new RandomIdGenerator()),
    spanProcessors: [processor],
  });
  const registered = trace.setGlobalTracerProvider(provider);
  const contextManagerSet =
    registered && context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  logger.info(
    {
      otlp_endpoint: options.exporter === undefined ? endpoint : '(in-process exporter)',
      sample_ratio: telemetry.tracing.sample_ratio,
      service_name: telemetry.service_name,
      global: registered,
    },
    'OpenTelemetry tracing enabled',
  );
  let stopped: Promise<void> | undefined;
  return {
    tracing: new TaskerTracing(provider.getTracer(TRACER_NAME, TASKER_VERSION)),
    shutdown: () =>
      (stopped ??= (async () => {
        if (registered) trace.disable();
        if (contextManagerSet) context.disable();
        await provider.shutdown().catch((error: unknown) => {
          logger.warn({ err: error }, 'flushing OpenTelemetry spans failed');
        });
      })()),
  };
}
