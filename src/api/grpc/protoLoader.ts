import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type {
  AnyDefinition,
  EnumTypeDefinition,
  MessageTypeDefinition,
  Options,
  PackageDefinition,
} from '@grpc/proto-loader';
import { protoPath as standardHealthProtoPath } from 'grpc-health-check';
import { buildFileDescriptorProtos } from './reflectionDescriptors.ts';

/**
 * The .proto files are read when the server starts: no generated code. Tasker's own files ship in the
 * package's `proto/` folder (listed in package.json "files"); the standard health and reflection files come
 * with the grpc-health-check and @grpc/reflection packages.
 */

/** `<package root>/proto`; this module sits three folders below the root both in src/ and in dist/. */
const TASKER_PROTO_DIR = fileURLToPath(new URL('../../../proto/', import.meta.url));

const require = createRequire(import.meta.url);

/** Folders the proto paths below are relative to. */
const INCLUDE_DIRS = [
  TASKER_PROTO_DIR,
  // grpc-health-check ships <root>/proto/health/v1/health.proto.
  dirname(dirname(dirname(standardHealthProtoPath))),
  join(dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto'),
];

export const TASKER_HEALTH_PROTO = 'tasker/v1/health.proto';
export const STANDARD_HEALTH_PROTO = 'health/v1/health.proto';
export const REFLECTION_PROTOS = [
  'grpc/reflection/v1/reflection.proto',
  'grpc/reflection/v1alpha/reflection.proto',
] as const;

export const TASKER_HEALTH_SERVICE = 'tasker.v1.HealthService';

/**
 * How messages look in JavaScript, for servers and clients alike: proto field names as written
 * (`duration_ms`), enums as their names, 64-bit integers as strings, absent fields as their defaults.
 */
const PROTO_LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: INCLUDE_DIRS,
};

/** @param files paths relative to the include folders, e.g. {@link TASKER_HEALTH_PROTO} */
export function loadProtos(files: readonly string[]): PackageDefinition {
  return loadSync([...files], PROTO_LOADER_OPTIONS);
}

/** The service `name` (fully qualified) from a loaded package, ready for `server.addService`. */
export function serviceDefinition(definition: PackageDefinition, name: string): grpc.ServiceDefinition {
  const found = definition[name];
  if (found === undefined || isTypeDefinition(found)) {
    throw new Error(`${name} is not a service in the loaded .proto files`);
  }
  return found;
}

/**
 * The package definition server reflection describes: `files` as loaded, with each file's descriptor
 * replaced by one under its own path that lists its imports (see buildFileDescriptorProtos).
 */
export function loadReflectionProtos(files: readonly string[]): PackageDefinition {
  const fileDescriptorProtos = buildFileDescriptorProtos(files, INCLUDE_DIRS).map((bytes) =>
    Buffer.from(bytes),
  );
  const patched: PackageDefinition = {};
  for (const [name, definition] of Object.entries(loadProtos(files))) {
    // Message and enum definitions carry the descriptors; service definitions are maps of methods.
    patched[name] = isTypeDefinition(definition) ? { ...definition, fileDescriptorProtos } : definition;
  }
  return patched;
}

function isTypeDefinition(
  definition: AnyDefinition,
): definition is MessageTypeDefinition<object, object> | EnumTypeDefinition {
  return typeof (definition as { format?: unknown }).format === 'string';
}
