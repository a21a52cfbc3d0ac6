import { existsSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
// protobufjs comes with @grpc/proto-loader; its descriptor extension is what @grpc/reflection uses too.
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';

/** What protobufjs/ext/descriptor adds to Type, Enum and Service; its typings do not declare it. */
interface Describable {
  toDescriptor(syntax: 'proto3'): protobuf.Message;
}

/** The parts of a DescriptorProto message this module edits. */
interface MessageDescriptor {
  name: string;
  field: { name: string; typeName: string }[];
  nestedType: MessageDescriptor[];
  options?: { mapEntry?: boolean } | null;
}

interface FileContents {
  packageName: string;
  messages: protobuf.Type[];
  enums: protobuf.Enum[];
  services: protobuf.Service[];
  imports: Set<string>;
}

/**
 * Encoded FileDescriptorProtos for server reflection: one per .proto file, under the file's own path, listing
 * the files it imports. proto-loader's descriptors instead merge each package into one `<package>.proto` and
 * list no imports (grpc-node issue 2595), with which grpcurl lists the services but cannot call a method
 * whose messages use google.protobuf types ("cannot resolve type google.protobuf.Struct").
 *
 * @param files paths relative to `includeDirs`
 */
export function buildFileDescriptorProtos(
  files: readonly string[],
  includeDirs: readonly string[],
): Uint8Array[] {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (isAbsolute(target)) return target;
    const found = includeDirs.map((dir) => join(dir, target)).find((candidate) => existsSync(candidate));
    return found ?? target;
  };
  root.loadSync([...files], { keepCase: true });
  root.resolveAll();
  labelBundledFiles(root);

  const pathOf = (filename: string): string => {
    const dir = includeDirs.find((d) => filename.startsWith(d.endsWith(sep) ? d : d + sep));
    return dir === undefined ? filename : relative(dir, filename).split(sep).join('/');
  };
  const fileOf = (object: protobuf.ReflectionObject): string => {
    for (let at: protobuf.ReflectionObject | null = object; at !== null; at = at.parent) {
      if (at.filename !== null && at.filename !== undefined) return pathOf(at.filename);
    }
    throw new Error(`cannot tell which .proto file defines ${object.fullName}`);
  };

  const byFile = new Map<string, FileContents>();
  const contentsOf = (object: protobuf.ReflectionObject, packageName: string): FileContents => {
    const file = fileOf(object);
    let contents = byFile.get(file);
    if (contents === undefined) {
      contents = { packageName, messages: [], enums: [], services: [], imports: new Set() };
      byFile.set(file, contents);
    }
    return contents;
  };
  const imports = (from: string, target: protobuf.ReflectionObject | null, into: Set<string>) => {
    if (target === null) return;
    const file = fileOf(target);
    if (file !== from) into.add(file);
  };
  const collectMessageImports = (type: protobuf.Type, file: string, into: Set<string>) => {
    for (const field of type.fieldsArray) imports(file, field.resolvedType, into);
    for (const nested of type.nestedArray) {
      if (nested instanceof protobuf.Type) collectMessageImports(nested, file, into);
    }
  };
  const visit = (namespace: protobuf.NamespaceBase) => {
    const packageName = namespace.fullName.replace(/^\./, '');
    // Type and Service are namespaces too, so they are matched before the plain-namespace case.
    for (const nested of namespace.nestedArray) {
      if (nested instanceof protobuf.Type) {
        const contents = contentsOf(nested, packageName);
        contents.messages.push(nested);
        collectMessageImports(nested, fileOf(nested), contents.imports);
      } else if (nested instanceof protobuf.Enum) {
        contentsOf(nested, packageName).enums.push(nested);
      } else if (nested instanceof protobuf.Service) {
        const contents = contentsOf(nested, packageName);
        contents.services.push(nested);
        for (const method of nested.methodsArray) {
          imports(fileOf(nested), method.resolvedRequestType, contents.imports);
          imports(fileOf(nested), method.resolvedResponseType, contents.imports);
        }
      } else if (nested instanceof protobuf.Namespace) {
        visit(nested);
      }
      // Top-level extension fields: none of our files declares one.
    }
  };
  visit(root);

  const describe = (object: protobuf.ReflectionObject) =>
    (object as unknown as Describable).toDescriptor('proto3');
  const describeMessage = (type: protobuf.Type) => {
    const message = describe(type);
    if (protobuf.common.get(fileOf(type)) !== null) snakeCaseFields(message as unknown as MessageDescriptor);
    renameMapEntries(message as unknown as MessageDescriptor);
    return message;
  };
  return [...byFile].map(([name, contents]) =>
    descriptor.FileDescriptorProto.encode(
      descriptor.FileDescriptorProto.create({
        name,
        package: contents.packageName,
        dependency: [...contents.imports].sort(),
        messageType: contents.messages.map(describeMessage),
        enumType: contents.enums.map(describe),
        service: contents.services.map(describe),
        syntax: 'proto3',
      }),
    ).finish(),
  );
}

/**
 * Files protobufjs bundles (google/protobuf/*.proto) are added from JSON, which records no file name; name
 * their top-level definitions after the bundled file that holds them.
 */
function labelBundledFiles(root: protobuf.Root): void {
  for (const file of root.files) {
    const bundled = protobuf.common.get(file);
    if (bundled === null) continue;
    const walk = (json: protobuf.INamespace, prefix: string) => {
      for (const [name, child] of Object.entries(json.nested ?? {})) {
        const fullName = `${prefix}.${name}`;
        if ('fields' in child || 'values' in child || 'methods' in child) {
          const object = root.lookup(fullName);
          if (object !== null) object.filename = file;
        } else {
          walk(child, fullName);
        }
      }
    };
    walk(bundled, '');
  }
}

/** protobufjs bundles google/protobuf/*.proto with camelCase field names (`nullValue`); the files say `null_value`. */
function snakeCaseFields(message: MessageDescriptor): void {
  for (const field of message.field) field.name = field.name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  for (const nested of message.nestedType) snakeCaseFields(nested);
}

/**
 * protobufjs names a map field's entry type after the field (`Checks`); protoc, and strict descriptor readers
 * such as grpcurl's, require `ChecksEntry` (protoc's MapEntryName: the field name in CamelCase + "Entry").
 */
function renameMapEntries(message: MessageDescriptor): void {
  for (const field of message.field) {
    const entry = message.nestedType.find((n) => n.options?.mapEntry === true && n.name === field.typeName);
    if (entry === undefined) continue;
    const name = `${field.name.replace(/(?:^|_)([^_]?)/g, (_m, c: string) => c.toUpperCase())}Entry`;
    entry.name = name;
    field.typeName = name;
  }
  for (const nested of message.nestedType) renameMapEntries(nested);
}
