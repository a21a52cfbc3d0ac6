import http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';

/**
 * The connections of one client. A keep-alive agent saves a TCP (and TLS) handshake per call; the global
 * `fetch` of Node 20 (undici) cannot be tuned per client and costs more per request.
 * @public
 */
export interface AgentOptions {
  /** Connections open at once to the server; further calls queue for one. @defaultValue 16 */
  maxSockets?: number;
  /** Idle connections kept for reuse. @defaultValue 16 */
  maxFreeSockets?: number;
  /**
   * An idle connection is closed after this long. Keep it below the server's keep-alive timeout (Node and
   * Fastify: 72 s, announced in `Keep-Alive: timeout=`; the agent also honours that hint).
   * @defaultValue 30000
   */
  idleTimeoutMs?: number;
}

const AGENT_DEFAULTS: Required<AgentOptions> = { maxSockets: 16, maxFreeSockets: 16, idleTimeoutMs: 30_000 };

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * Why an attempt got no answer. `refused`: the connection was never made, so nothing was sent. `broken`: the
 * connection failed after it was made, before a whole answer came. `timeout`: the per-request timeout passed.
 * `other`: anything else (a bad host name, a TLS failure), which retrying does not fix.
 */
export class TransportFailure extends Error {
  constructor(
    readonly kind: 'refused' | 'broken' | 'timeout' | 'other',
    readonly reason: string,
    options: { cause?: unknown } = {},
  ) {
    super(reason, options);
  }
}

// Nothing reached the server: the connection was refused, or the name did not resolve for now.
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'EAI_AGAIN']);
const BROKEN = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

function classify(error: unknown): TransportFailure {
  const code = (error as { code?: unknown }).code;
  const reason = typeof code === 'string' ? code : (error as Error).message;
  if (typeof code === 'string' && NOT_CONNECTED.has(code))
    return new TransportFailure('refused', reason, { cause: error });
  if (typeof code === 'string' && BROKEN.has(code))
    return new TransportFailure('broken', reason, { cause: error });
  return new TransportFailure('other', reason, { cause: error });
}

/** What a call rejects with when its signal aborts: the signal's reason, made an Error if it is not one. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error
    ? reason
    : new DOMException(typeof reason === 'string' ? reason : 'the call was aborted', 'AbortError');
}

/** One HTTP exchange at a time over the client's keep-alive agent. */
export class HttpTransport {
  private readonly url: URL;
  private readonly basePath: string;
  private readonly agent: http.Agent;
  private readonly send: typeof http.request;
  private readonly extraHeaders: Readonly<Record<string, string>>;

  /** `headers` go with every request (the credentials). */
  constructor(baseUrl: string, options: AgentOptions = {}, headers: Record<string, string> = {}) {
    this.extraHeaders = headers;
    this.url = new URL(baseUrl);
    this.basePath = this.url.pathname.replace(/\/+$/, '');
    const resolved = { ...AGENT_DEFAULTS, ...options };
    const agentOptions: http.AgentOptions = {
      keepAlive: true,
      maxSockets: resolved.maxSockets,
      maxFreeSockets: resolved.maxFreeSockets,
      timeout: resolved.idleTimeoutMs,
      scheduling: 'lifo',
    };
    const secure = this.url.protocol === 'https:';
    this.agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.send = secure ? https.request : http.request;
  }

  /**
   * Sends one request and reads the whole answer, within `timeoutMs` from now (waiting for a free connection
   * included). Rejects with a TransportFailure, or with `signal.reason` when the caller aborts.
   */
  exchange(
    method: string,
    path: string,
    body: string | undefined,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    callHeaders: Readonly<Record<string, string>> = {},
  ): Promise<HttpAnswer> {
    return new Promise<HttpAnswer>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(abortReason(signal));
        return;
      }
      const headers: http.OutgoingHttpHeaders = {
        ...this.extraHeaders,
        ...callHeaders,
        accept: 'application/json',
      };
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      const request = this.send({
        protocol: this.url.protocol,
        hostname: this.url.hostname,
        port: this.url.port,
        path: `${this.basePath}${path}`,
        method,
        headers,
        agent: this.agent,
      });
      let settled = false;
      const settle = (outcome: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        outcome();
      };
      const timer = setTimeout(() => {
        settle(() => reject(new TransportFailure('timeout', `no answer within ${timeoutMs} ms`)));
        request.destroy();
      }, timeoutMs);
      const onAbort = (): void => {
        if (signal !== undefined) settle(() => reject(abortReason(signal)));
        request.destroy();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      request.on('error', (error) => settle(() => reject(classify(error))));
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) => settle(() => reject(classify(error))));
        response.on('end', () =>
          settle(() =>
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          ),
        );
        response.on('close', () => {
          if (!response.complete)
            settle(() => reject(new TransportFailure('broken', 'the connection closed mid-answer')));
        });
      });
      request.end(body);
    });
  }

  /** Closes every connection, idle or not. */
  close(): void {
    this.agent.destroy();
  }
}
