import type { FastifyInstance } from 'fastify';
import { isTaskerError, ValidationError } from '../domain/errors.ts';
import type { BindAddress } from './bindAddress.ts';

/**
 * Listens and returns the URL clients should use (a wildcard host becomes 127.0.0.1). A port in use is a
 * clear error naming the address and the key to change, not an EADDRINUSE stack.
 */
export async function listenHttp(app: FastifyInstance, bind: BindAddress): Promise<string> {
  try {
    await app.listen({ host: bind.host, port: bind.port });
  } catch (error) {
    if (isTaskerError(error)) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const where = `${bind.host}:${bind.port}`;
    throw new ValidationError(
      'TASKER_LISTEN_FAILED',
      code === 'EADDRINUSE'
        ? `cannot listen on ${where}: the port is in use by another process; stop it or change the bind_address (or --port)`
        : `cannot listen on ${where}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : bind.port;
  const host = bind.host === '0.0.0.0' || bind.host === '::' || bind.host === '' ? '127.0.0.1' : bind.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
