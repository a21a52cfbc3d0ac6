/**
 * Malformed and hostile requests over real HTTP: each gets its exact 4xx status and stable code with a
 * message, nothing leaks SQL or stacks, nothing is a 5xx, nothing is logged as an unexpected error, and the
 * server keeps answering normal requests after each one.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useApi } from './apiHarness.ts';
import type { ErrorBody, TaskList, TaskView } from './viewTypes.ts';

const getApi = useApi({ engine: false });

const UUID = '0190f5b4-3c1e-7c3b-9a57-2f0e8c1d4b6a';
let taskUuid = '';
let stepUuid = '';

interface Case {
  name: string;
  method: string;
  /** `:task` and `:step` are replaced by a real task and one of its steps. */
  path: string;
  /** Sent as is (a string) with Content-Type application/json unless `headers` say otherwise. */
  body?: string;
  headers?: Record<string, string>;
  status: number;
  code: string;
  /** Part of the message that names the problem. */
  says?: string;
}

const TASK = JSON.stringify({
  namespace: 'math',
  name: 'diamond_pattern',
  version: '1.0.0',
  context: { n: 1 },
});
const withTask = (extra: Record<string, unknown>) =>
  JSON.stringify({
    namespace: 'math',
    name: 'diamond_pattern',
    version: '1.0.0',
    context: { n: 1 },
    ...extra,
  });
const step = '/v1/tasks/:task/workflow_steps/:step';

const CASES: Case[] = [
  // Bodies that are not JSON, or not the JSON asked for.
  {
    name: 'malformed JSON',
    method: 'POST',
    path: '/v1/tasks',
    body: '{"name": ',
    status: 400,
    code: 'TASKER_MALFORMED_JSON',
    says: 'not valid JSON',
  },
  {
    name: 'truncated JSON',
    method: 'POST',
    path: '/v1/tasks',
    body: TASK.slice(0, -2),
    status: 400,
    code: 'TASKER_MALFORMED_JSON',
  },
  {
    name: 'trailing garbage after JSON',
    method: 'POST',
    path: '/v1/tasks',
    body: `${TASK}xyz`,
    status: 400,
    code: 'TASKER_MALFORMED_JSON',
  },
  {
    name: 'single quotes instead of JSON',
    method: 'POST',
    path: '/v1/tasks',
    body: "{'name': 'x'}",
    status: 400,
    code: 'TASKER_MALFORMED_JSON',
  },
  {
    name: 'byte-order mark before JSON',
    method: 'POST',
    path: '/v1/tasks',
    body: `\ufeff${TASK}`,
    status: 400,
    code: 'TASKER_MALFORMED_JSON',
  },
  {
    name: 'array instead of object',
    method: 'POST',
    path: '/v1/tasks',
    body: '[]',
    status: 400,
    code: 'TASKER_INVALID_TASK_REQUEST',
    says: 'must be a JSON object such as',
  },
  {
    name: 'bare string body',
    method: 'POST',
    path: '/v1/tasks',
    body: '"diamond_pattern"',
    status: 400,
    code: 'TASKER_INVALID_TASK_REQUEST',
  },
  {
    name: 'JSON null body',
    method: 'POST',
    path: '/v1/tasks',
    body: 'null',
    status: 400,
    code: 'TASKER_INVALID_TASK_REQUEST',
  },
  {
    name: 'empty body with JSON content type',
    method: 'POST',
    path: '/v1/tasks',
    body: '',
    status: 400,
    code: 'TASKER_INVALID_TASK_REQUEST',
  },
  {
    name: 'no body at all',
    method: 'POST',
    path: '/v1/tasks',
    headers: {},
    status: 400,
    code: 'TASKER_INVALID_TASK_REQUEST',
  },
  {
    name: 'name of the wrong type',
    method: 'POST',
    path: '/v1/tasks',
    body: '{"name": 42}',
    status: 400,
    code: 'TASKER_INVALID_TASK_REQUEST',
    says: 'name',
  },
  {
    name: 'unknown field',
    method: 'POST',
    path: '/v1/tasks',
    body: withTask({ is_admin: true }),
    status: 400,
    code: 'TASKER_INVALID_TASK_REQUEST',
    says: 'is_admin: unknown field',
  },
  {
    name: 'context as an array',
    method: 'POST',
    path: '/v1/tasks',
    body: withTask({ context: [1, 2] }),
    status: 400,
    code: 'TASKER_INVALID_TASK_REQUEST',
    says: 'context',
  },
  {
    name: 'tags as a string',
    method: 'POST',
    path: '/v1/tasks',
    body: withTask({ tags: 'urgent' }),
    status: 400,
    code: 'TASKER_INVALID_TASK_REQUEST',
    says: 'tags',
  },
  {
    name: 'priority out of range',
    method: 'POST',
    path: '/v1/tasks',
    body: withTask({ priority: 1e12 }),
    status: 400,
    code: 'TASKER_INVALID_TASK_REQUEST',
    says: 'priority',
  },
  {
    name: 'requested_at in year 0',
    method: 'POST',
    path: '/v1/tasks',
    body: withTask({ requested_at: '0000-01-01T00:00:00Z' }),
    status: 400,
    code: 'TASKER_INVALID_TASK_REQUEST',
    says: 'requested_at',
  },
  {
    name: 'requested_at with an impossible offset',
    method: 'POST',
    path: '/v1/tasks',
    body: withTask({ requested_at: '2026-01-01T10:00:00+20:00' }),
    status: 400,
    code: 'TASKER_INVALID_TASK_REQUEST',
    says: 'requested_at',
  },
  {
    name: 'correlation_id not a UUID',
    method: 'POST',
    path: '/v1/tasks',
    body: withTask({ correlation_id: "1' OR '1'='1" }),
    status: 400,
    code: 'TASKER_INVALID_TASK_REQUEST',
    says: 'correlation_id',
  },
  {
    name: 'context failing the input_schema',
    method: 'POST',
    path: '/v1/tasks',
    body: withTask({ context: { n: 'three' } }),
    status: 400,
    code: 'TASKER_INVALID_CONTEXT',
    says: 'n',
  },
  {
    name: 'body over the size limit',
    method: 'POST',
    path: '/v1/tasks',
    body: withTask({ context: { n: 1, blob: 'x'.repeat(2 * 1024 * 1024) } }),
    status: 413,
    code: 'TASKER_BODY_TOO_LARGE',
    says: '1048576 bytes',
  },
  {
    name: 'JSON nested 100000 deep',
    method: 'POST',
    path: '/v1/tasks',
    body: `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
    status: 400,
    code: 'TASKER_JSON_TOO_DEEP',
    says: '64 levels',
  },
  {
    name: 'context nested 65 deep',
    method: 'POST',
    path: '/v1/tasks',
    body: withTask({ context: JSON.parse(`${'{"a":'.repeat(64)}1${'}'.repeat(64)}`) as unknown }),
    status: 400,
    code: 'TASKER_JSON_TOO_DEEP',
  },
  // Injection-looking and odd strings: refused or simply not found, never executed.
  {
    name: 'SQL in the namespace',
    method: 'POST',
    path: '/v1/tasks',
    body: JSON.stringify({
      namespace: "math'; DROP TABLE tasker.tasks; --",
      name: 'diamond_pattern',
      version: '1.0.0',
    }),
    status: 404,
    code: 'TASKER_TEMPLATE_NOT_FOUND',
  },
  {
    name: 'SQL in the name',
    method: 'POST',
    path: '/v1/tasks',
    body: JSON.stringify({ namespace: 'math', name: "x' OR '1'='1", version: '1.0.0' }),
    status: 404,
    code: 'TASKER_TEMPLATE_NOT_FOUND',
  },
  {
    name: 'non-Latin template name',
    method: 'POST',
    path: '/v1/tasks',
    body: JSON.stringify({ namespace: 'math', name: 'ダイヤモンド', version: '1.0.0' }),
    status: 404,
    code: 'TASKER_TEMPLATE_NOT_FOUND',
  },
  {
    name: 'NUL byte in a context string',
    method: 'POST',
    path: '/v1/tasks',
    body: withTask({ context: { n: 1, note: 'a\u0000b' } }),
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'context.note',
  },
  {
    name: 'NUL byte in the namespace',
    method: 'POST',
    path: '/v1/tasks',
    body: JSON.stringify({ namespace: 'ma\u0000th', name: 'diamond_pattern' }),
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'NUL',
  },
  {
    name: 'NUL byte in a context key',
    method: 'POST',
    path: '/v1/tasks',
    body: withTask({ context: { n: 1, 'k\u0000': 1 } }),
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
  },
  {
    name: 'unpaired UTF-16 surrogate',
    method: 'POST',
    path: '/v1/tasks',
    body: withTask({ context: { n: 1, note: '\ud800' } }),
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'surrogate',
  },
  {
    name: '__proto__ key (prototype poisoning)',
    method: 'POST',
    path: '/v1/tasks',
    body: `{"__proto__": {"admin": true}, ${TASK.slice(1)}`,
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: '__proto__',
  },
  {
    name: 'constructor.prototype key',
    method: 'POST',
    path: '/v1/tasks',
    body: withTask({ context: { n: 1, constructor: { prototype: { admin: true } } } }),
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
  },
  // Content types.
  {
    name: 'text/plain body',
    method: 'POST',
    path: '/v1/tasks',
    body: TASK,
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'TASKER_UNSUPPORTED_MEDIA_TYPE',
    says: 'application/json',
  },
  {
    name: 'form-encoded body',
    method: 'POST',
    path: '/v1/tasks',
    body: 'name=diamond_pattern',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    status: 415,
    code: 'TASKER_UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'XML body',
    method: 'PATCH',
    path: step,
    body: '<action/>',
    headers: { 'content-type': 'application/xml' },
    status: 415,
    code: 'TASKER_UNSUPPORTED_MEDIA_TYPE',
  },
  // Path parameters.
  {
    name: 'task uuid that is not a UUID',
    method: 'GET',
    path: '/v1/tasks/not-a-uuid',
    status: 400,
    code: 'TASKER_INVALID_UUID',
    says: 'task_uuid',
  },
  {
    name: 'SQL in the task uuid',
    method: 'GET',
    path: `/v1/tasks/${encodeURIComponent("1' OR 1=1 --")}`,
    status: 400,
    code: 'TASKER_INVALID_UUID',
  },
  {
    name: 'step uuid that is not a UUID',
    method: 'GET',
    path: '/v1/tasks/:task/workflow_steps/42',
    status: 400,
    code: 'TASKER_INVALID_UUID',
    says: 'step_uuid',
  },
  {
    name: 'UUID with a NUL byte',
    method: 'DELETE',
    path: `/v1/tasks/${UUID.slice(0, -1)}%00`,
    status: 400,
    code: 'TASKER_INVALID_UUID',
  },
  {
    name: 'bad percent-encoding in the path',
    method: 'GET',
    path: '/v1/tasks/%E0%A4%A',
    status: 400,
    code: 'TASKER_BAD_REQUEST',
  },
  {
    name: 'path parameter of 300 characters',
    method: 'GET',
    path: `/v1/tasks/${'a'.repeat(300)}`,
    status: 400,
    code: 'TASKER_BAD_REQUEST',
    says: 'longer than 100',
  },
  {
    name: 'template namespace with SQL',
    method: 'GET',
    path: `/v1/templates/${encodeURIComponent("math' --")}/x/1.0.0`,
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'namespace',
  },
  {
    name: 'template version that is not semver',
    method: 'GET',
    path: '/v1/templates/math/diamond_pattern/..%2F..%2Fetc',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'version',
  },
  // Query parameters.
  {
    name: 'per_page 0',
    method: 'GET',
    path: '/v1/tasks?per_page=0',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'per_page must be >= 1',
  },
  {
    name: 'per_page 101',
    method: 'GET',
    path: '/v1/tasks?per_page=101',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'per_page must be <= 100',
  },
  {
    name: 'negative page',
    method: 'GET',
    path: '/v1/tasks?page=-1',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'page',
  },
  {
    name: 'huge page',
    method: 'GET',
    path: '/v1/tasks?page=99999999999999999999',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'page',
  },
  {
    name: 'fractional per_page',
    method: 'GET',
    path: '/v1/tasks?per_page=2.5',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'per_page must be integer',
  },
  {
    name: 'page that is not a number',
    method: 'GET',
    path: '/v1/tasks?page=abc',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'page',
  },
  {
    name: 'per_page given twice',
    method: 'GET',
    path: '/v1/tasks?per_page=10&per_page=20',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'per_page',
  },
  {
    name: 'unknown status',
    method: 'GET',
    path: '/v1/tasks?status=running',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'status must be one of: pending',
  },
  {
    name: 'one bad status in a list',
    method: 'GET',
    path: '/v1/tasks?status=complete,bogus',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: '"bogus"',
  },
  {
    name: 'date that is not a date',
    method: 'GET',
    path: '/v1/tasks?created_after=yesterday',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'created_after',
  },
  {
    name: 'impossible date',
    method: 'GET',
    path: '/v1/tasks?created_before=2026-13-45',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'created_before',
  },
  {
    name: 'February 31st',
    method: 'GET',
    path: '/v1/tasks?created_after=2026-02-31',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'created_after',
  },
  {
    name: 'SQL in the namespace filter',
    method: 'GET',
    path: `/v1/tasks?namespace=${encodeURIComponent("math' OR 1=1 --")}`,
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'namespace must match',
  },
  {
    name: 'NUL byte in the name filter',
    method: 'GET',
    path: '/v1/tasks?name=diamond%00',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'name',
  },
  {
    name: 'emoji in the namespace filter',
    method: 'GET',
    path: `/v1/tasks?namespace=${encodeURIComponent('🙂')}`,
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
  },
  {
    name: 'unknown query parameter',
    method: 'GET',
    path: '/v1/tasks?order_by=1;DROP',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'order_by is not a known query parameter',
  },
  {
    name: 'DLQ limit over 100',
    method: 'GET',
    path: '/v1/dlq?limit=1000',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'limit',
  },
  {
    name: 'negative DLQ offset',
    method: 'GET',
    path: '/v1/dlq?offset=-5',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'offset',
  },
  {
    name: 'unknown DLQ status',
    method: 'GET',
    path: '/v1/dlq?resolution_status=open',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'resolution_status',
  },
  // Step and DLQ bodies.
  {
    name: 'unknown step action',
    method: 'PATCH',
    path: step,
    body: '{"action_type": "explode"}',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'action_type must be one of',
  },
  {
    name: 'step action of the wrong type',
    method: 'PATCH',
    path: step,
    body: '{"action_type": 5}',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'action_type must be string',
  },
  {
    name: 'step action body as an array',
    method: 'PATCH',
    path: step,
    body: '[{"action_type": "reset_for_retry"}]',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'must be object',
  },
  {
    name: 'step action without a body',
    method: 'PATCH',
    path: step,
    headers: {},
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'is missing',
  },
  {
    name: 'step action with an unknown field',
    method: 'PATCH',
    path: step,
    body: '{"action_type": "resolve_manually", "force": true}',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'force is not a known field',
  },
  {
    name: 'step action reason too long',
    method: 'PATCH',
    path: step,
    body: JSON.stringify({ action_type: 'resolve_manually', reason: 'r'.repeat(501) }),
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'reason',
  },
  {
    name: 'completion_data as a string',
    method: 'PATCH',
    path: step,
    body: '{"action_type": "complete_manually", "completion_data": "done"}',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'completion_data must be object',
  },
  {
    name: 'DLQ update without a status',
    method: 'PATCH',
    path: `/v1/dlq/entry/${UUID}`,
    body: '{}',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'resolution_status is required',
  },
  {
    name: 'DLQ resolved_by of the wrong type',
    method: 'PATCH',
    path: `/v1/dlq/entry/${UUID}`,
    body: '{"resolution_status": "cancelled", "resolved_by": 42}',
    status: 400,
    code: 'TASKER_INVALID_REQUEST',
    says: 'resolved_by must be string',
  },
  // Wrong methods and unknown routes.
  {
    name: 'DELETE on the task collection',
    method: 'DELETE',
    path: '/v1/tasks',
    status: 405,
    code: 'TASKER_METHOD_NOT_ALLOWED',
    says: 'GET, HEAD, POST',
  },
  {
    name: 'PUT on a task',
    method: 'PUT',
    path: `/v1/tasks/${UUID}`,
    body: TASK,
    status: 405,
    code: 'TASKER_METHOD_NOT_ALLOWED',
    says: 'DELETE, GET, HEAD',
  },
  {
    name: 'PATCH on a task',
    method: 'PATCH',
    path: `/v1/tasks/${UUID}`,
    body: '{}',
    status: 405,
    code: 'TASKER_METHOD_NOT_ALLOWED',
  },
  {
    name: 'POST on templates',
    method: 'POST',
    path: '/v1/templates',
    body: '{}',
    status: 405,
    code: 'TASKER_METHOD_NOT_ALLOWED',
  },
  {
    name: 'DELETE on health',
    method: 'DELETE',
    path: '/health',
    status: 405,
    code: 'TASKER_METHOD_NOT_ALLOWED',
  },
  {
    name: 'unknown API version',
    method: 'GET',
    path: '/v2/tasks',
    status: 404,
    code: 'TASKER_ROUTE_NOT_FOUND',
    says: '/v2/tasks',
  },
  {
    name: 'unknown sub-resource',
    method: 'GET',
    path: `/v1/tasks/${UUID}/secrets`,
    status: 404,
    code: 'TASKER_ROUTE_NOT_FOUND',
  },
  {
    name: 'path traversal',
    method: 'GET',
    path: '/v1/../../etc/passwd',
    status: 404,
    code: 'TASKER_ROUTE_NOT_FOUND',
  },
  { name: 'root path', method: 'GET', path: '/', status: 404, code: 'TASKER_ROUTE_NOT_FOUND' },
];

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
