import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import type {
  Database,
  ListenConnection,
  ListenHandlers,
  PoolStats,
  QueryResult,
  Queryable,
  SqlParam,
} from './database.ts';
import { ValidationError } from '../domain/errors.ts';

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Parses `pglite:<folder>` (a folder on disk, created if missing) or `pglite:memory` (nothing kept).
 */
function pgliteDataDir(url: string): string | undefined {
  const target = url.slice('pglite:'.length).replace(/^\/\/(?=\/)/, '');
  if (target === '') {
    throw new ValidationError(
      'TASKER_DATABASE_URL_INVALID',
      'DATABASE_URL "pglite:" names no folder: use pglite:<folder> (for example pglite:./.tasker/db) or pglite:memory',
    );
  }
  return target === 'memory' ? undefined : target;
}

/**
 * The embedded database: PostgreSQL compiled to WebAssembly, running inside this process on a local folder.
 * It has a single session, so "pool" and "listen connection" are views of that one session; PGlite
 * serializes queries and holds transactions exclusively.
 */
export class PgliteDatabase implements Database {
  readonly kind = 'pglite' as const;
  readonly displayName: string;
  private readonly db: PGlite;
  private closed = false;

  private constructor(db: PGlite, displayName: string) {
    this.db = db;
    this.displayName = displayName;
  }

  static async open(url: string): Promise<PgliteDatabase> {
    const dataDir = pgliteDataDir(url);
    if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true });
    const db = await PGlite.create(dataDir === undefined ? {} : { dataDir });
    return new PgliteDatabase(db, url);
  }

  async query<Row = Record<string, unknown>>(
    sql: string,
    params?: readonly SqlParam[],
  ): Promise<QueryResult<Row>> {
    const result = await this.db.query<Row>(sql, params as unknown[] | undefined);
    return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
  }

  async exec(sql: string): Promise<void> {
    await this.db.exec(sql);
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) =>
      fn({
        query: async <Row>(sql: string, params?: readonly SqlParam[]) => {
          const result = await tx.query<Row>(sql, params as unknown[] | undefined);
          return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
        },
        exec: async (sql: string) => {
          await tx.exec(sql);
        },
      }),
    );
  }

  openListenConnection(handlers: ListenHandlers): Promise<ListenConnection> {
    const channels = new Set<string>();
    const unsubscribe = this.db.onNotification((channel, payload) => {
      if (channels.has(channel)) handlers.onNotification(channel, payload);
    });
    const connection: ListenConnection = {
      backendPid: null,
      listen: async (channel) => {
        channels.add(channel);
        await this.db.exec(`LISTEN ${quoteIdentifier(channel)}`);
      },
      unlisten: async (channel) => {
        channels.delete(channel);
        await this.db.exec(`UNLISTEN ${quoteIdentifier(channel)}`);
      },
      ping: async () => {
        await this.db.query('SELECT 1');
      },
      close: async () => {
        unsubscribe();
        if (this.closed) return;
        for (const channel of channels) await this.db.exec(`UNLISTEN ${quoteIdentifier(channel)}`);
        channels.clear();
      },
    };
    return Promise.resolve(connection);
  }

  poolStats(): PoolStats {
    return { max: 1, total: 1, idle: 1, waiting: 0 };
  }

  cancelRunning(): Promise<number> {
    return Promise.resolve(0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
  }
}
