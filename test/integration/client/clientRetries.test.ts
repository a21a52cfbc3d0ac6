/**
 * The client's retries, timeouts and keep-alive against a tiny node:http server that plays a Tasker server
 * under load (503 or 429 with Retry-After, then an answer). It simulates the server's answers, not the
 * database; test/integration/client/taskerClient.test.ts runs the client against the real one.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  DuplicateTaskError,
  ServerAnswerError,
  ServerUnreachableError,
  TaskerClient,
} from '../../../src/client/taskerClient.ts';
import { parseRetryAfter, retryDelayMs, RETRY_DEFAULTS } from '../../../src/client/retryPolicy.ts';
import { TaskerError } from '../../../src/domain/errors.ts';

type Reply = (request: http.IncomingMessage, response: http.ServerResponse) => void;

const TASK = {
  task_uuid: '0196a1f2-0000-7000-8000-000000000001',
  namespace: 'math',
  name: 'x',
  version: '1.0.0',
  status: 'pending',
};

const answer =
  (status: number, body: unknown, headers: Record<string, string> = {}): Reply =>
  (_request, response) => {
    response.writeHead(status, { 'content-type': 'application/json', ...headers });
    response.end(JSON.stringify(body));
  };

const overloaded = (status: 503 | 429, retryAfter: string): Reply =>
  answer(
    status,
    { error: { code: 'TASKER_SERVICE_OVERLOADED', message: 'the orchestration service is overloaded' } },
    { 'retry-after': retryAfter },
  );

let server: http.Server;
let url: string;
/** Replies in order; the last one repeats. */
let script: Reply[] = [];
let arrivals: { method: string; url: string; at: number }[] = [];
let connections = 0;
let sockets: Socket[] = [];

beforeAll(async () => {
  server = http.createServer((request, response) => {
    arrivals.push({ method: request.method ?? '', url: request.url ?? '', at: Date.now() });
    request.resume();
    request.on('end', () => {
      const reply = script[Math.min(arrivals.length - 1, script.length - 1)];
      reply?.(request, response);
    });
  });
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.push(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const clients: TaskerClient[] = [];
function client(options: ConstructorParameters<typeof TaskerClient>[1] = {}): TaskerClient {
  const made = new TaskerClient(url, options);
  clients.push(made);
  return made;
}
afterEach(() => {
  for (const made of clients.splice(0)) made.close();
  server.closeAllConnections();
  script = [];
  arrivals = [];
  connections = 0;
  sockets = [];
});

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: unknown) => error,
  );
}

const gaps = () => arrivals.slice(1).map((a, i) => a.at - (arrivals[i]?.at ?? 0));

describe('TaskerClient retries', () => {
  it('retries a creation answered 503 with Retry-After twice, waiting what it asks, then returns the 201', async () => {
    script = [overloaded(503, '1'), overloaded(503, '1'), answer(201, TASK)];
    const created = await client().createTask({ namespace: 'math', name: 'x', context: { n: 1 } });
    expect(created.task_uuid).toBe(TASK.task_uuid);
    expect(arrivals.map((a) => `${a.method} ${a.url}`)).toEqual(Array(3).fill('POST /v1/tasks'));
    // Retry-After: 1 → about 1 s between attempts (timers may fire late on a busy machine, never early).
    for (const gap of gaps()) {
      expect(gap).toBeGreaterThanOrEqual(950);
      expect(gap).toBeLessThan(5_000);
    }
    // One keep-alive connection carried all three attempts.
    expect(connections).toBe(1);
  });

  it('honours 429 and an HTTP-date Retry-After', async () => {
    script = [overloaded(429, new Date(Date.now() + 2_000).toUTCString()), answer(200, TASK)];
    const started = Date.now();
    await client().getTask(TASK.task_uuid);
    expect(arrivals).toHaveLength(2);
    // An HTTP date has whole seconds: the wait is 1..2 s from now.
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(Date.now() - started).toBeLessThan(6_000);
  });

  it('gives up after maxAttempts with the last answer: status, code, message and Retry-After', async () => {
    script = [overloaded(503, '1')];
    const error = await failure(client({ retry: { maxAttempts: 3 } }).getTask(TASK.task_uuid));
    expect(arrivals).toHaveLength(3);
    expect(error).toBeInstanceOf(ServerAnswerError);
    expect(error).toBeInstanceOf(TaskerError);
    expect(error).toMatchObject({
      status: 503,
      code: 'TASKER_SERVICE_OVERLOADED',
      message: 'the orchestration service is overloaded',
      retryAfterSeconds: 1,
      attempts: 3,
      method: 'GET',
    });
  });

  it('gives up when the next wait would end past maxElapsedMs, without waiting for it', async () => {
    script = [overloaded(503, '3')];
    const started = Date.now();
    const error = await failure(client({ retry: { maxElapsedMs: 2_000 } }).getTask(TASK.task_uuid));
    expect(arrivals).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(error).toMatchObject({ status: 503, retryAfterSeconds: 3, attempts: 1 });
  });

  it('caps a long Retry-After at maxDelayMs', async () => {
    script = [overloaded(503, '120'), answer(200, TASK)];
    const started = Date.now();
    await client({ retry: { maxDelayMs: 300 } }).getTask(TASK.task_uuid);
    expect(arrivals).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('does not repeat a cancel or a step action answered 503 (the change may have happened)', async () => {
    script = [overloaded(503, '1')];
    const cancel = await failure(client().cancelTask(TASK.task_uuid));
    expect(cancel).toMatchObject({ status: 503, attempts: 1 });
    arrivals = [];
    const action = await failure(
      client().stepAction(TASK.task_uuid, TASK.task_uuid, { action_type: 'resolve_manually' }),
    );
    expect(action).toMatchObject({ status: 503, attempts: 1 });
    expect(arrivals).toHaveLength(1);
  });

  it('reports a 409 after an unclear first attempt as possibly its own creation', async () => {
    script = [
      overloaded(503, '0'),
      answer(409, {
        error: { code: 'TASKER_DUPLICATE_TASK', message: 'a task with the same identity already exists' },
      }),
    ];
    const error = await failure(client().createTask({ name: 'x', idempotency_key: 'order-7' }));
    expect(error).toBeInstanceOf(DuplicateTaskError);
    expect(error).toMatchObject({
      status: 409,
      code: 'TASKER_DUPLICATE_TASK',
      mayBeOwnEarlierAttempt: true,
      attempts: 2,
    });
  });

  it('retries a GET whose connection is reset before the answer', async () => {
    script = [(request) => request.socket.destroy(), answer(200, TASK)];
    const task = await client().getTask(TASK.task_uuid);
    expect(task.status).toBe('pending');
    expect(arrivals).toHaveLength(2);
  });

  it('retries a refused connection, then says the server is unreachable', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const unreachable = new TaskerClient(`http://127.0.0.1:${port}`, {
      retry: { maxAttempts: 3, baseDelayMs: 10 },
    });
    clients.push(unreachable);
    const error = await failure(unreachable.createTask({ name: 'x' }));
    expect(error).toBeInstanceOf(ServerUnreachableError);
    expect(error).toMatchObject({ code: 'TASKER_SERVER_UNREACHABLE', reason: 'ECONNREFUSED', attempts: 3 });
  });

  it('fails a request with no answer within timeoutMs as TASKER_CLIENT_TIMEOUT, without repeating it', async () => {
    script = [() => undefined];
    const started = Date.now();
    const error = await failure(client({ timeoutMs: 300 }).getTask(TASK.task_uuid));
    expect(error).toMatchObject({ code: 'TASKER_CLIENT_TIMEOUT', reason: 'timeout', attempts: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(arrivals).toHaveLength(1);
  });

  it('stops at once when the caller aborts, during a retry wait too', async () => {
    script = [overloaded(503, '30')];
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const started = Date.now();
    const error = await failure(
      client({ retry: { maxDelayMs: 30_000, maxElapsedMs: 60_000 } }).getTask(TASK.task_uuid, {
        signal: controller.signal,
      }),
    );
    expect((error as Error).name).toBe('AbortError');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('keeps one connection across calls and releases it on close(); a closed client refuses calls', async () => {
    script = [answer(200, TASK)];
    const keepAlive = client();
    for (let i = 0; i < 20; i++) await keepAlive.getTask(TASK.task_uuid);
    expect(arrivals).toHaveLength(20);
    expect(connections).toBe(1);
    const socket = sockets[0];
    const released = new Promise<void>((resolve) => socket?.once('close', () => resolve()));
    keepAlive.close();
    keepAlive.close();
    // The server sees the idle connection go: close() destroyed it rather than leaving it to time out.
    await released;
    const error = await failure(keepAlive.getTask(TASK.task_uuid));
    expect(error).toMatchObject({ code: 'TASKER_CLOSED' });
  });

  it('parses Retry-After as seconds or an HTTP date, and backs off within bounds without one', () => {
    const now = Date.parse('2026-03-01T12:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3_000);
    expect(parseRetryAfter('Sun, 01 Mar 2026 12:00:05 GMT', now)).toBe(5_000);
    expect(parseRetryAfter('Sun, 01 Mar 2026 11:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-1', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(retryDelayMs(RETRY_DEFAULTS, 1, 60_000)).toBe(RETRY_DEFAULTS.maxDelayMs);
    for (const attempt of [1, 2, 3, 10]) {
      const ceiling = Math.min(RETRY_DEFAULTS.maxDelayMs, RETRY_DEFAULTS.baseDelayMs * 2 ** (attempt - 1));
      expect(retryDelayMs(RETRY_DEFAULTS, attempt, undefined, () => 0)).toBe(ceiling / 2);
      expect(retryDelayMs(RETRY_DEFAULTS, attempt, undefined, () => 1)).toBe(ceiling);
    }
  });
});
