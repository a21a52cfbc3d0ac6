/**
 * HTTP/1.1 over a bare TCP socket (node:net), byte for byte as the test writes it: fetch and undici refuse to
 * send what the hostile-request tests need (two Content-Lengths, a folded header, a garbled request line).
 */
import { connect } from 'node:net';

export interface RawAnswer {
  status: number;
  /** Header names in lowercase. */
  headers: Record<string, string>;
  body: string;
  /** The first line as it came, or '' when the server closed without answering. */
  statusLine: string;
}

/**
 * Writes `request` to a new connection and reads the answer until the server closes the connection or the
 * announced body is complete. The server may answer before it has read everything (431, 413): write errors
 * after that are ignored, the answer is what counts.
 */
export function sendRaw(url: string, request: string | Buffer, timeoutMs = 10_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const answer = parseAnswer(Buffer.concat(chunks));
      if (answer === undefined) {
        reject(error ?? new Error(`no HTTP answer (${chunks.length} chunks)`));
      } else {
        resolve(answer);
      }
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const answer = parseAnswer(Buffer.concat(chunks));
      if (answer !== undefined && complete(answer, Buffer.concat(chunks))) finish();
    });
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    // A reset after the answer arrived is the server closing on unread input; the answer still counts.
    socket.on('error', (error) => finish(error));
    socket.write(request);
  });
}

function splitHead(raw: Buffer): { head: string; body: Buffer } | undefined {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  return { head: raw.subarray(0, end).toString('latin1'), body: raw.subarray(end + 4) };
}

function parseAnswer(raw: Buffer): RawAnswer | undefined {
  const parts = splitHead(raw);
  if (parts === undefined) return undefined;
  const [statusLine = '', ...lines] = parts.head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? Number.NaN);
  if (Number.isNaN(status)) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status, headers, statusLine, body: parts.body.toString('utf8') };
}

function complete(answer: RawAnswer, raw: Buffer): boolean {
  const length = Number(answer.headers['content-length']);
  if (!Number.isInteger(length)) return false;
  return (splitHead(raw)?.body.length ?? 0) >= length;
}

/** One request with `Host`, `Connection: close` and, with a body, its Content-Length. */
export function rawRequest(
  method: string,
  path: string,
  options: { host: string; headers?: Record<string, string>; body?: string },
): Buffer {
  const body = options.body === undefined ? undefined : Buffer.from(options.body, 'utf8');
  const headers: Record<string, string> = {
    host: options.host,
    connection: 'close',
    ...options.headers,
    ...(body !== undefined && { 'content-length': String(body.length) }),
  };
  const head =
    `${method} ${path} HTTP/1.1\r\n` +
    Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('') +
    '\r\n';
  return body === undefined
    ? Buffer.from(head, 'latin1')
    : Buffer.concat([Buffer.from(head, 'latin1'), body]);
}
