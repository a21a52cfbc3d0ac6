/**
 * A PostgreSQL server of a test's own (initdb into a temporary folder, its own port), for tests that crash and
 * restart the server: the shared server on 5432 serves every other test file at the same time. Uses the
 * server binaries of the PostgreSQL install (PG_BIN overrides where they are). PostgreSQL refuses to run as
 * root, so as root the cluster belongs to the `postgres` user.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ScratchPostgres {
  readonly port: number;
  /** A URL for `database` on this server (user postgres, trust authentication). */
  url(database: string): string;
  /** Kills the server as a crash would (pg_ctl stop -m immediate): no checkpoint, recovery from WAL at start. */
  crash(): void;
  /** Starts it again and waits until it accepts connections (recovery included). */
  start(): void;
  /** Stops it (fast shutdown) and deletes its files. Safe to call twice. */
  destroy(): void;
}

function serverBinaries(): string {
  if (process.env.PG_BIN !== undefined) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
        .sort((a, b) => Number(a) - Number(b))
    : [];
  const newest = versions.at(-1);
  if (newest === undefined) {
    throw new Error(
      `no PostgreSQL server binaries under ${root}: install the PostgreSQL server package, or set PG_BIN to the folder holding initdb, pg_ctl and postgres`,
    );
  }
  return join(root, newest, 'bin');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

export async function startScratchPostgres(): Promise<ScratchPostgres> {
  const bin = serverBinaries();
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'tasker-scratch-pg-'));
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const port = await freePort();
  /** Runs a server binary as the cluster's owner. */
  const run = (tool: string, args: string[]): void => {
    const command = [join(bin, tool), ...args];
    if (asRoot) {
      const quoted = command.map((part) => `'${part.replaceAll("'", "'\\''")}'`).join(' ');
      execFileSync('su', ['postgres', '-s', '/bin/sh', '-c', quoted], { stdio: 'pipe' });
    } else {
      execFileSync(command[0] ?? tool, command.slice(1), { stdio: 'pipe' });
    }
  };
  const start = (): void =>
    run('pg_ctl', [
      '-D',
      data,
      '-l',
      join(dir, 'server.log'),
      '-w',
      '-t',
      '60',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=100`,
      'start',
    ]);
  run('initdb', ['-A', 'trust', '-U', 'postgres', '-D', data]);
  start();
  let destroyed = false;
  return {
    port,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    crash: () => run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']),
    start,
    destroy: () => {
      if (destroyed) return;
      destroyed = true;
      try {
        run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      } catch {
        // Already stopped (a test that crashed it and failed before starting it again).
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
