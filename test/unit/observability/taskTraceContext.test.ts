import { createHash } from 'node:crypto';
import { isSpanContextValid, isValidSpanId, isValidTraceId, TraceFlags } from '@opentelemetry/api';
import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import {
  parseTraceparent,
  rootSpanIdForTask,
  taskRootSpanContext,
  TaskRootIdGenerator,
  traceIdForTask,
  withTaskRootIds,
} from '../../../src/observability/taskTraceContext.ts';

const TASK = '0193e5b4-7c1a-7d2e-8f00-1a2b3c4d5e6f';

/** Counts calls so a test can tell fallback ids from task ids. */
class CountingGenerator {
  traceIds = 0;
  spanIds = 0;
  generateTraceId(): string {
    this.traceIds += 1;
    return 'f'.repeat(32);
  }
  generateSpanId(): string {
    this.spanIds += 1;
    return 'e'.repeat(16);
  }
}

describe('task trace ids', () => {
  it('the trace id is the task UUID without dashes, lowercase', () => {
    expect(traceIdForTask(TASK)).toBe('0193e5b47c1a7d2e8f001a2b3c4d5e6f');
    expect(traceIdForTask(TASK.toUpperCase())).toBe('0193e5b47c1a7d2e8f001a2b3c4d5e6f');
    expect(isValidTraceId(traceIdForTask(uuidv7()))).toBe(true);
  });

  it('the root span id is the first 8 bytes of SHA-256 over the canonical UUID text', () => {
    const expected = createHash('sha256').update(TASK).digest('hex').slice(0, 16);
    expect(rootSpanIdForTask(TASK)).toBe(expected);
    expect(rootSpanIdForTask(TASK.toUpperCase())).toBe(expected);
    expect(isValidSpanId(expected)).toBe(true);
  });

  it('different tasks get different ids; the same task always the same', () => {
    const tasks = Array.from({ length: 200 }, () => uuidv7());
    expect(new Set(tasks.map(traceIdForTask)).size).toBe(200);
    expect(new Set(tasks.map(rootSpanIdForTask)).size).toBe(200);
    expect(tasks.map(rootSpanIdForTask)).toEqual(tasks.map(rootSpanIdForTask));
  });

  it('anything but a UUID is refused (it would make an invalid or colliding trace id)', () => {
    for (const bad of ['', 'not-a-uuid', '00000000-0000-0000-0000-000000000000', `${TASK}0`, TASK.slice(1)]) {
      expect(() => traceIdForTask(bad)).toThrow(TypeError);
      expect(() => rootSpanIdForTask(bad)).toThrow(TypeError);
    }
  });

  it('the task root as a remote, sampled parent any process can build', () => {
    const root = taskRootSpanContext(TASK);
    expect(root).toEqual({
      traceId: traceIdForTask(TASK),
      spanId: rootSpanIdForTask(TASK),
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    });
    expect(isSpanContextValid(root)).toBe(true);
  });
});

describe('parseTraceparent', () => {
  const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const SPAN = '00f067aa0ba902b7';

  it('reads version 00, sampled or not', () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`)).toEqual({
      traceId: TRACE,
      spanId: SPAN,
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    });
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-00`)?.traceFlags).toBe(TraceFlags.NONE);
    expect(parseTraceparent(`  00-${TRACE}-${SPAN}-01 `)?.spanId).toBe(SPAN);
  });

  it('accepts a later version with more fields, reading the first four', () => {
    expect(parseTraceparent(`01-${TRACE}-${SPAN}-01-what-comes-later`)?.traceId).toBe(TRACE);
  });

  it.each([
    ['missing', undefined],
    ['not a string', 42],
    ['a repeated header', [`00-${TRACE}-${SPAN}-01`, `00-${TRACE}-${SPAN}-01`]],
    ['empty', ''],
    ['version ff', `ff-${TRACE}-${SPAN}-01`],
    ['version 00 with more fields', `00-${TRACE}-${SPAN}-01-extra`],
    ['upper-case hex', `00-${TRACE.toUpperCase()}-${SPAN}-01`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${SPAN}-01`],
    ['an all-zero span id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['a short trace id', `00-${TRACE.slice(2)}-${SPAN}-01`],
  ])('ignores %s', (_what, header) => {
    expect(parseTraceparent(header)).toBeUndefined();
  });
});

describe('TaskRootIdGenerator', () => {
  it('gives the task ids only inside withTaskRootIds, once each', () => {
    const fallback = new CountingGenerator();
    const generator = new TaskRootIdGenerator(fallback);
    expect(generator.generateTraceId()).toBe('f'.repeat(32));
    const ids = withTaskRootIds(TASK, () => ({
      span: generator.generateSpanId(),
      trace: generator.generateTraceId(),
      // A second span started inside the same call gets fresh ids.
      secondSpan: generator.generateSpanId(),
      secondTrace: generator.generateTraceId(),
    }));
    expect(ids).toEqual({
      span: rootSpanIdForTask(TASK),
      trace: traceIdForTask(TASK),
      secondSpan: 'e'.repeat(16),
      secondTrace: 'f'.repeat(32),
    });
    expect(generator.generateSpanId()).toBe('e'.repeat(16));
    expect(fallback).toMatchObject({ traceIds: 2, spanIds: 2 });
  });

  it('clears the slot when the span start throws', () => {
    const generator = new TaskRootIdGenerator(new CountingGenerator());
    expect(() =>
      withTaskRootIds(TASK, () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(generator.generateTraceId()).toBe('f'.repeat(32));
    expect(generator.generateSpanId()).toBe('e'.repeat(16));
  });
});
