/**
 * Hostile requests over raw TCP against real `tasker orchestration` and `tasker worker` processes: malformed
 * bodies and parameters, unknown query parameters, request smuggling, oversized headers, a garbled request
 * line, a missing Host, an unknown Expect, a client that vanishes mid-body. Every answer is a 4xx in the
 * documented `{"error": {"code", "message"}}` body with an X-Request-Id, nothing is a 5xx, nothing is logged
 * as an error, and both services are alive and ready afterwards.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskerClient } from '../../src/client/taskerClient.ts';
import type { TaskRequest } from '../../src/client/taskerClient.ts';
import {
  errorLogs,
  startOrchestrationProcess,
  startWorkerProcess,
  stopProcess,
} from '../helpers/e2e/taskerProcess.ts';
import type { LogLine, TaskerProcess } from '../helpers/e2e/taskerProcess.ts';
import { sleep } from '../helpers/engine/wait.ts';
import { HOSTILE_CASES, RAW_HOSTILE_CASES, TASK } from '../helpers/hostileRequests.ts';
import { rawRequest, sendRaw } from '../helpers/rawHttp.ts';
import type { RawAnswer } from '../helpers/rawHttp.ts';
import { createTestDatabase } from '../helpers/testDatabase.ts';
import type { TestDatabase } from '../helpers/testDatabase.ts';

let testDb: TestDatabase;
let orchestration: TaskerProcess;
let worker: TaskerProcess;
let taskUuid = '';
let stepUuid = '';

const hostOf = (url: string) => new URL(url).host;

/** What is wrong with an error answer, or undefined when it is the documented one. */
function problemWith(answer: RawAnswer, status: number, code: string, says?: string): string | undefined {
  if (answer.status !== status)
    return `status ${answer.status}, expected ${status}: ${answer.body.slice(0, 200)}`;
  if (!/^application\/json/.test(answer.headers['content-type'] ?? '')) {
    return `content-type ${answer.headers['content-type']}`;
  }
  if (!answer.headers['x-request-id']) return 'no X-Request-Id';
  let body: { error?: { code?: unknown; message?: unknown } };
  try {
    body = JSON.parse(answer.body) as typeof body;
  } catch {
    return `body is not JSON: ${answer.body.slice(0, 80)}`;
  }
  if (body.error?.code !== code) return `code ${String(body.error?.code)}, expected ${code}`;
  if (typeof body.error.message !== 'string' || body.error.message.length < 10) return 'no message';
  if (says !== undefined && !body.error.message.includes(says)) {
    return `message "${body.error.message}" does not say "${says}"`;
  }
  if (/SQLSTATE|\bat .+\.(?:ts|js):\d+|node_modules|FST_ERR/.test(answer.body)) return 'leaks internals';
  return undefined;
}

beforeAll(async () => {
  testDb = await createTestDatabase();
  [orchestration, worker] = await Promise.all([
    startOrchestrationProcess({ databaseUrl: testDb.url, env: { LOG_LEVEL: 'debug' } }),
    startWorkerProcess({ databaseUrl: testDb.url }),
  ]);
  const client = new TaskerClient(orchestration.url);
  try {
    const task = await client.createTask(JSON.parse(TASK) as TaskRequest);
    taskUuid = task.task_uuid;
    stepUuid = task.steps?.[0]?.step_uuid ?? '';
  } finally {
    client.close();
  }
}, 90_000);

afterAll(async () => {
  const procs = [orchestration, worker].filter((p) => p !== undefined);
  const codes = await Promise.all(procs.map((p) => stopProcess(p)));
  await testDb?.drop();
  expect(codes).toEqual(procs.map(() => 0));
}, 60_000);

describe('hostile requests over raw TCP against real tasker processes', () => {
  it(`answers the ${HOSTILE_CASES.length} malformed requests with their documented 4xx`, async () => {
    const host = hostOf(orchestration.url);
    const wrong: string[] = [];
    for (const testCase of HOSTILE_CASES) {
      const path = testCase.path.replace(':task', taskUuid).replace(':step', stepUuid);
      const headers =
        testCase.headers ?? (testCase.body === undefined ? {} : { 'content-type': 'application/json' });
      const answer = await sendRaw(
        orchestration.url,
        rawRequest(testCase.method, path, {
          host,
          headers,
          ...(testCase.body !== undefined && { body: testCase.body }),
        }),
      );
      const problem = problemWith(answer, testCase.status, testCase.code, testCase.says);
      if (problem !== undefined) wrong.push(`${testCase.name}: ${problem}`);
    }
    expect(wrong).toEqual([]);
  });

  it.each([
    ['orchestration', () => orchestration],
    ['worker', () => worker],
  ])(
    `the %s service answers ${RAW_HOSTILE_CASES.length} requests its HTTP parser refuses in the documented body`,
    async (_role, proc) => {
      const { url } = proc();
      const wrong: string[] = [];
      for (const testCase of RAW_HOSTILE_CASES) {
        const answer = await sendRaw(url, testCase.request(hostOf(url)));
        const problem =
          problemWith(answer, testCase.status, testCase.code, testCase.says) ??
          (answer.headers.connection === 'close' ? undefined : 'no Connection: close');
        if (problem !== undefined) wrong.push(`${testCase.name}: ${problem}`);
      }
      expect(wrong).toEqual([]);
    },
  );

  it('the worker refuses unknown query parameters and routes in the documented body', async () => {
    const host = hostOf(worker.url);
    const wrong: string[] = [];
    for (const path of ['/health', '/health/live', '/health/ready', '/health/detailed', '/v1/templates']) {
      const answer = await sendRaw(worker.url, rawRequest('GET', `${path}?admin=1`, { host }));
      const problem = problemWith(
        answer,
        400,
        'TASKER_INVALID_REQUEST',
        'admin is not a known query parameter',
      );
      if (problem !== undefined) wrong.push(`${path}: ${problem}`);
    }
    const unknown = await sendRaw(worker.url, rawRequest('GET', '/v1/tasks', { host }));
    const problem = problemWith(unknown, 404, 'TASKER_ROUTE_NOT_FOUND');
    if (problem !== undefined) wrong.push(`/v1/tasks: ${problem}`);
    expect(wrong).toEqual([]);
  });

  it('logs a client that disconnects mid-body as a disconnect, not as a database outage', async () => {
    const { hostname, port } = new URL(orchestration.url);
    const socket = connect({ host: hostname, port: Number(port) });
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(
      `POST /v1/tasks HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\n` +
        `X-Request-Id: hostile-abort-1\r\nContent-Length: 1000\r\n\r\n{"namespace": "ma`,
    );
    await sleep(300);
    socket.destroy();
    const deadline = Date.now() + 5_000;
    const isAbortLine = (line: LogLine) => line.request_id === 'hostile-abort-1';
    while (!orchestration.logs.some((line) => isAbortLine(line) && /client disconnected/.test(line.msg))) {
      if (Date.now() > deadline) throw new Error('no client-disconnect log line within 5 s');
      await sleep(50);
    }
    const lines = orchestration.logs.filter(isAbortLine);
    expect(lines.map((line) => line.msg)).not.toContain('request refused: service unavailable');
    expect(JSON.stringify(lines)).not.toContain('TASKER_DATABASE_UNAVAILABLE');
    expect(lines.filter((line) => line.level !== 'debug')).toEqual([]);
  });

  it('left both services alive and ready, with nothing logged as an error or a refusal', async () => {
    for (const proc of [orchestration, worker]) {
      const ready = await sendRaw(proc.url, rawRequest('GET', '/health/ready', { host: hostOf(proc.url) }));
      expect(ready.status, `${proc.role}: ${ready.body}`).toBe(200);
      expect(errorLogs(proc), proc.role).toEqual([]);
      expect(
        proc.logs.filter((line) => line.msg === 'request refused: service unavailable'),
        proc.role,
      ).toEqual([]);
    }
  });
});
