import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DatabaseError } from '../domain/errors.ts';

/** The lock file inside a PGlite data folder; PostgreSQL ignores files it does not know in its data directory. */
const LOCK_FILE = 'tasker.lock';

/** An exclusive hold on an embedded database's folder, released when the database closes. */
export interface DataFolderLock {
  release(): void;
}

/** True when a process with this id runs (EPERM: it runs under another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function holderOf(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes the folder's lock file, created exclusively (`wx`) with this process's id. PGlite is a single-process
 * database: two processes on one folder each keep their own copy in memory and write over each other's files,
 * which splits the data and can leave the folder unopenable. A lock whose process is gone is stale (a crash or
 * SIGKILL leaves one behind) and is taken over; two processes taking over one stale lock race on the `wx`
 * create, and the loser reports the winner.
 * @throws DatabaseError TASKER_DATABASE_LOCKED naming the folder and the holding process
 */
export function lockDataFolder(folder: string): DataFolderLock {
  const path = join(folder, LOCK_FILE);
  for (let attempt = 0; ; attempt += 1) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      return {
        release: () => {
          // Only our own lock: a lock taken over after this process was presumed dead is the new holder's.
          if (holderOf(path) === process.pid) rmSync(path, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = holderOf(path);
    // A lock file of this process is a second open of the folder in one process: as unsafe as another process.
    if (attempt === 0 && holder !== undefined && holder !== process.pid && !processAlive(holder)) {
      rmSync(path, { force: true });
      continue;
    }
    if (attempt === 0 && holder === undefined) {
      // A lock file without a process id: its writer died between create and write, or someone emptied it.
      rmSync(path, { force: true });
      continue;
    }
    throw new DatabaseError(
      'TASKER_DATABASE_LOCKED',
      `the embedded database folder ${resolve(folder)} is in use by ${holder === undefined ? 'another process' : `process ${holder}${holder === process.pid ? ' (this one)' : ''}`}; ` +
        'one process at a time can use a PGlite folder: stop that process, or use another folder (--database-url pglite:<folder>)',
      { details: { folder: resolve(folder), pid: holder ?? null, lock_file: resolve(path) } },
    );
  }
}
