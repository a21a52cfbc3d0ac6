/**
 * Reading the files under deploy/ for the tests that check them against what Tasker does: the Prometheus
 * rules and scrape configurations, the Docker Compose file, the Kubernetes manifests and the Dockerfile.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const DEPLOY = join(REPO_ROOT, 'deploy');
export const ALERTS_FILE = join(DEPLOY, 'prometheus', 'alerts.yaml');
export const PROMETHEUS_FILES = [
  join(DEPLOY, 'prometheus', 'prometheus.yml'),
  join(DEPLOY, 'prometheus', 'prometheus-kubernetes.yml'),
];

/** Series Prometheus makes itself for every target; no exporter serves them. */
export const PROMETHEUS_SYNTHETIC_SERIES = new Set([
  'up',
  'scrape_duration_seconds',
  'scrape_samples_scraped',
  'scrape_samples_post_metric_relabeling',
  'scrape_series_added',
]);

/** Labels Prometheus attaches to every series from the target, not from the exporter. */
export const TARGET_LABELS = new Set(['job', 'instance']);

export type Json = Record<string, unknown>;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A YAML scalar as text; '' for anything that is not a string or a number. */
export function text(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : '';
}

export function readYaml(path: string): unknown {
  return parse(readFileSync(path, 'utf8'), { merge: true }) as unknown;
}

/** Every document of a multi-document YAML file, each with the file it came from. */
function readYamlDocuments(path: string): { file: string; doc: Json }[] {
  const documents = parseAllDocuments(readFileSync(path, 'utf8'), { merge: true });
  if (!Array.isArray(documents)) throw new Error(`${path}: not a YAML stream`);
  return documents
    .map((document) => {
      if (document.errors.length > 0) throw new Error(`${path}: ${document.errors[0]?.message ?? ''}`);
      return document.toJS() as unknown;
    })
    .filter((doc): doc is Json => isObject(doc))
    .map((doc) => ({ file: path, doc }));
}

export interface AlertRule {
  group: string;
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** The alerting rules of alerts.yaml, taken as they are (the structural test says what is wrong with them). */
export function alertRules(): AlertRule[] {
  const file = readYaml(ALERTS_FILE);
  const groups = isObject(file) && Array.isArray(file.groups) ? (file.groups as unknown[]) : [];
  return groups.filter(isObject).flatMap((group) =>
    (Array.isArray(group.rules) ? (group.rules as unknown[]) : []).filter(isObject).map((rule) => ({
      group: String(group.name),
      alert: String(rule.alert),
      expr: String(rule.expr),
      for: String(rule.for),
      labels: (isObject(rule.labels) ? rule.labels : {}) as Record<string, string>,
      annotations: (isObject(rule.annotations) ? rule.annotations : {}) as Record<string, string>,
    })),
  );
}

/** Scrape jobs of a Prometheus configuration file: name → the ports of its targets, where it names them. */
export function scrapeJobs(path: string): Map<string, number[]> {
  const config = readYaml(path);
  const jobs = new Map<string, number[]>();
  const scrapeConfigs = isObject(config) && Array.isArray(config.scrape_configs) ? config.scrape_configs : [];
  for (const job of scrapeConfigs as unknown[]) {
    if (!isObject(job)) continue;
    const ports: number[] = [];
    for (const sd of Array.isArray(job.dns_sd_configs) ? (job.dns_sd_configs as unknown[]) : []) {
      if (isObject(sd) && typeof sd.port === 'number') ports.push(sd.port);
    }
    for (const sc of Array.isArray(job.static_configs) ? (job.static_configs as unknown[]) : []) {
      const targets = isObject(sc) && Array.isArray(sc.targets) ? (sc.targets as unknown[]) : [];
      for (const target of targets) ports.push(Number(String(target).split(':').pop()));
    }
    jobs.set(String(job.job_name), ports);
  }
  return jobs;
}

/** The Kubernetes manifests: every document of every deploy/kubernetes/*.yaml but kustomization.yaml. */
export function kubernetesDocuments(): { file: string; doc: Json }[] {
  const folder = join(DEPLOY, 'kubernetes');
  return readdirSync(folder)
    .filter((name) => (name.endsWith('.yaml') || name.endsWith('.yml')) && name !== 'kustomization.yaml')
    .sort()
    .flatMap((name) => readYamlDocuments(join(folder, name)));
}

export interface DockerStage {
  name: string;
  from: string;
  env: Record<string, string>;
  expose: number[];
  cmd: string[] | undefined;
  entrypoint: string[] | undefined;
  healthcheck: string | undefined;
  copies: string[];
  runs: string[];
}

/**
 * The stages of deploy/Dockerfile with what each inherits from the stage it is built FROM (ENV, ENTRYPOINT,
 * CMD, EXPOSE). Continuation lines are joined; comments dropped.
 */
export function dockerStages(): DockerStage[] {
  const text = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages: DockerStage[] = [];
  let current: DockerStage | undefined;
  for (const line of lines) {
    const [instruction = '', ...rest] = line.split(/\s+/);
    const argument = rest.join(' ');
    const upper = instruction.toUpperCase();
    if (upper === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(argument);
      const from = match?.[1] ?? argument;
      const parent = stages.find((stage) => stage.name === from);
      current = {
        name: match?.[2] ?? `stage${stages.length}`,
        from,
        env: { ...parent?.env },
        expose: [...(parent?.expose ?? [])],
        cmd: parent?.cmd,
        entrypoint: parent?.entrypoint,
        healthcheck: parent?.healthcheck,
        copies: [],
        runs: [],
      };
      stages.push(current);
      continue;
    }
    if (current === undefined) continue;
    if (upper === 'ENV') {
      for (const match of argument.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)) {
        if (match[1] !== undefined) current.env[match[1]] = (match[2] ?? '').replace(/^"|"$/g, '');
      }
    } else if (upper === 'EXPOSE') {
      current.expose.push(...argument.split(/\s+/).map((port) => Number(port.split('/')[0])));
    } else if (upper === 'CMD') {
      current.cmd = JSON.parse(argument) as string[];
    } else if (upper === 'ENTRYPOINT') {
      current.entrypoint = JSON.parse(argument) as string[];
    } else if (upper === 'HEALTHCHECK') {
      current.healthcheck = argument;
    } else if (upper === 'COPY' || upper === 'ADD') {
      if (upper === 'ADD') current.runs.push(`ADD ${argument}`);
      const parts = argument.split(/\s+/).filter((part) => !part.startsWith('--'));
      current.copies.push(...parts.slice(0, -1));
    } else if (upper === 'RUN') {
      current.runs.push(argument);
    }
  }
  return stages;
}
