import { ValidationError } from '../../domain/errors.ts';

export interface BindTarget {
  /** What grpc-js binds: `0.0.0.0:9190`, `[::]:9190`, `127.0.0.1:0`. */
  target: string;
  host: string;
  port: number;
}

/**
 * `host:port` as written in `[<role>.grpc] bind_address` (`0.0.0.0:9190`, `[::]:9190`, `:9190`).
 * @param key the config key, for the error message
 * @throws ValidationError TASKER_LISTEN_FAILED when the value is not host:port with a port of 0-65535
 */
export function parseGrpcBindAddress(value: string, key: string): BindTarget {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || port > 65_535) {
    throw new ValidationError(
      'TASKER_LISTEN_FAILED',
      `cannot serve gRPC on ${JSON.stringify(value)}: not host:port with a port of 0-65535; set ${key} to, for example, "0.0.0.0:9190" or "[::]:9190"`,
      { details: { address: value, key } },
    );
  }
  const ipv6 = match[1];
  // grpc-js cannot resolve an empty host; an empty host means every interface, as for the REST listener.
  const host = ipv6 ?? (match[2] === '' || match[2] === undefined ? '0.0.0.0' : match[2]);
  return { target: hostPort(host, port), host, port };
}

/** `host:port`, with an IPv6 host in brackets. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Where a client on this machine connects: a wildcard host (also `::`, dual-stack) becomes 127.0.0.1. */
export function clientAddress(host: string, port: number): string {
  return hostPort(host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host, port);
}
