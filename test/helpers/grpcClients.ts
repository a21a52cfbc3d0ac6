/**
 * Real gRPC clients for the tests, built from the same .proto files the server loads, and a reflection
 * client that asks what grpcurl asks.
 */
import * as grpc from '@grpc/grpc-js';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { startGrpcServer } from '../../src/api/grpc/grpcServer.ts';
import type { GrpcServerOptions, RunningGrpcServer } from '../../src/api/grpc/grpcServer.ts';
import {
  loadProtos,
  REFLECTION_PROTOS,
  serviceDefinition,
  STANDARD_HEALTH_PROTO,
  TASKER_HEALTH_PROTO,
} from '../../src/api/grpc/protoLoader.ts';

/** A client with the service's methods by name (grpc-js exports the constructor type only). */
export type ServiceClient = InstanceType<grpc.ServiceClientConstructor>;

const definitions = loadProtos([TASKER_HEALTH_PROTO, STANDARD_HEALTH_PROTO, ...REFLECTION_PROTOS]);

type UnaryMethod = (
  request: object,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response: unknown) => void,
) => void;

/** Servers and clients a test opened, closed after it whatever happened. */
export class GrpcTestScope {
  private readonly servers: RunningGrpcServer[] = [];
  private readonly clients: grpc.Client[] = [];

  async start(options: Partial<GrpcServerOptions> & Pick<GrpcServerOptions, 'readiness'>) {
    const server = await startGrpcServer({
      role: 'orchestration',
      bindAddress: '127.0.0.1:0',
      enableReflection: true,
      enableHealthService: true,
      version: '9.9.9',
      ...options,
    });
    this.servers.push(server);
    return server;
  }

  client(address: string, service: string): ServiceClient {
    const Client = grpc.makeGenericClientConstructor(serviceDefinition(definitions, service), service);
    const client = new Client(address, grpc.credentials.createInsecure());
    this.clients.push(client);
    return client;
  }

  reflection(address: string): ReflectionClient {
    const client = this.client(address, 'grpc.reflection.v1.ServerReflection');
    return new ReflectionClient(client);
  }

  async close(): Promise<void> {
    for (const client of this.clients.splice(0)) client.close();
    await Promise.all(this.servers.splice(0).map((server) => server.stop(1_000)));
  }
}

export function unary<T>(client: ServiceClient, method: string, request: object = {}): Promise<T> {
  const call = client[method] as UnaryMethod;
  return new Promise((resolve, reject) => {
    call.call(client, request, { deadline: Date.now() + 10_000 }, (error, response) => {
      if (error === null) resolve(response as T);
      else reject(error);
    });
  });
}

/** The status code a call failed with. */
export async function failureCode(call: Promise<unknown>): Promise<grpc.status | 'succeeded'> {
  try {
    await call;
    return 'succeeded';
  } catch (error) {
    return (error as grpc.ServiceError).code;
  }
}

export interface FileDescriptor {
  name: string;
  package?: string;
  dependency?: string[];
  messageType?: MessageDescriptor[];
  enumType?: { name: string }[];
  service?: { name: string; method: { name: string; inputType: string; outputType: string }[] }[];
}

interface MessageDescriptor {
  name: string;
  field?: { name: string; typeName?: string }[];
  nestedType?: MessageDescriptor[];
  enumType?: { name: string }[];
}

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

/** One ServerReflectionInfo stream; requests are answered in order. */
export class ReflectionClient {
  private readonly stream: grpc.ClientDuplexStream<object, ReflectionResponse>;
  private readonly waiting: { resolve: (r: ReflectionResponse) => void; reject: (e: Error) => void }[] = [];

  constructor(client: ServiceClient) {
    const open = client.ServerReflectionInfo as (
      options: grpc.CallOptions,
    ) => grpc.ClientDuplexStream<object, ReflectionResponse>;
    this.stream = open.call(client, { deadline: Date.now() + 10_000 });
    this.stream.on('data', (response: ReflectionResponse) => this.waiting.shift()?.resolve(response));
    this.stream.on('error', (error: Error) => {
      for (const waiter of this.waiting.splice(0)) waiter.reject(error);
    });
  }

  private ask(request: object): Promise<ReflectionResponse> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.stream.write(request);
    });
  }

  async listServices(): Promise<string[]> {
    const response = await this.ask({ list_services: '' });
    return (response.list_services_response?.service ?? []).map((s) => s.name).sort();
  }

  /** The files a lookup returns (the file first, then what it needs), or the error the server gave. */
  async files(request: { file_containing_symbol: string } | { file_by_filename: string }) {
    const response = await this.ask(request);
    if (response.error_response !== undefined && response.error_response !== null) {
      return { error: response.error_response };
    }
    return {
      files: (response.file_descriptor_response?.file_descriptor_proto ?? []).map(
        (bytes) =>
          descriptor.FileDescriptorProto.toObject(descriptor.FileDescriptorProto.decode(bytes), {
            enums: String,
          }) as FileDescriptor,
      ),
    };
  }

  end(): void {
    this.stream.end();
  }
}

/**
 * What protoc and grpcurl check when they build a file from its descriptor: every type a field or method
 * names is defined in the file or in a file it imports. Returns the names that do not resolve.
 */
export function unresolvedReferences(file: FileDescriptor, imported: readonly FileDescriptor[]): string[] {
  const visible = new Set<string>();
  for (const f of [file, ...imported]) {
    const add = (prefix: string, message: MessageDescriptor) => {
      const name = `${prefix}.${message.name}`;
      visible.add(name);
      for (const e of message.enumType ?? []) visible.add(`${name}.${e.name}`);
      for (const nested of message.nestedType ?? []) add(name, nested);
    };
    const pkg = f.package === undefined || f.package === '' ? '' : `.${f.package}`;
    for (const m of f.messageType ?? []) add(pkg, m);
    for (const e of f.enumType ?? []) visible.add(`${pkg}.${e.name}`);
  }
  // C++-style scoping: a relative name is looked up in the enclosing scope, then each outer one.
  const resolves = (name: string, scope: string) => {
    if (name.startsWith('.')) return visible.has(name);
    for (let at = scope; ; at = at.slice(0, Math.max(0, at.lastIndexOf('.')))) {
      if (visible.has(`${at}.${name}`)) return true;
      if (at === '') return false;
    }
  };
  const unresolved: string[] = [];
  const pkg = file.package === undefined || file.package === '' ? '' : `.${file.package}`;
  const check = (scope: string, message: MessageDescriptor) => {
    const name = `${scope}.${message.name}`;
    for (const field of message.field ?? []) {
      if (field.typeName !== undefined && field.typeName !== '' && !resolves(field.typeName, name)) {
        unresolved.push(`${name}.${field.name}: ${field.typeName}`);
      }
    }
    for (const nested of message.nestedType ?? []) check(name, nested);
  };
  for (const m of file.messageType ?? []) check(pkg, m);
  for (const service of file.service ?? []) {
    for (const method of service.method) {
      for (const type of [method.inputType, method.outputType]) {
        if (!resolves(type, pkg)) unresolved.push(`${pkg}.${service.name}.${method.name}: ${type}`);
      }
    }
  }
  return unresolved;
}
