/**
 * Malformed and hostile requests over real HTTP: each gets its exact 4xx status and stable code with a
 * message, nothing leaks SQL or stacks, nothing is a 5xx, nothing is logged as an unexpected error, and the
 * server keeps answering normal requests after each one.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useApi } from './apiHarness.ts';
import type { ErrorBody, TaskList, TaskView } from './viewTypes.ts';
import { HOSTILE_CASES as CASES, TASK } from '../../helpers/hostileRequests.ts';
import type { Case } from '../../helpers/hostileRequests.ts';

let taskUuid = '';
let stepUuid = '';

const getApi = useApi({ engine: false });

async function send(testCase: Case) {
  const api = getApi();
  const path = testCase.path.replace(':task', taskUuid).replace(':step', stepUuid);
  const headers =
    testCase.headers ?? (testCase.body === undefined ? {} : { 'content-type': 'application/json' });
  const response = await fetch(`${api.url}${path}`, {
    method: testCase.method,
    headers,
    ...(testCase.body !== undefined && { body: testCase.body }),
  });
  const text = await response.text();
  return { response, text, body: JSON.parse(text) as ErrorBody };
}

beforeAll(async () => {
  const created = await getApi().post<TaskView>('/v1/tasks', JSON.parse(TASK) as unknown);
  expect(created.status).toBe(201);
  taskUuid = created.body.task_uuid;
  stepUuid = created.body.steps[0]?.step_uuid ?? '';
});

describe('hostile and malformed requests', () => {
  it(`has at least 35 distinct cases (${CASES.length})`, () => {
    expect(CASES.length).toBeGreaterThanOrEqual(35);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it.each(CASES)('$name → $status $code', async (testCase) => {
    const { response, text, body } = await send(testCase);
    expect(response.status, text).toBe(testCase.status);
    expect(response.status).toBeLessThan(500);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('x-request-id')).toBeTruthy();
    expect(body.error.code).toBe(testCase.code);
    expect(body.error.message.length).toBeGreaterThan(10);
    if (testCase.says !== undefined) expect(body.error.message).toContain(testCase.says);
    expect(text).not.toMatch(/SQLSTATE|\bat .+\.(?:ts|js):\d+|node_modules|syntax error at or near|FST_ERR/);
    if (testCase.status === 405) expect(response.headers.get('allow')).toBeTruthy();

    // The server still answers a normal request, and the database is intact.
    const normal = await getApi().get<TaskList>('/v1/tasks?per_page=1');
    expect(normal.status).toBe(200);
    expect(normal.body.pagination.total_count).toBeGreaterThanOrEqual(1);
  });

  it('logged no unexpected error for any of them', () => {
    expect(getApi().logs.atLeast(50)).toEqual([]);
  });

  it('created no task from any of them', async () => {
    const list = await getApi().get<TaskList>('/v1/tasks?per_page=100');
    expect(list.body.pagination.total_count).toBe(1);
  });
});
