import type { FastifyInstance } from 'fastify';
import type { TaskerMetrics } from '../../../observability/metrics.ts';

/**
 * `GET /metrics` in the Prometheus text format, and the HTTP request metrics of every route of `app`
 * (tasker_http_requests_total, tasker_http_request_duration_seconds). Used by the orchestration REST API and
 * the worker's HTTP server. Register it before the other routes.
 *
 * The route label is the route pattern (`/v1/tasks/:task_uuid`), never the raw URL: raw URLs carry ids.
 * Requests that match no route share `route="unmatched"`.
 */
export function registerMetricsRoute(app: FastifyInstance, metrics: TaskerMetrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const method = request.method;
    metrics.httpRequests.inc({ method, route, status: String(reply.statusCode) });
    metrics.httpRequestDuration.observe({ method, route }, reply.elapsedTime / 1000);
    done();
  });

  app.get(
    '/metrics',
    // Not part of the task API: documented in docs/operations.md, kept out of the OpenAPI document.
    { config: { access: 'operational' }, schema: { hide: true } },
    async (_request, reply) => {
      const body = await metrics.text();
      return reply.header('content-type', metrics.contentType).send(body);
    },
  );
}
