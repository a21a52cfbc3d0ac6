/**
 * deploy/prometheus/alerts.yaml against real services: the file is a well-formed Prometheus rules file with
 * the seed's alerts and the ones its deployment-modes guide describes in prose, and every metric an expression
 * uses is served at /metrics by real `tasker orchestration` and `tasker worker` processes (node bin/tasker.js on
 * PostgreSQL), with the label values its matchers select. One process per deployment mode, so every `mode`
 * value a rule names is seen.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  ALERTS_FILE,
  PROMETHEUS_FILES,
  PROMETHEUS_SYNTHETIC_SERIES,
  TARGET_LABELS,
  alertRules,
  isObject,
  readYaml,
  scrapeJobs,
  text,
} from '../../helpers/deploy/deployFiles.ts';
import { exportedSeries, parseExposition, vectorSelectors } from '../../helpers/deploy/promql.ts';
import type { ScrapedMetrics, VectorSelector } from '../../helpers/deploy/promql.ts';
import {
  errorLogs,
  startOrchestrationProcess,
  startWorkerProcess,
  stopProcess,
} from '../../helpers/e2e/taskerProcess.ts';
import type { TaskerProcess } from '../../helpers/e2e/taskerProcess.ts';
import { createTestDatabase } from '../../helpers/testDatabase.ts';
import type { TestDatabase } from '../../helpers/testDatabase.ts';

/** The alerts of the seed's "Key Alerts", with its expressions. */
const SEED_ALERTS = {
  TaskerOrchestrationDown: 'up{job="tasker-orchestration"} == 0',
  TaskerHighErrorRate: 'rate(tasker_step_errors_total[5m]) > 10',
  TaskerCircuitBreakerOpen: 'tasker_circuit_breaker_state{state="open"} == 1',
  TaskerDatabasePoolExhausted: 'tasker_database_pool_active >= tasker_database_pool_max',
};

/** The conditions the seed states in prose, each with a metric its rule must use. */
const PROSE_ALERTS: Record<string, string> = {
  TaskerEventListenerDown: 'tasker_event_listener_active',
  TaskerEventListenerInactive: 'tasker_event_listener_active',
  TaskerNoEventsReceived: 'tasker_event_notifications_received_total',
  TaskerListenerReconnectingOften: 'tasker_listener_reconnections_total',
  TaskerPollingFallbackActive: 'tasker_polling_fallback_active',
  TaskerModeSwitchingTooOften: 'tasker_mode_switches_total',
  TaskerPollingStopped: 'tasker_polling_cycles_total',
  TaskerPollingErrorRate: 'tasker_polling_errors_total',
  TaskerPollingOverloaded: 'tasker_polling_duration_seconds_bucket',
};

const GROUP_KEYS = new Set(['name', 'interval', 'rules', 'limit', 'query_offset']);
const RULE_KEYS = new Set(['alert', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations']);
const DURATION = /^(\d+(ms|s|m|h|d|w|y))+$/;
const SEVERITIES = ['critical', 'warning', 'info'];
/** Scrape job → the role whose processes it scrapes (the ports are checked against prometheus.yml below). */
const JOB_ROLES: Record<string, 'orchestration' | 'worker'> = {
  'tasker-orchestration': 'orchestration',
  'tasker-worker': 'worker',
};

const O = 'job="tasker-orchestration"';
const W = 'job="tasker-worker"';
/** Input series and expected alerts for `promtool test rules` (15 s between samples). */
const PROMTOOL_TESTS = {
  rule_files: ['alerts.yaml'],
  evaluation_interval: '30s',
  tests: [
    {
      // A PollingOnly process whose polling stopped, one that keeps polling, and a Hybrid one (not watched).
      interval: '15s',
      input_series: [
        {
          series: `tasker_event_listener_active{${O},instance="stuck:8080",mode="polling_only"}`,
          values: '0x40',
        },
        {
          series: `tasker_polling_cycles_total{${O},instance="stuck:8080",mode="polling_only",queue="q"}`,
          values: '0+1x10 10x30',
        },
        {
          series: `tasker_event_listener_active{${O},instance="busy:8080",mode="polling_only"}`,
          values: '0x40',
        },
        {
          series: `tasker_polling_cycles_total{${O},instance="busy:8080",mode="polling_only",queue="q"}`,
          values: '0+1x40',
        },
        { series: `tasker_event_listener_active{${O},instance="hybrid:8080",mode="hybrid"}`, values: '1x40' },
      ],
      alert_rule_test: [
        {
          eval_time: '8m',
          alertname: 'TaskerPollingStopped',
          exp_alerts: [
            {
              exp_labels: {
                severity: 'critical',
                job: 'tasker-orchestration',
                instance: 'stuck:8080',
                mode: 'polling_only',
              },
            },
          ],
        },
        { eval_time: '8m', alertname: 'TaskerEventListenerDown', exp_alerts: [] },
      ],
    },
    {
      // Tasks finish; one event-driven orchestrator hears nothing, one hears them, a PollingOnly one never listens.
      interval: '15s',
      input_series: [
        ...['deaf', 'hearing', 'poller'].flatMap((instance) => [
          {
            series: `tasker_tasks_completed_total{${O},instance="${instance}:8080",namespace="math",template="t",outcome="complete"}`,
            values: '0+2x40',
          },
        ]),
        {
          series: `tasker_event_listener_active{${O},instance="deaf:8080",mode="event_driven"}`,
          values: '1x40',
        },
        { series: `tasker_event_notifications_received_total{${O},instance="deaf:8080"}`, values: '5x40' },
        {
          series: `tasker_event_listener_active{${O},instance="hearing:8080",mode="event_driven"}`,
          values: '1x40',
        },
        {
          series: `tasker_event_notifications_received_total{${O},instance="hearing:8080"}`,
          values: '0+3x40',
        },
        {
          series: `tasker_event_listener_active{${O},instance="poller:8080",mode="polling_only"}`,
          values: '0x40',
        },
        { series: `tasker_event_notifications_received_total{${O},instance="poller:8080"}`, values: '0x40' },
        {
          series: `tasker_polling_cycles_total{${O},instance="poller:8080",mode="polling_only",queue="q"}`,
          values: '0+1x40',
        },
      ],
      alert_rule_test: [
        {
          eval_time: '5m',
          alertname: 'TaskerNoEventsReceived',
          exp_alerts: [
            { exp_labels: { severity: 'warning', job: 'tasker-orchestration', instance: 'deaf:8080' } },
          ],
        },
        { eval_time: '5m', alertname: 'TaskerEventListenerInactive', exp_alerts: [] },
        { eval_time: '5m', alertname: 'TaskerPollingStopped', exp_alerts: [] },
      ],
    },
    {
      // Listeners down: a Hybrid worker (polling covers it), an EventDrivenOnly one (nothing covers it), a
      // PollingOnly one (never listens).
      interval: '15s',
      input_series: [
        { series: `tasker_event_listener_active{${W},instance="h:8081",mode="hybrid"}`, values: '1x4 0x20' },
        {
          series: `tasker_event_listener_active{${W},instance="e:8081",mode="event_driven"}`,
          values: '1x4 0x20',
        },
        {
          series: `tasker_event_listener_active{${W},instance="p:8081",mode="polling_only"}`,
          values: '0x24',
        },
        {
          series: `tasker_polling_cycles_total{${W},instance="p:8081",mode="polling_only",queue="q"}`,
          values: '0+1x24',
        },
      ],
      alert_rule_test: [
        {
          eval_time: '5m',
          alertname: 'TaskerEventListenerDown',
          exp_alerts: [
            { exp_labels: { severity: 'warning', job: 'tasker-worker', instance: 'h:8081', mode: 'hybrid' } },
          ],
        },
        {
          eval_time: '5m',
          alertname: 'TaskerEventListenerInactive',
          exp_alerts: [
            {
              exp_labels: {
                severity: 'critical',
                job: 'tasker-worker',
                instance: 'e:8081',
                mode: 'event_driven',
              },
            },
          ],
        },
      ],
    },
    {
      // Polling errors in 10% of cycles on one process, none on another; a listener switching 4 times a minute.
      interval: '15s',
      input_series: [
        {
          series: `tasker_polling_cycles_total{${W},instance="bad:8081",mode="hybrid",queue="q"}`,
          values: '0+10x60',
        },
        {
          series: `tasker_polling_errors_total{${W},instance="bad:8081",mode="hybrid",queue="q"}`,
          values: '0+1x60',
        },
        {
          series: `tasker_polling_cycles_total{${W},instance="good:8081",mode="hybrid",queue="q"}`,
          values: '0+10x60',
        },
        {
          series: `tasker_polling_errors_total{${W},instance="good:8081",mode="hybrid",queue="q"}`,
          values: '0x60',
        },
        {
          series: `tasker_mode_switches_total{${W},instance="bad:8081",mode="hybrid",to="polling_fallback"}`,
          values: '0+1x60',
        },
        {
          series: `tasker_mode_switches_total{${W},instance="good:8081",mode="hybrid",to="events"}`,
          values: '0x60',
        },
      ],
      alert_rule_test: [
        {
          eval_time: '14m',
          alertname: 'TaskerPollingErrorRate',
          exp_alerts: [{ exp_labels: { severity: 'warning', job: 'tasker-worker', instance: 'bad:8081' } }],
        },
        {
          eval_time: '14m',
          alertname: 'TaskerModeSwitchingTooOften',
          exp_alerts: [{ exp_labels: { severity: 'warning', job: 'tasker-worker', instance: 'bad:8081' } }],
        },
      ],
    },
  ],
};

function promtool(): string | undefined {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .map((folder) => join(folder, 'promtool'))
    .find((path) => existsSync(path));
}

describe('deploy/prometheus/alerts.yaml', () => {
  const rules = alertRules();

  it('is a Prometheus rules file: named groups of alerting rules with expr, for, severity and what to do', () => {
    const file = readYaml(ALERTS_FILE);
    const problems: string[] = [];
    if (!isObject(file) || !Array.isArray(file.groups) || file.groups.length === 0) {
      throw new Error('alerts.yaml: expected a top-level `groups` list');
    }
    const groupNames = new Set<string>();
    const alertNames = new Set<string>();
    for (const group of file.groups as unknown[]) {
      if (!isObject(group) || typeof group.name !== 'string' || group.name === '') {
        problems.push(`a group without a name: ${JSON.stringify(group)}`);
        continue;
      }
      if (groupNames.has(group.name)) problems.push(`group ${group.name} appears twice`);
      groupNames.add(group.name);
      for (const key of Object.keys(group))
        if (!GROUP_KEYS.has(key)) problems.push(`group ${group.name}: unknown key ${key}`);
      if (group.interval !== undefined && !DURATION.test(text(group.interval)))
        problems.push(`group ${group.name}: interval ${JSON.stringify(group.interval)} is not a duration`);
      if (!Array.isArray(group.rules) || group.rules.length === 0) {
        problems.push(`group ${group.name}: no rules`);
        continue;
      }
      for (const rule of group.rules as unknown[]) {
        const where = `${group.name}/${isObject(rule) ? String(rule.alert) : '?'}`;
        if (!isObject(rule)) {
          problems.push(`${where}: not a mapping`);
          continue;
        }
        for (const key of Object.keys(rule))
          if (!RULE_KEYS.has(key)) problems.push(`${where}: unknown key ${key}`);
        if (typeof rule.alert !== 'string' || !/^[A-Z][A-Za-z0-9]*$/.test(rule.alert))
          problems.push(`${where}: alert must be a CamelCase name`);
        else if (alertNames.has(rule.alert)) problems.push(`${where}: alert name used twice`);
        else alertNames.add(rule.alert);
        if (typeof rule.expr !== 'string' || rule.expr.trim() === '') problems.push(`${where}: no expr`);
        if (typeof rule.for !== 'string' || !DURATION.test(rule.for))
          problems.push(`${where}: for must be a duration, found ${JSON.stringify(rule.for)}`);
        const labels = isObject(rule.labels) ? rule.labels : {};
        if (!SEVERITIES.includes(String(labels.severity)))
          problems.push(`${where}: labels.severity must be one of ${SEVERITIES.join(', ')}`);
        const annotations = isObject(rule.annotations) ? rule.annotations : {};
        for (const key of ['summary', 'description']) {
          const text = annotations[key];
          if (typeof text !== 'string' || text.trim().length < 10)
            problems.push(`${where}: no ${key} annotation`);
        }
        for (const text of Object.values(annotations)) {
          for (const match of String(text).matchAll(/\{\{(.*?)\}\}/g)) {
            if (!/^\s*\$(labels\.[a-z_]+|value)(\s*\|\s*[a-zA-Z]+)?\s*$/.test(match[1] ?? ''))
              problems.push(`${where}: template {{${match[1]}}} uses something other than $labels or $value`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("has the seed's alerts with the seed's expressions, and a rule for each condition the seed gives in prose", () => {
    const byName = new Map(rules.map((rule) => [rule.alert, rule]));
    for (const [name, expr] of Object.entries(SEED_ALERTS)) expect(byName.get(name)?.expr, name).toBe(expr);
    for (const [name, metric] of Object.entries(PROSE_ALERTS)) {
      const rule = byName.get(name);
      expect(rule, `rule ${name}`).toBeDefined();
      expect(
        vectorSelectors(rule?.expr ?? '').map((s) => s.metric),
        name,
      ).toContain(metric);
    }
  });

  it('names in `job` matchers only scrape jobs that both Prometheus configurations define', () => {
    const configurations = PROMETHEUS_FILES.map((file) => ({ file, jobs: scrapeJobs(file) }));
    for (const { file, jobs } of configurations) {
      expect([...jobs.keys()].sort(), file).toEqual(Object.keys(JOB_ROLES).sort());
    }
    const compose = scrapeJobs(PROMETHEUS_FILES[0] ?? '');
    expect(compose.get('tasker-orchestration')).toEqual([8080]);
    expect(compose.get('tasker-worker')).toEqual([8081]);
    const used = rules.flatMap((rule) =>
      vectorSelectors(rule.expr).flatMap((s) => s.matchers.filter((m) => m.label === 'job')),
    );
    expect(used.length).toBeGreaterThan(0);
    for (const matcher of used) expect(Object.keys(JOB_ROLES)).toContain(matcher.value);
  });

  it.skipIf(promtool() === undefined)('passes `promtool check rules`', () => {
    const output = execFileSync(promtool() ?? 'promtool', ['check', 'rules', ALERTS_FILE], {
      encoding: 'utf8',
    });
    expect(output).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it.skipIf(promtool() === undefined)(
    'fires on the conditions it describes and stays quiet in the other modes (`promtool test rules`)',
    () => {
      const folder = mkdtempSync(join(tmpdir(), 'tasker-alerts-'));
      try {
        // The expressions under test exactly as shipped; annotations left out so that the expected alerts
        // need only their labels.
        const file = readYaml(ALERTS_FILE) as { groups: { rules: Record<string, unknown>[] }[] };
        for (const group of file.groups) for (const rule of group.rules) delete rule.annotations;
        writeFileSync(join(folder, 'alerts.yaml'), stringify(file));
        writeFileSync(join(folder, 'alerts.test.yaml'), stringify(PROMTOOL_TESTS));
        const output = execFileSync(promtool() ?? 'promtool', ['test', 'rules', 'alerts.test.yaml'], {
          cwd: folder,
          encoding: 'utf8',
        });
        expect(output).toContain('SUCCESS');
      } catch (error) {
        const failure = error as { stdout?: string; stderr?: string };
        throw new Error(`promtool test rules failed:\n${failure.stdout ?? ''}${failure.stderr ?? ''}`, {
          cause: error,
        });
      } finally {
        rmSync(folder, { recursive: true, force: true });
      }
    },
  );

  describe('against real orchestration and worker processes', () => {
    let testDb: TestDatabase;
    const processes: TaskerProcess[] = [];
    const scrapes: { role: 'orchestration' | 'worker'; label: string; metrics: ScrapedMetrics }[] = [];

    beforeAll(async () => {
      testDb = await createTestDatabase();
      const mode = (deploymentMode: string) => ({ TASKER_DEPLOYMENT_MODE: deploymentMode });
      const started = await Promise.allSettled([
        startOrchestrationProcess({ databaseUrl: testDb.url, env: mode('EventDrivenOnly') }),
        startOrchestrationProcess({ databaseUrl: testDb.url, env: mode('PollingOnly') }),
        startWorkerProcess({ databaseUrl: testDb.url, env: mode('Hybrid') }),
      ]);
      for (const result of started) if (result.status === 'fulfilled') processes.push(result.value);
      const failed = started.find((result) => result.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      for (const [i, proc] of processes.entries()) {
        const response = await fetch(`${proc.url}/metrics`);
        expect(response.status, `${proc.url}/metrics`).toBe(200);
        const label = `${proc.role} (${['EventDrivenOnly', 'PollingOnly', 'Hybrid'][i]})`;
        scrapes.push({ role: proc.role, label, metrics: parseExposition(await response.text()) });
      }
    }, 90_000);

    afterAll(async () => {
      const codes = await Promise.all(processes.map((proc) => stopProcess(proc)));
      await testDb?.drop();
      expect(codes).toEqual(processes.map(() => 0));
      for (const proc of processes) expect(errorLogs(proc), `${proc.role} ${proc.pid}`).toEqual([]);
    }, 60_000);

    /** The scrapes a selector can match: all, or those of the role its `job` matcher names. */
    const candidates = (selector: VectorSelector) => {
      const job = selector.matchers.find((m) => m.label === 'job' && m.op === '=');
      const role = job === undefined ? undefined : JOB_ROLES[job.value];
      return scrapes.filter((scrape) => role === undefined || scrape.role === role);
    };

    it('serves every metric that an alert expression uses', () => {
      const missing: string[] = [];
      for (const rule of rules) {
        const selectors = vectorSelectors(rule.expr);
        expect(selectors.length, `${rule.alert} uses no metric`).toBeGreaterThan(0);
        for (const selector of selectors) {
          if (PROMETHEUS_SYNTHETIC_SERIES.has(selector.metric)) continue;
          const sources = candidates(selector);
          if (sources.some((scrape) => exportedSeries(scrape.metrics).has(selector.metric))) continue;
          const histogram = sources.some((s) => s.metrics.families.get(selector.metric) === 'histogram');
          missing.push(
            `${selector.metric} (${rule.alert})` +
              (histogram ? ': a histogram, use its _bucket, _sum or _count series' : ''),
          );
        }
      }
      expect([...new Set(missing)], `not served by ${scrapes.map((s) => s.label).join(', ')}`).toEqual([]);
    });

    it('selects label values the metrics really carry', () => {
      const problems: string[] = [];
      for (const rule of rules) {
        for (const selector of vectorSelectors(rule.expr)) {
          const matchers = selector.matchers.filter((m) => !TARGET_LABELS.has(m.label));
          if (matchers.length === 0 || PROMETHEUS_SYNTHETIC_SERIES.has(selector.metric)) continue;
          const samples = candidates(selector).flatMap((s) => s.metrics.samples.get(selector.metric) ?? []);
          // A labelled counter has no sample before its first event: nothing to compare with yet.
          if (samples.length === 0) continue;
          for (const matcher of matchers) {
            if (!samples.some((labels) => matcher.label in labels))
              problems.push(`${rule.alert}: ${selector.metric} has no label ${matcher.label}`);
          }
          const equal = matchers.filter((m) => m.op === '=');
          const inequal = matchers.filter((m) => m.op === '!=');
          if (equal.length > 0 && !samples.some((labels) => equal.every((m) => labels[m.label] === m.value)))
            problems.push(
              `${rule.alert}: no ${selector.metric} series has ${equal.map((m) => `${m.label}="${m.value}"`).join(', ')}` +
                ` (seen: ${JSON.stringify(samples)})`,
            );
          for (const m of inequal) {
            // `mode!="x"` excludes something only when some series carries x.
            if (!samples.some((labels) => labels[m.label] === m.value))
              problems.push(
                `${rule.alert}: ${m.label}!="${m.value}" excludes nothing, no series has that value`,
              );
          }
        }
      }
      expect(problems).toEqual([]);
    });
  });
});
