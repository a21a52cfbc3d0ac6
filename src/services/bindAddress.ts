import { ValidationError } from '../domain/errors.ts';

export interface BindAddress {
  host: string;
  port: number;
}

/**
 * `host:port` as written in `[<role>.web] bind_address` (`0.0.0.0:8080`, `[::]:8080`, `:8080`). The config
 * validator already checked the shape; this turns it into what `listen()` takes.
 * @throws ValidationError TASKER_INVALID_ARGUMENT for a port outside 0-65535
 */
export function parseBindAddress(value: string, key: string): BindAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || !Number.isInteger(port) || port > 65_535) {
    throw new ValidationError(
      'TASKER_INVALID_ARGUMENT',
      `${key} = ${JSON.stringify(value)} is not host:port with a port of 0-65535; for example 0.0.0.0:8080 or [::]:8080`,
    );
  }
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}
