/**
 * What the orchestration API and the worker's HTTP server share below the routes: the request id, requests
 * that Node's HTTP parser refuses before fastify sees them, the Host and Expect checks, and the rule that a
 * route without a declared query schema takes no query parameters. Every answer, whoever refuses the request,
 * is the documented `{"error": {"code", "message"}}` body with an `X-Request-Id`.
 */
import { randomUUID } from 'node:crypto';
import { maxHeaderSize, STATUS_CODES } from 'node:http';
import type { IncomingMessage, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../observability/logger.ts';
import { ApiError } from './apiError.ts';
import type { ApiErrorCode } from './apiError.ts';
import { noQueryParameters } from './schemas/common.ts';
import { validatorCompiler } from './validation.ts';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * A caller's X-Request-Id is kept when it is harmless in logs; otherwise (or with no request to read it
 * from, as for a request the parser refused) a fresh UUID.
 */
function requestIdOf(request?: IncomingMessage): string {
  const header = request?.headers['x-request-id'];
  return typeof header === 'string' && SAFE_REQUEST_ID.test(header) ? header : randomUUID();
}

interface ProtocolRefusal {
  status: number;
  code: ApiErrorCode;
  message: string;
}

function refusalOf(error: NodeJS.ErrnoException & { reason?: unknown }): ProtocolRefusal {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        code: 'TASKER_HEADERS_TOO_LARGE',
        message: `the request line and headers together are larger than ${maxHeaderSize} bytes; send a shorter URL and fewer or smaller headers`,
      };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        status: 408,
        code: 'TASKER_REQUEST_INCOMPLETE',
        message: 'the request did not arrive whole within the request timeout; send it again',
      };
    default: {
      // llhttp's reason is a fixed phrase ("Invalid header value char"), never an echo of the request.
      const reason = typeof error.reason === 'string' ? ` (${error.reason})` : '';
      return {
        status: 400,
        code: 'TASKER_BAD_REQUEST',
        message: `the request is not valid HTTP/1.1${reason}; it was refused before it was read`,
      };
    }
  }
}

function errorJson(code: string, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** After the answer, input still arriving is read and dropped this long, so that it does not reset the answer. */
const LINGER_MS = 1_000;
const answered = new WeakSet<Socket>();

/**
 * fastify's `clientErrorHandler`: Node's parser refused the bytes on this socket (smuggling attempts such as
 * Content-Length with Transfer-Encoding, a header section over the limit, a garbled request line), so there is
 * no request object, only the socket. Closing a socket with unread input makes the kernel send a reset that
 * can destroy the answer before the client reads it, so the socket is half-closed and drained for a moment.
 */
function clientErrorHandler(logger: Logger): (error: Error, socket: Socket) => void {
  return (error, socket) => {
    const code = (error as NodeJS.ErrnoException).code;
    // The parser reports the same error again for each later chunk of a socket it gave up on.
    if (answered.has(socket)) return;
    answered.add(socket);
    // A response already on its way (pipelining) cannot be followed by another one without corrupting it.
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (code === 'ECONNRESET' || !socket.writable || (inFlight != null && inFlight.headersSent)) {
      socket.destroy();
      return;
    }
    const refusal = refusalOf(error);
    const requestId = requestIdOf();
    logger.debug(
      { request_id: requestId, status: refusal.status, parser_code: code },
      'refused a request the HTTP parser could not read',
    );
    const body = errorJson(refusal.code, refusal.message);
    socket.end(
      `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-Id: ${requestId}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
    socket.removeAllListeners('data');
    socket.on('data', () => undefined);
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  };
}

/**
 * Constructor options of both fastify servers. Node answers a missing Host itself with an empty 400, so the
 * check is turned off here and made in {@link hardenHttp}, where the answer has the documented body.
 */
export function protocolOptions(logger: Logger): {
  genReqId: (request: IncomingMessage) => string;
  clientErrorHandler: (error: Error, socket: Socket) => void;
  http: ServerOptions;
} {
  return {
    genReqId: requestIdOf,
    clientErrorHandler: clientErrorHandler(logger),
    http: { requireHostHeader: false },
  };
}

/**
 * Registers, before any route: the request-id header, the Host check, the answer to an unknown `Expect`, the
 * query/path validator and the default query schema. Routes registered later (the Swagger UI's included) that
 * declare no `querystring` schema refuse every query parameter instead of ignoring it.
 */
export function hardenHttp(app: FastifyInstance, logger: Logger): void {
  app.setValidatorCompiler(validatorCompiler);
  app.addHook('onRoute', (route) => {
    if (route.schema?.querystring === undefined) {
      route.schema = { ...route.schema, querystring: noQueryParameters };
    }
  });
  app.addHook('onRequest', (request, reply, done) => {
    void reply.header('x-request-id', request.id);
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      done(
        new ApiError(400, 'TASKER_BAD_REQUEST', 'an HTTP/1.1 request must carry a Host header; send one', {
          headers: { connection: 'close' },
        }),
      );
      return;
    }
    done();
  });
  // Without a listener Node answers any Expect but 100-continue with an empty 417.
  app.server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    const requestId = requestIdOf(request);
    logger.debug({ request_id: requestId, method: request.method, url: request.url }, 'unknown Expect');
    const body = errorJson(
      'TASKER_EXPECTATION_FAILED',
      'the server supports no Expect header but "100-continue"; send the request without it',
    );
    response.shouldKeepAlive = false;
    response
      .writeHead(417, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        'x-request-id': requestId,
        connection: 'close',
      })
      .end(body);
  });
}
