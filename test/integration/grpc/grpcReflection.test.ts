import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthReport } from '../../../src/api/grpc/grpcServer.ts';
import type { FileDescriptor } from '../../helpers/grpcClients.ts';
import { failureCode, GrpcTestScope, unary, unresolvedReferences } from '../../helpers/grpcClients.ts';

const ready: HealthReport = { status: 'healthy', checks: { database: { status: 'healthy' } } };
const readiness = () => Promise.resolve(ready);

const scope = new GrpcTestScope();
afterEach(() => scope.close());

describe('server reflection', () => {
  it('lists the health services and reflection itself', async () => {
    const server = await scope.start({ readiness });
    const reflection = scope.reflection(server.address);
    expect(await reflection.listServices()).toEqual([
      'grpc.health.v1.Health',
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
      'tasker.v1.HealthService',
    ]);
    reflection.end();
  });

  it('describes tasker.v1.HealthService with files a strict client can build: real paths, imports listed', async () => {
    const server = await scope.start({ readiness });
    const reflection = scope.reflection(server.address);

    const found = await reflection.files({ file_containing_symbol: 'tasker.v1.HealthService' });
    expect(found.error).toBeUndefined();
    const [file] = found.files ?? [];
    expect(file?.name).toBe('tasker/v1/health.proto');
    expect(file?.dependency?.sort()).toEqual([
      'google/protobuf/struct.proto',
      'google/protobuf/timestamp.proto',
    ]);
    expect(file?.service?.[0]?.method.map((m) => m.name)).toEqual([
      'CheckHealth',
      'CheckLiveness',
      'CheckReadiness',
      'CheckDetailedHealth',
    ]);

    // As grpcurl does: fetch each import by name, recursively, then build every file from its imports.
    const byName = new Map<string, FileDescriptor>();
    const fetch = async (name: string) => {
      if (byName.has(name)) return;
      const answer = await reflection.files({ file_by_filename: name });
      const fetched = answer.files?.[0];
      expect(fetched?.name, `file_by_filename ${name}: ${JSON.stringify(answer.error)}`).toBe(name);
      byName.set(name, fetched as FileDescriptor);
      for (const dependency of fetched?.dependency ?? []) await fetch(dependency);
    };
    await fetch('tasker/v1/health.proto');
    for (const [name, descriptor] of byName) {
      const imports = (descriptor.dependency ?? []).map((d) => byName.get(d) as FileDescriptor);
      expect(unresolvedReferences(descriptor, imports), name).toEqual([]);
    }
    // protoc names a map's entry type <Field>Entry; strict readers reject anything else.
    const readinessResponse = byName
      .get('tasker/v1/health.proto')
      ?.messageType?.find((m) => m.name === 'CheckReadinessResponse');
    expect(readinessResponse?.nestedType?.map((n) => n.name)).toEqual(['ChecksEntry']);
    expect(
      byName.get('google/protobuf/struct.proto')?.messageType?.find((m) => m.name === 'Value')?.field?.[0]
        ?.name,
    ).toBe('null_value');
    reflection.end();
  });

  it('answers UNIMPLEMENTED when enableReflection is false', async () => {
    const server = await scope.start({ readiness, enableReflection: false });
    const reflection = scope.reflection(server.address);
    const error: unknown = await reflection.listServices().catch((e: unknown) => e);
    expect((error as grpc.ServiceError).code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it('serves neither health service when enableHealthService is false, and reflection says so', async () => {
    const server = await scope.start({ readiness, enableHealthService: false });
    const reflection = scope.reflection(server.address);
    expect(await reflection.listServices()).toEqual([
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
    ]);
    reflection.end();
    const health = scope.client(server.address, 'grpc.health.v1.Health');
    expect(await failureCode(unary(health, 'Check', { service: '' }))).toBe(grpc.status.UNIMPLEMENTED);
  });
});

const grpcurl = await promisify(execFile)('grpcurl', ['-version']).then(
  () => true,
  () => false,
);

describe.skipIf(!grpcurl)('grpcurl (runs only where grpcurl is on PATH)', () => {
  it('lists the services and calls CheckReadiness through reflection', async () => {
    const server = await scope.start({ readiness });
    const run = async (...args: string[]) =>
      (await promisify(execFile)('grpcurl', ['-plaintext', ...args], { timeout: 20_000 })).stdout;

    const list = await run(server.address, 'list');
    expect(list.split('\n').filter(Boolean).sort()).toEqual([
      'grpc.health.v1.Health',
      'grpc.reflection.v1.ServerReflection',
      'grpc.reflection.v1alpha.ServerReflection',
      'tasker.v1.HealthService',
    ]);
    const answer = JSON.parse(await run(server.address, 'tasker.v1.HealthService/CheckReadiness')) as {
      status: string;
      checks: Record<string, { status: string }>;
    };
    expect(answer.status).toBe('HEALTH_STATUS_HEALTHY');
    expect(answer.checks.database?.status).toBe('HEALTH_STATUS_HEALTHY');
  });
});
