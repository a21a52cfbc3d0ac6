/**
 * The PromQL reading that the alert-rule test relies on: if it missed a selector, a rule using an unexported
 * metric would pass unnoticed; if it took a function or label name for a metric, a correct rule would fail.
 */
import { describe, expect, it } from 'vitest';
import { exportedSeries, parseExposition, vectorSelectors } from '../../helpers/deploy/promql.ts';

const names = (expr: string) => vectorSelectors(expr).map((s) => s.metric);

describe('vectorSelectors', () => {
  it('finds the metrics of plain, binary and set expressions with their label matchers', () => {
    expect(vectorSelectors('up{job="tasker-orchestration"} == 0')).toEqual([
      { metric: 'up', matchers: [{ label: 'job', op: '=', value: 'tasker-orchestration' }] },
    ]);
    expect(names('tasker_database_pool_active >= tasker_database_pool_max')).toEqual([
      'tasker_database_pool_active',
      'tasker_database_pool_max',
    ]);
    expect(
      vectorSelectors(`a{mode!="polling_only", state=~"open|half_open", x!~'y'} unless on (job) b`),
    ).toEqual([
      {
        metric: 'a',
        matchers: [
          { label: 'mode', op: '!=', value: 'polling_only' },
          { label: 'state', op: '=~', value: 'open|half_open' },
          { label: 'x', op: '!~', value: 'y' },
        ],
      },
      { metric: 'b', matchers: [] },
    ]);
  });

  it('skips functions, aggregations with their modifiers, label lists, durations, numbers and keywords', () => {
    expect(
      names(
        'histogram_quantile(0.9, sum by (job, instance, le) (rate(x_seconds_bucket[5m]))) > 10 and on (job, instance) y offset 1h',
      ),
    ).toEqual(['x_seconds_bucket', 'y']);
    expect(
      names('sum(rate(errors_total[5m])) by (job) / ignoring (queue) group_left (mode) cycles_total'),
    ).toEqual(['errors_total', 'cycles_total']);
    expect(names('count without (instance) (z) > bool 1e3')).toEqual(['z']);
    expect(names('increase(c_total[1h30m:1m]) > 20 or vector(0)')).toEqual(['c_total']);
  });

  it('refuses what it cannot read rather than reporting no metric', () => {
    expect(() => vectorSelectors('{__name__="up"}')).toThrow(/without a metric name/);
    expect(() => vectorSelectors('rate(x[5m]')).not.toThrow();
    expect(() => vectorSelectors('x{job="a"')).toThrow();
    expect(() => vectorSelectors('x[5m')).toThrow(/unbalanced/);
  });
});

describe('parseExposition and exportedSeries', () => {
  it('reads families and samples, and expands histograms into the series Prometheus stores', () => {
    const scraped = parseExposition(
      [
        '# HELP h_seconds A histogram.',
        '# TYPE h_seconds histogram',
        '# TYPE c_total counter',
        '# TYPE g gauge',
        'g{mode="hybrid",name="a\\"b"} 1',
        'g{mode="polling_only"} 0',
        '',
      ].join('\n'),
    );
    expect(scraped.families.get('h_seconds')).toBe('histogram');
    expect(scraped.samples.get('g')).toEqual([{ mode: 'hybrid', name: 'a\\"b' }, { mode: 'polling_only' }]);
    expect([...exportedSeries(scraped)].sort()).toEqual([
      'c_total',
      'g',
      'h_seconds_bucket',
      'h_seconds_count',
      'h_seconds_sum',
    ]);
  });
});
