import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
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
import { DatabaseError, ValidationError } from '../domain/errors.ts';
import { lockDataFolder } from './dataFolderLock.ts';
import type { DataFolderLock } from './dataFolderLock.ts';

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
  private readonly lock: DataFolderLock | undefined;
  private closed = false;

  private constructor(db: PGlite, displayName: string, lock: DataFolderLock | undefined) {
    this.db = db;
    this.displayName = displayName;
    this.lock = lock;
  }

  /**
   * @throws DatabaseError TASKER_DATABASE_LOCKED when another process has the folder open,
   *   TASKER_DATABASE_UNAVAILABLE when PGlite cannot open it (the message says how to start fresh)
   */
  static async open(url: string): Promise<PgliteDatabase> {
    const dataDir = pgliteDataDir(url);
    if (dataDir === undefined) return new PgliteDatabase(await PGlite.create({}), url, undefined);
    mkdirSync(dataDir, { recursive: true });
    const lock = lockDataFolder(dataDir);
    try {
      return new PgliteDatabase(await PGlite.create({ dataDir }), url, lock);
    } catch (error) {
      lock.release();
      // PGlite's own messages ("PGlite failed to initialize properly", a WebAssembly abort) say nothing of
      // the folder or the way out; the folder is only a local development database.
      const reason = error instanceof Error ? error.message : String(error);
      throw new DatabaseError(
        'TASKER_DATABASE_UNAVAILABLE',
        `the embedded database in ${resolve(dataDir)} cannot be opened (${reason}). It may be damaged, or written ` +
          `by another PGlite version; to start fresh, delete the folder (its data is lost): rm -rf ${dataDir}`,
        { details: { folder: resolve(dataDir) }, cause: error },
      );
    }
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
    try {
      await this.db.close();
    } finally {
      this.lock?.release();
    }
  }
}
