/**
 * Prometheus metrics of both services, in process over real HTTP and PostgreSQL: example workflows (two that
 * complete, one that exhausts its retries, one that fails for good) run through an orchestration service and
 * a worker service; then /metrics of each is scraped, parsed, and its values compared with what ran.
 */
import { modeLabel } from '../../../src/observability/modeLabel.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import handlers from '../../../examples/handlers/index.ts';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import type { LoadedConfig } from '../../../src/config/loadConfig.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { startOrchestrationService } from '../../../src/services/orchestrationService.ts';
import type { OrchestrationService } from '../../../src/services/orchestrationService.ts';
import { startWorkerService } from '../../../src/services/workerService.ts';
import type { WorkerService } from '../../../src/services/workerService.ts';
import { exampleTemplates } from '../../helpers/engine/fixtures.ts';
import { has, scrape, total } from '../../helpers/prometheus.ts';
import type { Scrape } from '../../helpers/prometheus.ts';
import { useTestDatabase } from '../../helpers/testDatabase.ts';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

async function postTask(baseUrl: string, body: Record<string, unknown>): Promise<string> {
  const response = await fetch(`${baseUrl}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { task_uuid: string }).task_uuid;
}

async function waitFinished(baseUrl: string, taskUuid: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const response = await fetch(`${baseUrl}/v1/tasks/${taskUuid}?wait=5`);
    const view = (await response.json()) as { status: string };
    if (['complete', 'error', 'cancelled'].includes(view.status)) return view.status;
  }
  throw new Error(`task ${taskUuid} did not finish within 30 s`);
}

describe('Prometheus metrics', () => {
  const testDb = useTestDatabase();
  let loaded: LoadedConfig;
  let orchestration: OrchestrationService;
  let worker: WorkerService;
  let orchestrationUrl: string;
  let workerUrl: string;
  const finished = new Map<string, string>();

  beforeAll(async () => {
    loaded = loadConfig({ env: { TASKER_ENV: 'test', DATABASE_URL: testDb().url } });
    orchestration = await startOrchestrationService({
      loaded,
      logger: silentLogger,
      bindAddress: '127.0.0.1:0',
      grpcBindAddress: '127.0.0.1:0',
    });
    worker = await startWorkerService({
      loaded,
      logger: silentLogger,
      handlers,
      templates: exampleTemplates(),
      bindAddress: '127.0.0.1:0',
      grpcBindAddress: '127.0.0.1:0',
    });
    orchestrationUrl = orchestration.url as string;
    workerUrl = worker.url as string;

    const requests = [
      { namespace: 'math', name: 'mathematical_sequence', version: '1.0.0', context: { even_number: 2 } },
      { namespace: 'math', name: 'mathematical_sequence', version: '1.0.0', context: { even_number: 4 } },
      { namespace: 'resilience', name: 'always_fails', version: '1.0.0', context: {} },
      { namespace: 'resilience', name: 'permanent_error', version: '1.0.0', context: {} },
    ];
    const uuids = await Promise.all(requests.map((body) => postTask(orchestrationUrl, body)));
    for (const [i, uuid] of uuids.entries()) {
      finished.set(requests[i]?.name ?? '', await waitFinished(orchestrationUrl, uuid));
    }
  }, 60_000);

  afterAll(async () => {
    await worker?.stop();
    await orchestration?.stop();
  });

  it('ran the workflows to the expected end states', () => {
    expect(Object.fromEntries(finished)).toEqual({
      mathematical_sequence: 'complete',
      always_fails: 'error',
      permanent_error: 'error',
    });
  });

  it('orchestration: created and completed tasks, active tasks back to 0, pool, HTTP routes', async () => {
    // Finished tasks are counted a few seconds after their final transition (TaskCompletionReader's settle).
    let scraped = await scrape(orchestrationUrl);
    const deadline = Date.now() + 20_000;
    while (total(scraped, 'tasker_tasks_completed_total') < 4 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      scraped = await scrape(orchestrationUrl);
    }
    expect(scraped.contentType).toMatch(/^text\/plain; version=0\.0\.4/);

    expect(
      total(scraped, 'tasker_tasks_created_total', { namespace: 'math', template: 'mathematical_sequence' }),
    ).toBe(2);
    expect(
      total(scraped, 'tasker_tasks_created_total', { namespace: 'resilience', template: 'always_fails' }),
    ).toBe(1);
    expect(total(scraped, 'tasker_tasks_created_total')).toBe(4);

    const completed = (template: string, outcome: string) =>
      total(scraped, 'tasker_tasks_completed_total', { template, outcome });
    expect(completed('mathematical_sequence', 'complete')).toBe(2);
    expect(completed('always_fails', 'error')).toBe(1);
    expect(completed('permanent_error', 'error')).toBe(1);
    expect(total(scraped, 'tasker_tasks_completed_total')).toBe(4);
    expect(scraped.types.get('tasker_tasks_completed_total')).toBe('counter');

    // One duration per finished task, by outcome; and the hand-offs of the steps those tasks ran.
    expect(
      total(scraped, 'tasker_task_duration_seconds_count', {
        template: 'mathematical_sequence',
        outcome: 'complete',
      }),
    ).toBe(2);
    expect(total(scraped, 'tasker_task_duration_seconds_count')).toBe(4);
    expect(total(scraped, 'tasker_task_duration_seconds_sum')).toBeGreaterThan(0);
    expect(scraped.types.get('tasker_task_duration_seconds')).toBe('histogram');
    // mathematical_sequence is a chain of 4: 3 edges per task, each a first run with a parent.
    expect(total(scraped, 'tasker_step_edge_latency_seconds_count', { namespace: 'math' })).toBe(6);
    // Every run of every step was enqueued, then started: 8 math runs, and the resilience ones.
    expect(total(scraped, 'tasker_step_enqueue_to_start_seconds_count', { namespace: 'math' })).toBe(8);
    expect(total(scraped, 'tasker_step_enqueue_to_start_seconds_count')).toBeGreaterThan(8);

    expect(total(scraped, 'tasker_tasks_active')).toBe(0);
    expect(scraped.types.get('tasker_tasks_active')).toBe('gauge');

    expect(total(scraped, 'tasker_database_pool_max')).toBe(loaded.config.database.max_connections);
    expect(has(scraped, 'tasker_database_pool_active')).toBe(true);
    expect(has(scraped, 'tasker_database_pool_waiting')).toBe(true);

    expect(
      total(scraped, 'tasker_event_listener_active', {
        mode: modeLabel(loaded.config.orchestration.deployment_mode),
      }),
    ).toBe(1);
    expect(has(scraped, 'tasker_listener_reconnections_total')).toBe(true);
    // Queue wake-ups and task-finished hints arrived over LISTEN.
    expect(total(scraped, 'tasker_event_notifications_received_total')).toBeGreaterThan(0);

    // Every queue is listed; all were drained.
    expect(has(scraped, 'tasker_queue_depth')).toBe(true);
    const queues = scraped.samples.filter((s) => s.name === 'tasker_queue_depth').map((s) => s.labels.queue);
    expect(queues).toEqual(expect.arrayContaining(['orchestration_step_results', 'worker_math_queue']));

    expect(
      total(scraped, 'tasker_http_requests_total', { method: 'POST', route: '/v1/tasks', status: '201' }),
    ).toBe(4);
    expect(
      total(scraped, 'tasker_http_request_duration_seconds_count', { method: 'POST', route: '/v1/tasks' }),
    ).toBe(4);
    // The raw URL of GET /v1/tasks/<uuid>?wait=5 is not a label: its pattern is.
    const taskRoutes = scraped.samples
      .filter((s) => s.name === 'tasker_http_requests_total' && s.labels.method === 'GET')
      .map((s) => s.labels.route);
    expect(taskRoutes.some((route) => route?.startsWith('/v1/tasks/:'))).toBe(true);

    // Process metrics of prom-client.
    expect(has(scraped, 'process_cpu_user_seconds_total')).toBe(true);
    expectNoIdsInLabels(scraped);
  });

  it('worker: step outcomes, errors and durations, slots, pool', async () => {
    const scraped = await scrape(workerUrl);
    const steps = (labels: Record<string, string>) => total(scraped, 'tasker_steps_completed_total', labels);
    // 2 tasks x 4 steps in a row.
    expect(steps({ namespace: 'math', outcome: 'success' })).toBe(8);
    expect(steps({ namespace: 'math', step: 'linear_step_1', outcome: 'success' })).toBe(2);
    // always_fails: three attempts, each a retryable error; the dependent step never runs.
    expect(steps({ step: 'doomed_step', outcome: 'retryable_error' })).toBe(3);
    expect(steps({ step: 'never_runs' })).toBe(0);
    // permanent_error: one attempt despite max_attempts 3.
    expect(steps({ step: 'rejecting_step', outcome: 'permanent_error' })).toBe(1);
    expect(steps({ outcome: 'timeout' })).toBe(0);

    const errors = (labels: Record<string, string>) => total(scraped, 'tasker_step_errors_total', labels);
    expect(errors({ step: 'doomed_step', error_type: 'retryable_error' })).toBe(3);
    expect(errors({ step: 'rejecting_step', error_type: 'permanent_error' })).toBe(1);
    expect(errors({})).toBe(4);

    expect(total(scraped, 'tasker_step_duration_seconds_count', { namespace: 'math' })).toBe(8);
    expect(total(scraped, 'tasker_step_duration_seconds_count', { step: 'doomed_step' })).toBe(3);
    expect(scraped.types.get('tasker_step_duration_seconds')).toBe('histogram');

    expect(total(scraped, 'tasker_worker_active_executions')).toBe(0);
    expect(total(scraped, 'tasker_worker_capacity')).toBe(loaded.config.worker.max_concurrent_handlers);
    expect(total(scraped, 'tasker_database_pool_max')).toBe(loaded.config.database.max_connections);
    expect(
      total(scraped, 'tasker_event_listener_active', {
        mode: modeLabel(loaded.config.worker.deployment_mode),
      }),
    ).toBe(1);
    expect(total(scraped, 'tasker_queue_depth', { queue: 'worker_math_queue' })).toBe(0);

    // The worker serves no task API: nothing is created or completed here.
    expect(has(scraped, 'tasker_tasks_created_total')).toBe(false);
    expect(has(scraped, 'tasker_tasks_completed_total')).toBe(false);

    const second = await scrape(workerUrl);
    expect(
      total(second, 'tasker_http_requests_total', { method: 'GET', route: '/metrics', status: '200' }),
    ).toBeGreaterThanOrEqual(1);
    expectNoIdsInLabels(second);
  });

  it('keeps /metrics out of the OpenAPI document', async () => {
    const doc = (await (await fetch(`${orchestrationUrl}/api-docs/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(doc.paths)).not.toContain('/metrics');
    expect(Object.keys(doc.paths)).toContain('/v1/tasks');
  });
});

function expectNoIdsInLabels(scraped: Scrape): void {
  const withIds = scraped.samples.filter((s) => Object.values(s.labels).some((v) => UUID.test(v)));
  expect(withIds).toEqual([]);
}
