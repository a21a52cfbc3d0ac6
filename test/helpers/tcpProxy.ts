/**
 * A TCP proxy in front of PostgreSQL, for making the database unreachable and bringing it back without
 * touching the server other tests use. `cut()` destroys every proxied connection and stops listening, so new
 * connections are refused (ECONNREFUSED), as when the server is down; `restore()` listens again on the same
 * port. Services started with `proxiedUrl(url, proxy)` reach the database only through it.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { SERVER_URL } from './testEnv.ts';

export interface TcpProxy {
  /** Where the proxy listens (127.0.0.1). */
  readonly port: number;
  /** Connections accepted since the proxy started. */
  readonly accepted: number;
  /** Connections open through the proxy now. */
  readonly open: number;
  readonly isCut: boolean;
  /** Destroys every connection and refuses new ones until `restore()`. Safe to call twice. */
  cut(): Promise<void>;
  /** Accepts connections again, on the same port. Safe to call twice. */
  restore(): Promise<void>;
  /** Destroys every connection and stops for good. Safe to call twice. */
  close(): Promise<void>;
}

/** The PostgreSQL server the tests use, as host and port. */
function testServerAddress(): { host: string; port: number } {
  const url = new URL(SERVER_URL);
  return { host: url.hostname, port: Number(url.port || 5432) };
}

/** `url` with its host and port replaced by the proxy's: the same database, reached through the proxy. */
export function proxiedUrl(url: string, proxy: Pick<TcpProxy, 'port'>): string {
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  return proxied.toString();
}

function listen(server: net.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen({ host: '127.0.0.1', port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Starts a proxy to `target` (default: the tests' PostgreSQL server) on a free port. */
export async function startTcpProxy(target = testServerAddress()): Promise<TcpProxy> {
  /** Each proxied connection: the client's socket and ours to the server. */
  const pairs = new Set<readonly [net.Socket, net.Socket]>();
  let accepted = 0;
  let cut = false;
  let closed = false;
  const server = net.createServer((client) => {
    accepted += 1;
    const upstream = net.connect({ host: target.host, port: target.port });
    const pair = [client, upstream] as const;
    pairs.add(pair);
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of pair) {
      socket.setNoDelay(true);
      // Either side failing or closing ends both, as a dropped network path would.
      socket.on('error', end);
      socket.on('close', end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await listen(server, 0);
  const port = (server.address() as AddressInfo).port;

  const stopListening = async (): Promise<void> => {
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const [client, upstream] of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
    await stopped;
  };

  return {
    port,
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    get isCut() {
      return cut;
    },
    cut: async () => {
      if (cut || closed) return;
      cut = true;
      await stopListening();
    },
    restore: async () => {
      if (!cut || closed) return;
      // The port was free a moment ago; another process taking it in between is unlikely but possible.
      for (let attempt = 1; ; attempt++) {
        try {
          await listen(server, port);
          break;
        } catch (error) {
          if ((error as { code?: string }).code !== 'EADDRINUSE' || attempt >= 20) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      cut = false;
    },
    close: async () => {
      if (closed) return;
      closed = true;
      if (!cut) await stopListening();
    },
  };
}
