import type { FastifyInstance } from 'fastify';

/** How often connections that fell idle are closed while the server shuts down. */
const IDLE_SWEEP_MS = 50;

/**
 * Closes an HTTP server gracefully: requests in flight finish, new ones get 503, and every keep-alive
 * connection is closed as soon as it falls idle. Fastify closes the connections that are idle when close()
 * starts; one whose request was still running then stayed open until the client's keep-alive ended, and its
 * client kept it for up to 72 s: a SIGTERM during a burst of requests held the process that long (measured with
 * 300 task requests in flight).
 */
export async function closeGracefully(app: FastifyInstance): Promise<void> {
  const sweep = setInterval(() => app.server.closeIdleConnections(), IDLE_SWEEP_MS);
  try {
    await app.close();
  } finally {
    clearInterval(sweep);
  }
}
