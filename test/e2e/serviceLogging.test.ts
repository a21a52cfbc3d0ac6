/**
 * What a real `tasker orchestration` writes on stderr: `log_format = "pretty"` gives one human-readable line
 * per event, and a service whose log pipe was closed by its reader (`tasker orchestration 2>&1 | head`) keeps
 * running and still stops cleanly on SIGTERM and SIGINT.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/engine/wait.ts';
import { createTestDatabase } from '../helpers/testDatabase.ts';
import type { TestDatabase } from '../helpers/testDatabase.ts';

const BIN = fileURLToPath(new URL('../../bin/tasker.js', import.meta.url));

interface Service {
  child: ChildProcess;
  stderr: string[];
  exited: Promise<number | string>;
}

/** Starts orchestration on free ports and resolves once its "service started" line was written. */
async function startOrchestration(env: Record<string, string>, started: RegExp): Promise<Service> {
  const child = spawn(
    process.execPath,
    [BIN, 'orchestration', '--bind', '127.0.0.1:0', '--grpc-bind', '127.0.0.1:0'],
    {
      env: { ...process.env, LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const stderr: string[] = [];
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not started in 60 s: ${stderr.join('')}`)), 60_000);
    void exited.then((code) => reject(new Error(`exited ${code}: ${stderr.join('')}`)));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr.push(chunk.toString('utf8'));
      if (started.test(stderr.join(''))) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { child, stderr, exited };
}

async function exitWithin(service: Service, ms: number): Promise<number | string> {
  const timer = setTimeout(() => service.child.kill('SIGKILL'), ms);
  try {
    return await service.exited;
  } finally {
    clearTimeout(timer);
  }
}

describe('service logging', () => {
  let testDb: TestDatabase;
  let configDir: string;

  beforeAll(async () => {
    testDb = await createTestDatabase();
    configDir = mkdtempSync(join(tmpdir(), 'tasker-logging-'));
    writeFileSync(join(configDir, 'pretty.toml'), '[telemetry]\nlog_format = "pretty"\n');
  }, 60_000);
  afterAll(async () => {
    rmSync(configDir, { recursive: true, force: true });
    await testDb.drop();
  });

  it('writes one human-readable line per event with log_format = "pretty"', async () => {
    const service = await startOrchestration(
      { TASKER_CONFIG_PATH: join(configDir, 'pretty.toml'), DATABASE_URL: testDb.url },
      /orchestration service started.*\n/,
    );
    service.child.kill('SIGTERM');
    expect(await exitWithin(service, 20_000)).toBe(0);
    const lines = service.stderr
      .join('')
      .split('\n')
      .filter((l) => l !== '');
    const started = lines.find((l) => l.includes('orchestration service started'));
    expect(started).toMatch(
      /^\d{2}:\d{2}:\d{2}\.\d{3} INFO {2}orchestration +orchestration service started {2}url=http:\/\/127\.0\.0\.1:\d+ .*environment=development/,
    );
    expect(lines.some((l) => /INFO {2}orchestration +stopped cleanly/.test(l))).toBe(true);
    for (const line of lines) expect(line.startsWith('{')).toBe(false);
  }, 90_000);

  for (const [format, env] of [
    ['json', { TASKER_ENV: 'test' }],
    ['pretty', { TASKER_ENV: 'test', TASKER_CONFIG_PATH: 'pretty.toml' }],
  ] as const) {
    it(`stops on SIGTERM and SIGINT after its ${format} log pipe was closed`, async () => {
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        const service = await startOrchestration(
          {
            ...env,
            ...('TASKER_CONFIG_PATH' in env && {
              TASKER_CONFIG_PATH: join(configDir, env.TASKER_CONFIG_PATH),
            }),
            DATABASE_URL: testDb.url,
          },
          /orchestration service started/,
        );
        // The reader is gone: every later log line the service writes fails with EPIPE.
        service.child.stderr?.destroy();
        service.child.stdout?.destroy();
        await sleep(500);
        expect(service.child.exitCode).toBeNull();
        service.child.kill(signal);
        expect(await exitWithin(service, 20_000)).toBe(0);
      }
    }, 180_000);
  }
});
