/**
 * A request body announced (Content-Length) over the limit gets its 413 even when the client is still sending
 * it. Fastify answered at once and closed the connection under a client busy writing, which then saw its write
 * fail (EPIPE, ECONNRESET) instead of the answer: the end-to-end hostile-request test failed so on a loaded
 * machine. Here the clients send 2 MiB (the limit is 1 MiB) in 64 KiB pieces 5 ms apart, over a real socket.
 */
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { useApi } from './apiHarness.ts';

const SIZE = 2 * 1024 * 1024;

/** POST /v1/tasks with a body of `size` bytes written slowly; the answer's status and error code, or the error. */
function slowPost(url: string, size: number): Promise<string> {
  return new Promise((resolve) => {
    const target = new URL(`${url}/v1/tasks`);
    const req = request({
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': String(size) },
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => {
        const code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '';
        resolve(`${res.statusCode} ${code}`);
      });
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(`error ${error.code ?? error.message}`));
    const piece = Buffer.alloc(64 * 1024, 'x');
    let sent = 0;
    const next = (): void => {
      if (sent >= size) {
        req.end();
        return;
      }
      const n = Math.min(piece.length, size - sent);
      req.write(piece.subarray(0, n));
      sent += n;
      setTimeout(next, 5);
    };
    next();
  });
}

describe('an oversized request body', () => {
  const api = useApi();

  it('is answered 413 TASKER_BODY_TOO_LARGE after it arrived, not cut off while the client sends it', async () => {
    const answers = await Promise.all(Array.from({ length: 3 }, () => slowPost(api().url, SIZE)));
    expect(answers).toEqual(Array(3).fill('413 TASKER_BODY_TOO_LARGE'));
  }, 60_000);
});
