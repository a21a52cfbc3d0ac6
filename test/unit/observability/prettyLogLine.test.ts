import { describe, expect, it } from 'vitest';
import { resolveLogFormat } from '../../../src/observability/logger.ts';
import { prettyLogLine } from '../../../src/observability/prettyLogLine.ts';

describe('pretty log lines', () => {
  it('writes time, level, component, message and key=value fields on one line', () => {
    const time = new Date(2026, 11, 8, 9, 5, 7, 42).getTime();
    const line = prettyLogLine(
      JSON.stringify({
        level: 'warn',
        time,
        pid: 1,
        hostname: 'h',
        name: 'tasker-worker',
        component: 'handler',
        task_uuid: 'abc',
        attempt: 2,
        note: 'two words',
        msg: 'step failed',
      }),
    );
    expect(line).toBe(
      '09:05:07.042 WARN  worker/handler step failed  task_uuid=abc attempt=2 note="two words"\n',
    );
  });

  it('puts an error stack on indented lines below the event', () => {
    const line = prettyLogLine(
      JSON.stringify({
        level: 'error',
        time: 0,
        name: 'tasker-orchestration',
        err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at f (a.ts:1:2)' },
        msg: 'shutdown failed',
      }),
    );
    expect(line).toMatch(
      /ERROR orchestration shutdown failed {2}err=boom\n {4}Error: boom\n {4}at f \(a\.ts:1:2\)\n$/,
    );
  });

  it('passes a line that is not JSON through unchanged', () => {
    expect(prettyLogLine('not json\n')).toBe('not json\n');
  });

  it('is the default only in development with stderr on a terminal', () => {
    expect(resolveLogFormat('auto', 'development', true)).toBe('pretty');
    expect(resolveLogFormat('auto', 'development', false)).toBe('json');
    expect(resolveLogFormat('auto', 'production', true)).toBe('json');
    expect(resolveLogFormat('auto', 'test', true)).toBe('json');
    expect(resolveLogFormat('pretty', 'production', false)).toBe('pretty');
    expect(resolveLogFormat('json', 'development', true)).toBe('json');
  });
});
