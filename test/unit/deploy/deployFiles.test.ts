/**
 * The deployment files of deploy/ (Dockerfile, docker-compose.yml, kubernetes/*.yaml, prometheus/*.yml)
 * against what Tasker reads and serves. Every environment variable a container gets must change what
 * loadConfig loads (or be one of its `${VAR}` references), and the container's whole environment must load
 * without problems; ports match the configuration it loads; deployment modes are valid; and every probe and
 * healthcheck answers: the HTTP paths with 200 and the gRPC probes with SERVING, from real orchestration and
 * worker services started here on an embedded database. Docker and a Kubernetes cluster are not needed.
 */
import { LIVENESS_HEALTH } from '../../../src/api/grpc/standardHealth.ts';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import handlers from '../../../examples/handlers/index.ts';
import { TASKER_HEALTH_SERVICE } from '../../../src/api/grpc/protoLoader.ts';
import { loadConfig } from '../../../src/config/loadConfig.ts';
import type { LoadedConfig } from '../../../src/config/loadConfig.ts';
import { DEPLOYMENT_MODES } from '../../../src/config/schema.ts';
import type { Database } from '../../../src/db/database.ts';
import { ConfigError } from '../../../src/domain/errors.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import { startOrchestrationService } from '../../../src/services/orchestrationService.ts';
import type { OrchestrationService } from '../../../src/services/orchestrationService.ts';
import { startWorkerService } from '../../../src/services/workerService.ts';
import type { WorkerService } from '../../../src/services/workerService.ts';
import {
  DEPLOY,
  REPO_ROOT,
  dockerStages,
  isObject,
  kubernetesDocuments,
  readYaml,
  scrapeJobs,
  text,
} from '../../helpers/deploy/deployFiles.ts';
import type { DockerStage, Json } from '../../helpers/deploy/deployFiles.ts';
import { exampleTemplates } from '../../helpers/engine/fixtures.ts';
import { GrpcTestScope, unary } from '../../helpers/grpcClients.ts';
import { createPgliteDatabase } from '../../helpers/testDatabase.ts';

type Role = 'orchestration' | 'worker' | 'migrate';

/** One Tasker container as a deployment file defines it. */
interface Container {
  where: string;
  role: Role;
  /** Every variable the process sees: the image's ENV, then the file's (ConfigMap, env, environment). */
  env: Record<string, string>;
  /** Container ports it declares or publishes (the container side). */
  ports: number[];
  httpProbes: { kind: string; path: string; port: number }[];
  grpcProbes: { kind: string; port: number; service: string }[];
  /** prometheus.io/port and prometheus.io/path annotations. */
  metrics: { port: number; path: string } | undefined;
  /** ConfigMap files mounted into the image's config folder. */
  configFiles: { mountPath: string; content: string }[];
  args: string[] | undefined;
}

/** Stands in for a Secret's value, which the manifests only reference. */
const SECRET_DATABASE_URL = 'postgresql://tasker:secret@db.example:5432/tasker_production';
/** The image's WORKDIR: paths under it are files of this repository. */
const IMAGE_ROOT = '/app';
const MODE_VARIABLES = ['TASKER_DEPLOYMENT_MODE', 'DEPLOYMENT_MODE'];

const asArray = (value: unknown): unknown[] => (Array.isArray(value) ? (value as unknown[]) : []);
const asObject = (value: unknown): Json => (isObject(value) ? value : {});
const portOf = (bindAddress: string): number => Number(bindAddress.slice(bindAddress.lastIndexOf(':') + 1));

/** Compose's `${VAR:-default}` with nothing set: the default; a variable without one would be empty. */
function composeInterpolate(value: string, where: string): string {
  return value.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g,
    (_reference, name: string, fallback: string | undefined) => {
      if (fallback === undefined) throw new Error(`${where}: \${${name}} has no default`);
      return fallback;
    },
  );
}

function stageFor(stages: DockerStage[], name: string): DockerStage {
  const stage = stages.find((s) => s.name === name);
  if (stage === undefined) throw new Error(`deploy/Dockerfile has no stage ${name}`);
  return stage;
}

/** `tasker-orchestration:0.1.0` → the Dockerfile stage that builds it. */
function imageStage(image: string): 'orchestration' | 'worker' {
  const name = image.split(':')[0] ?? '';
  if (name === 'tasker-orchestration') return 'orchestration';
  if (name === 'tasker-worker') return 'worker';
  throw new Error(`image ${image} is not one of deploy/Dockerfile's (tasker-orchestration, tasker-worker)`);
}

function roleOf(stage: DockerStage, args: string[] | undefined): Role {
  const command = args ?? stage.cmd ?? [];
  const role = command[0];
  if (role === 'orchestration' || role === 'worker' || role === 'migrate') return role;
  throw new Error(`stage ${stage.name} runs ${JSON.stringify(command)}, not a tasker service command`);
}

function composeContainers(stages: DockerStage[]): { containers: Container[]; compose: Json } {
  const compose = asObject(readYaml(join(DEPLOY, 'docker-compose.yml')));
  const containers: Container[] = [];
  for (const [name, service] of Object.entries(asObject(compose.services))) {
    if (!isObject(service) || !text(service.image).startsWith('tasker-')) continue;
    const where = `docker-compose.yml services.${name}`;
    const stageName = imageStage(text(service.image));
    const build = asObject(service.build);
    expect(build.target, `${where}: build target`).toBe(stageName);
    const stage = stageFor(stages, stageName);
    const args = Array.isArray(service.command) ? service.command.map(String) : undefined;
    const declared: Record<string, string> = {};
    const environment = service.environment;
    if (Array.isArray(environment)) {
      for (const entry of environment as string[]) {
        const [key = '', ...value] = entry.split('=');
        declared[key] = value.join('=');
      }
    } else {
      for (const [key, value] of Object.entries(asObject(environment))) declared[key] = String(value);
    }
    for (const key of Object.keys(declared)) declared[key] = composeInterpolate(declared[key] ?? '', where);
    const ports = asArray(service.ports).map((entry) =>
      Number(String(entry).split(':').pop()?.split('/')[0]),
    );
    const healthcheck = asObject(service.healthcheck);
    const httpProbes: Container['httpProbes'] = [];
    if (healthcheck.disable !== true) {
      const test = asArray(healthcheck.test).map(String).join(' ');
      const url = /https?:\/\/[^:/]+:(\d+)(\/[^'"\s)]*)/.exec(test);
      if (url === null) throw new Error(`${where}: healthcheck without an http URL: ${test}`);
      httpProbes.push({ kind: 'healthcheck', port: Number(url[1]), path: url[2] ?? '' });
    }
    containers.push({
      where,
      role: roleOf(stage, args),
      env: { ...stage.env, ...declared },
      ports,
      httpProbes,
      grpcProbes: [],
      metrics: undefined,
      configFiles: [],
      args,
    });
  }
  return { containers, compose };
}

function kubernetesContainers(stages: DockerStage[], docs: { file: string; doc: Json }[]): Container[] {
  const configMaps = new Map(
    docs
      .filter(({ doc }) => doc.kind === 'ConfigMap')
      .map(({ doc }) => [String(asObject(doc.metadata).name), asObject(doc.data)]),
  );
  const containers: Container[] = [];
  for (const { file, doc } of docs) {
    if (doc.kind !== 'Deployment' && doc.kind !== 'Job') continue;
    const template = asObject(asObject(doc.spec).template);
    const annotations = asObject(asObject(template.metadata).annotations);
    const pod = asObject(template.spec);
    const volumes = new Map(asArray(pod.volumes).map((v) => [String(asObject(v).name), asObject(v)]));
    for (const item of asArray(pod.containers)) {
      const container = asObject(item);
      const where = `kubernetes/${file.split('/').pop()} ${String(doc.kind)} ${String(asObject(doc.metadata).name)}`;
      const stage = stageFor(stages, imageStage(String(container.image)));
      const args = Array.isArray(container.args) ? container.args.map(String) : undefined;
      const env: Record<string, string> = { ...stage.env };
      for (const source of asArray(container.envFrom)) {
        const name = String(asObject(asObject(source).configMapRef).name);
        const data = configMaps.get(name);
        if (data === undefined)
          throw new Error(`${where}: envFrom names ConfigMap ${name}, not in the manifests`);
        for (const [key, value] of Object.entries(data)) env[key] = String(value);
      }
      for (const entry of asArray(container.env)) {
        const variable = asObject(entry);
        const secret = asObject(asObject(variable.valueFrom).secretKeyRef);
        if (typeof variable.value === 'string') env[String(variable.name)] = variable.value;
        else if (secret.name === 'tasker-secrets' && secret.key === 'database-url')
          env[String(variable.name)] = SECRET_DATABASE_URL;
        else throw new Error(`${where}: ${String(variable.name)} comes from an unexpected source`);
      }
      const namedPorts = new Map(
        asArray(container.ports).map((p) => [String(asObject(p).name), Number(asObject(p).containerPort)]),
      );
      const resolvePort = (port: unknown): number =>
        typeof port === 'number' ? port : (namedPorts.get(String(port)) ?? Number.NaN);
      const httpProbes: Container['httpProbes'] = [];
      const grpcProbes: Container['grpcProbes'] = [];
      for (const kind of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        const probe = asObject(container[kind]);
        if (isObject(probe.httpGet))
          httpProbes.push({ kind, path: String(probe.httpGet.path), port: resolvePort(probe.httpGet.port) });
        if (isObject(probe.grpc))
          grpcProbes.push({ kind, port: resolvePort(probe.grpc.port), service: String(probe.grpc.service) });
      }
      const configFiles = asArray(container.volumeMounts).map((item) => {
        const mount = asObject(item);
        const volume = volumes.get(String(mount.name));
        const mapName = String(asObject(volume?.configMap).name);
        const content = configMaps.get(mapName)?.[String(mount.subPath)];
        if (typeof content !== 'string')
          throw new Error(
            `${where}: mount ${String(mount.mountPath)} is not a key of a ConfigMap in the manifests`,
          );
        return { mountPath: String(mount.mountPath), content };
      });
      containers.push({
        where,
        role: roleOf(stage, args),
        env,
        ports: asArray(container.ports).map((p) => Number(asObject(p).containerPort)),
        httpProbes,
        grpcProbes,
        metrics:
          annotations['prometheus.io/scrape'] === 'true'
            ? {
                port: Number(annotations['prometheus.io/port']),
                path: String(annotations['prometheus.io/path']),
              }
            : undefined,
        configFiles,
        args,
      });
    }
  }
  return containers;
}

/** Loads the configuration a container would: its environment, over the config folder with its mounted files. */
function loadContainerConfig(container: Container): LoadedConfig {
  let cwd = REPO_ROOT;
  let scratch: string | undefined;
  if (container.configFiles.length > 0) {
    scratch = mkdtempSync(join(tmpdir(), 'tasker-deploy-'));
    cpSync(join(REPO_ROOT, 'config'), join(scratch, 'config'), { recursive: true });
    for (const file of container.configFiles) {
      expect(
        file.mountPath.startsWith(`${IMAGE_ROOT}/config/tasker/`),
        `${container.where}: ${file.mountPath}`,
      ).toBe(true);
      const target = join(scratch, file.mountPath.slice(IMAGE_ROOT.length + 1));
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, file.content);
    }
    cwd = scratch;
  }
  try {
    return loadConfig({ env: container.env, cwd });
  } catch (error) {
    const problems = error instanceof ConfigError ? JSON.stringify(error.problems) : String(error);
    throw new Error(`${container.where}: the configuration does not load: ${problems}`, { cause: error });
  } finally {
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  }
}

/** Why Tasker reads `name`, or undefined when nothing it loaded came from that variable. */
function readReason(loaded: LoadedConfig, container: Container, name: string): string | undefined {
  if ([...loaded.provenance.values()].includes(`environment variable ${name}`)) return 'environment override';
  if (name === 'TASKER_ENV' && loaded.environment === container.env[name]?.trim())
    return 'picks the environment';
  const reference = new RegExp(`\\$\\{${name}(:?-[^}]*)?\\}`);
  for (const file of loaded.files) {
    const inRepository = join(REPO_ROOT, 'config', 'tasker', file);
    const mounted = container.configFiles.find((f) => f.mountPath === `${IMAGE_ROOT}/config/tasker/${file}`);
    const text = mounted?.content ?? (existsSync(inRepository) ? readFileSync(inRepository, 'utf8') : '');
    if (reference.test(text)) return `referenced in ${file}`;
  }
  return undefined;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('deployment files', () => {
  const stages = dockerStages();
  const { containers: composeTasker, compose } = composeContainers(stages);
  const kubernetesDocs = kubernetesDocuments();
  const kubernetesTasker = kubernetesContainers(stages, kubernetesDocs);
  const all = [...composeTasker, ...kubernetesTasker];
  const services = (role: Role) => all.filter((c) => c.role === role);

  it('finds the Tasker containers of both patterns', () => {
    expect(composeTasker.map((c) => c.role).sort()).toEqual([
      'migrate',
      'orchestration',
      'orchestration',
      'worker',
      'worker',
    ]);
    expect(kubernetesTasker.map((c) => c.role).sort()).toEqual([
      'migrate',
      'orchestration',
      'orchestration',
      'worker',
      'worker',
    ]);
  });

  describe('deploy/Dockerfile', () => {
    it('builds node:20-slim images that run `node bin/tasker.js orchestration|worker`', () => {
      for (const role of ['orchestration', 'worker'] as const) {
        const stage = stageFor(stages, role);
        expect(stage.entrypoint, role).toEqual(['node', 'bin/tasker.js']);
        expect(stage.cmd, role).toEqual([role]);
      }
      expect(stages[0]?.from).toBe('node:20-slim');
      expect(stages.at(-1)?.name, 'the default target').toBe('orchestration');
    });

    it('installs the locked packages without running install scripts or downloading anything else', () => {
      const runs = stages.flatMap((stage) => stage.runs);
      expect(runs.length).toBeGreaterThan(0);
      for (const run of runs) {
        expect(run, run).toMatch(/^npm ci .*--ignore-scripts/);
        expect(run, run).not.toMatch(/curl|wget|https?:\/\/|^ADD /);
      }
      for (const source of stages.flatMap((stage) => stage.copies))
        expect(existsSync(join(REPO_ROOT, source)), `COPY ${source}`).toBe(true);
    });

    it('points the worker image at handlers and templates that it contains', () => {
      const env = stageFor(stages, 'worker').env;
      for (const name of ['TASKER_HANDLERS_MODULE', 'TASKER_TEMPLATE_PATH']) {
        const path = env[name] ?? '';
        expect(path.startsWith(`${IMAGE_ROOT}/`), name).toBe(true);
        const source = path.slice(IMAGE_ROOT.length + 1).split('/')[0] ?? '';
        expect(stageFor(stages, 'base').copies.map((c) => c.replace(/^\.\//, ''))).toContain(source);
        expect(existsSync(join(REPO_ROOT, path.slice(IMAGE_ROOT.length + 1))), path).toBe(true);
      }
    });
  });

  describe.each(all.map((container) => [container.where, container] as const))('%s', (_where, container) => {
    let loaded: LoadedConfig;
    beforeAll(() => {
      loaded = loadContainerConfig(container);
    });

    it('sets only variables Tasker reads, and they load without a problem', () => {
      const unread = Object.entries(container.env)
        .filter(([name]) => readReason(loaded, container, name) === undefined)
        .map(([name]) => name);
      expect(unread, 'variables Tasker does not read').toEqual([]);
      expect(container.env.DATABASE_URL, 'DATABASE_URL').toBeDefined();
      expect(loaded.environment).toBe('production');
    });

    it('runs in a deployment mode Tasker knows, the one it loads', () => {
      const variables = MODE_VARIABLES.filter((name) => container.env[name] !== undefined);
      if (container.role === 'migrate') {
        expect(variables).toEqual([]);
        expect(container.args).toEqual(['migrate']);
        return;
      }
      expect(variables.length, 'a deployment mode variable').toBe(1);
      const mode = container.env[variables[0] ?? ''];
      expect(DEPLOYMENT_MODES).toContain(mode);
      expect(loaded.config[container.role].deployment_mode).toBe(mode);
    });

    if (container.role !== 'migrate')
      it('uses the ports of the configuration it loads', () => {
        if (container.role === 'migrate') return;
        const web = portOf(loaded.config[container.role].web.bind_address);
        const grpc = portOf(loaded.config[container.role].grpc.bind_address);
        expect([web, grpc]).toEqual(container.role === 'orchestration' ? [8080, 9190] : [8081, 9191]);
        for (const port of container.ports) expect([web, grpc], `port ${port}`).toContain(port);
        for (const probe of container.httpProbes) expect(probe.port, `${probe.kind} ${probe.path}`).toBe(web);
        for (const probe of container.grpcProbes) {
          expect(probe.port, probe.kind).toBe(grpc);
          // Liveness asks for the name that stays SERVING through a database outage; the others for readiness.
          expect(probe.service, probe.kind).toBe(
            probe.kind === 'livenessProbe' ? LIVENESS_HEALTH : TASKER_HEALTH_SERVICE,
          );
        }
        if (container.metrics !== undefined) expect(container.metrics.port).toBe(web);
        expect([...stageFor(stages, container.role).expose].sort()).toEqual([web, grpc].sort());
        const probes = container.httpProbes.length + container.grpcProbes.length;
        expect(probes, 'health checks').toBeGreaterThan(0);
      });
  });

  describe('probes against real services', () => {
    let db: Database;
    let orchestration: OrchestrationService;
    let worker: WorkerService;
    const grpcAddress: Record<string, string> = {};
    const grpc = new GrpcTestScope();

    beforeAll(async () => {
      db = await createPgliteDatabase();
      const loaded = loadConfig({
        env: { TASKER_ENV: 'test', DATABASE_URL: 'pglite:memory' },
        cwd: REPO_ROOT,
      });
      grpcAddress.orchestration = `127.0.0.1:${await freePort()}`;
      grpcAddress.worker = `127.0.0.1:${await freePort()}`;
      orchestration = await startOrchestrationService({
        loaded,
        logger: silentLogger,
        db,
        bindAddress: '127.0.0.1:0',
        grpcBindAddress: grpcAddress.orchestration,
      });
      worker = await startWorkerService({
        loaded,
        logger: silentLogger,
        db,
        handlers,
        templates: exampleTemplates(),
        bindAddress: '127.0.0.1:0',
        grpcBindAddress: grpcAddress.worker,
      });
    }, 60_000);

    afterAll(async () => {
      await grpc.close();
      await worker?.stop();
      await orchestration?.stop();
      await db?.close();
    });

    const urlOf = (role: 'orchestration' | 'worker') =>
      (role === 'orchestration' ? orchestration : worker).url;

    it('answers every HTTP probe, healthcheck and metrics path of the files with 200', async () => {
      const checks = new Set<string>();
      for (const container of all) {
        if (container.role === 'migrate') continue;
        for (const probe of container.httpProbes) checks.add(`${container.role} ${probe.path}`);
        if (container.metrics !== undefined) checks.add(`${container.role} ${container.metrics.path}`);
      }
      for (const stage of ['orchestration', 'worker'] as const) {
        const path = /https?:\/\/[^/]+(\/[^'"\s)]*)/.exec(stageFor(stages, stage).healthcheck ?? '')?.[1];
        checks.add(`${stage} ${path ?? '(no HEALTHCHECK)'}`);
      }
      expect([...checks].sort()).toEqual(
        expect.arrayContaining([
          'orchestration /health',
          'orchestration /health/live',
          'worker /health/ready',
        ]),
      );
      const answers: string[] = [];
      for (const check of [...checks].sort()) {
        const [role, path] = check.split(' ') as ['orchestration' | 'worker', string];
        const response = await fetch(`${urlOf(role)}${path}`);
        answers.push(`${check} ${response.status}`);
      }
      expect(answers).toEqual([...checks].sort().map((check) => `${check} 200`));
    });

    it('answers the gRPC probes (grpc.health.v1 Check for the probed service names) with SERVING', async () => {
      const roles = new Set(all.filter((c) => c.grpcProbes.length > 0).map((c) => c.role));
      expect([...roles].sort()).toEqual(['orchestration', 'worker']);
      for (const role of roles) {
        const client = grpc.client(grpcAddress[role] ?? '', 'grpc.health.v1.Health');
        const services = new Set(
          all.filter((c) => c.role === role).flatMap((c) => c.grpcProbes.map((p) => p.service)),
        );
        for (const service of services) {
          expect(await unary(client, 'Check', { service }), `${role} ${service}`).toEqual({
            status: 'SERVING',
          });
        }
      }
    });
  });

  describe('docker-compose.yml', () => {
    const servicesOf = asObject(compose.services);
    const orchestrators = composeTasker.filter((c) => c.role === 'orchestration');

    it('runs orchestrators in more than one deployment mode, and workers, on one database', () => {
      const modes = new Set(orchestrators.map((c) => c.env.TASKER_DEPLOYMENT_MODE));
      expect(modes.size).toBeGreaterThan(1);
      const urls = new Set(composeTasker.map((c) => c.env.DATABASE_URL));
      expect(urls.size).toBe(1);
      const url = new URL([...urls][0] ?? '');
      const postgres = asObject(servicesOf[url.hostname]);
      const postgresEnv = asObject(postgres.environment);
      expect(url.pathname).toBe(`/${String(postgresEnv.POSTGRES_DB)}`);
      expect(url.username).toBe(postgresEnv.POSTGRES_USER);
      expect(decodeURIComponent(url.password)).toBe(
        composeInterpolate(String(postgresEnv.POSTGRES_PASSWORD), 'postgres'),
      );
    });

    it('starts services only after the migration has completed, and the migration after PostgreSQL is healthy', () => {
      for (const [name, service] of Object.entries(servicesOf)) {
        const dependsOn = asObject(asObject(service).depends_on);
        if (name === 'migrate') expect(asObject(dependsOn.postgres).condition).toBe('service_healthy');
        else if (text(asObject(service).image).startsWith('tasker-'))
          expect(asObject(dependsOn.migrate).condition, name).toBe('service_completed_successfully');
      }
    });

    it('gives Prometheus one DNS name per role, as deploy/prometheus/prometheus.yml scrapes them', () => {
      const prometheus = asObject(readYaml(join(DEPLOY, 'prometheus', 'prometheus.yml')));
      const dnsNames = new Map<string, string[]>();
      for (const job of asArray(prometheus.scrape_configs).map(asObject)) {
        dnsNames.set(
          String(job.job_name),
          asArray(job.dns_sd_configs).flatMap((sd) => asArray(asObject(sd).names).map(String)),
        );
      }
      for (const [name, service] of Object.entries(servicesOf)) {
        const image = text(asObject(service).image);
        if (!image.startsWith('tasker-') || name === 'migrate') continue;
        const aliases = asArray(asObject(asObject(asObject(service).networks).default).aliases);
        const job = imageStage(image) === 'orchestration' ? 'tasker-orchestration' : 'tasker-worker';
        expect(dnsNames.get(job), name).toEqual(aliases);
      }
      expect(scrapeJobs(join(DEPLOY, 'prometheus', 'prometheus.yml'))).toEqual(
        new Map([
          ['tasker-orchestration', [8080]],
          ['tasker-worker', [8081]],
        ]),
      );
    });
  });

  describe('kubernetes/', () => {
    const byKind = (kind: string) =>
      kubernetesDocs.filter(({ doc }) => doc.kind === kind).map(({ doc }) => doc);
    const deployments = byKind('Deployment');
    const podLabels = (deployment: Json) =>
      asObject(asObject(asObject(asObject(deployment.spec).template).metadata).labels);
    const selects = (selector: Json, labels: Json) =>
      Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
    const nameOf = (doc: Json) => String(asObject(doc.metadata).name);

    it('puts every object in namespace tasker, and every Deployment selects its own pods', () => {
      for (const { doc } of kubernetesDocs) {
        if (doc.kind === 'Namespace') expect(nameOf(doc)).toBe('tasker');
        else expect(asObject(doc.metadata).namespace, `${String(doc.kind)} ${nameOf(doc)}`).toBe('tasker');
      }
      for (const deployment of deployments) {
        const selector = asObject(asObject(asObject(deployment.spec).selector).matchLabels);
        expect(selects(selector, podLabels(deployment)), nameOf(deployment)).toBe(true);
        const others = deployments.filter((d) => d !== deployment && selects(selector, podLabels(d)));
        expect(others.map(nameOf), `${nameOf(deployment)} selects other deployments' pods`).toEqual([]);
      }
    });

    it('runs orchestration in more than one mode behind one Service, with ports the pods have', () => {
      const modes = new Set(
        kubernetesTasker.filter((c) => c.role === 'orchestration').map((c) => c.env.DEPLOYMENT_MODE),
      );
      expect(modes.size).toBeGreaterThan(1);
      for (const service of byKind('Service')) {
        const spec = asObject(service.spec);
        const selected = deployments.filter((d) => selects(asObject(spec.selector), podLabels(d)));
        expect(selected.length, nameOf(service)).toBeGreaterThan(0);
        if (nameOf(service) === 'tasker-orchestration') expect(selected.length).toBe(2);
        for (const port of asArray(spec.ports).map(asObject)) {
          for (const deployment of selected) {
            const containers = asArray(
              asObject(asObject(asObject(deployment.spec).template).spec).containers,
            );
            const names = containers.flatMap((c) => asArray(asObject(c).ports).map((p) => asObject(p).name));
            expect(names, `${nameOf(service)} → ${nameOf(deployment)}`).toContain(port.targetPort);
          }
        }
      }
    });

    it('has a PodDisruptionBudget for each Deployment and an autoscaler aimed at a Deployment', () => {
      const budgets = byKind('PodDisruptionBudget');
      for (const deployment of deployments) {
        const covering = budgets.filter((b) =>
          selects(asObject(asObject(asObject(b.spec).selector).matchLabels), podLabels(deployment)),
        );
        expect(covering.length, nameOf(deployment)).toBe(1);
      }
      for (const hpa of byKind('HorizontalPodAutoscaler')) {
        const target = asObject(asObject(hpa.spec).scaleTargetRef);
        expect(deployments.map(nameOf)).toContain(target.name);
      }
    });

    it('runs the migration as a Job and lists every manifest but the optional ServiceMonitor in kustomization.yaml', () => {
      expect(byKind('Job').map(nameOf)).toEqual(['tasker-migrate']);
      const kustomization = asObject(readYaml(join(DEPLOY, 'kubernetes', 'kustomization.yaml')));
      const files = new Set(kubernetesDocs.map(({ file }) => file.split('/').pop() ?? ''));
      files.delete('servicemonitor.yaml');
      expect(asArray(kustomization.resources).map(String).sort()).toEqual([...files].sort());
    });

    it('scrapes with ServiceMonitors named as the alert rules expect their jobs', () => {
      const serviceNames = byKind('Service').map(nameOf);
      for (const monitor of byKind('ServiceMonitor')) {
        const selector = asObject(asObject(asObject(monitor.spec).selector).matchLabels);
        const matched = byKind('Service').filter((s) =>
          selects(selector, asObject(asObject(s.metadata).labels)),
        );
        expect(matched.map(nameOf), nameOf(monitor)).toEqual([nameOf(monitor)]);
        expect(serviceNames).toContain(nameOf(monitor));
        for (const endpoint of asArray(asObject(monitor.spec).endpoints).map(asObject)) {
          expect(endpoint.path).toBe('/metrics');
          expect(asArray(asObject(matched[0]?.spec).ports).map((p) => asObject(p).name)).toContain(
            endpoint.port,
          );
        }
      }
      expect(byKind('ServiceMonitor').map(nameOf).sort()).toEqual(['tasker-orchestration', 'tasker-worker']);
      const jobs = scrapeJobs(join(DEPLOY, 'prometheus', 'prometheus-kubernetes.yml'));
      expect([...jobs.keys()].sort()).toEqual(['tasker-orchestration', 'tasker-worker']);
    });
  });

  it('covers both roles', () => {
    expect(services('orchestration').length).toBeGreaterThan(0);
    expect(services('worker').length).toBeGreaterThan(0);
  });
});
