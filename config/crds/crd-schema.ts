// Loading and checking CustomResourceDefinitions without a cluster: the structural-schema rules the API
// server enforces, and an ajv validator for objects against a CRD version's openAPIV3Schema. Used by the
// CRD tests and available to the local API emulator.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';

/** An openAPIV3Schema node as a CRD writes it (the subset of keywords we look at). */
export type SchemaNode = {
  type?: string;
  format?: string;
  enum?: unknown[];
  required?: string[];
  nullable?: boolean;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  additionalProperties?: SchemaNode | boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  [keyword: string]: unknown;
};

export type CrdVersion = {
  name: string;
  served: boolean;
  storage: boolean;
  subresources?: { status?: Record<string, never>; scale?: unknown };
  additionalPrinterColumns?: { name: string; type: string; jsonPath: string; priority?: number; format?: string }[];
  schema?: { openAPIV3Schema?: SchemaNode };
};

export type Crd = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: {
    group: string;
    names: { kind: string; plural: string; singular?: string; listKind?: string; shortNames?: string[]; categories?: string[] };
    scope: string;
    versions: CrdVersion[];
  };
};

/** Reads one CRD from a YAML file holding exactly one document. */
export function loadCrd(path: string): Crd {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'));
  if (!Array.isArray(docs) || docs.length !== 1) throw new Error(`${path}: expected exactly one YAML document`);
  const doc = docs[0]!;
  if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0]!.message}`);
  return doc.toJS() as Crd;
}

export function crdVersion(crd: Crd, version?: string): CrdVersion {
  const found = version === undefined ? crd.spec.versions.find((v) => v.storage) : crd.spec.versions.find((v) => v.name === version);
  if (!found) throw new Error(`${crd.metadata.name}: no version ${version ?? '(storage)'}`);
  return found;
}

const printerColumnTypes = new Set(['integer', 'number', 'string', 'boolean', 'date']);
const schemaTypes = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);

/** Problems that would make the API server refuse the CRD (empty when it is a valid v1 CRD). */
export function crdProblems(crd: Crd): string[] {
  const problems: string[] = [];
  if (crd.apiVersion !== 'apiextensions.k8s.io/v1') problems.push(`apiVersion is ${crd.apiVersion}`);
  if (crd.kind !== 'CustomResourceDefinition') problems.push(`kind is ${crd.kind}`);
  const spec = crd.spec;
  if (!spec?.group || !spec.names?.plural || !spec.names.kind) return [...problems, 'spec.group, spec.names.plural and spec.names.kind are required'];
  if (crd.metadata?.name !== `${spec.names.plural}.${spec.group}`) problems.push(`metadata.name must be ${spec.names.plural}.${spec.group}`);
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') problems.push(`scope is ${spec.scope}`);
  const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
  for (const n of [spec.names.plural, spec.names.singular, ...(spec.names.shortNames ?? [])]) {
    if (n !== undefined && !dns1123Label.test(n)) problems.push(`name ${n} is not a DNS-1123 label`);
  }
  if (!Array.isArray(spec.versions) || spec.versions.length === 0) return [...problems, 'spec.versions is empty'];
  if (spec.versions.filter((v) => v.storage).length !== 1) problems.push('exactly one version must have storage: true');
  for (const v of spec.versions) {
    const schema = v.schema?.openAPIV3Schema;
    if (!schema) {
      problems.push(`${v.name}: schema.openAPIV3Schema is required`);
      continue;
    }
    if (schema.type !== 'object') problems.push(`${v.name}: the root schema must be type object`);
    problems.push(...structuralProblems(schema).map((p) => `${v.name}: ${p}`));
    for (const col of v.additionalPrinterColumns ?? []) {
      if (!col.name || !col.jsonPath) problems.push(`${v.name}: printer column needs name and jsonPath`);
      if (!printerColumnTypes.has(col.type)) problems.push(`${v.name}: printer column ${col.name} has type ${col.type}`);
      if (!col.jsonPath?.startsWith('.')) problems.push(`${v.name}: printer column ${col.name} jsonPath must start with "."`);
    }
  }
  return problems;
}

/**
 * The structural-schema rules (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/
 * custom-resource-definitions/#specifying-a-structural-schema) that matter for hand-written CRDs:
 * every node has a type unless it preserves unknown fields or is int-or-string; no properties and
 * additionalProperties together; preserve-unknown-fields is never false; metadata is bare.
 */
export function structuralProblems(schema: SchemaNode, path = ''): string[] {
  const problems: string[] = [];
  const at = path || '<root>';
  const typeless = schema['x-kubernetes-preserve-unknown-fields'] === true || schema['x-kubernetes-int-or-string'] === true;
  if (schema.type === undefined && !typeless) problems.push(`${at}: no type`);
  if (schema.type !== undefined && !schemaTypes.has(schema.type)) problems.push(`${at}: unknown type ${schema.type}`);
  if (schema['x-kubernetes-preserve-unknown-fields'] === false) problems.push(`${at}: x-kubernetes-preserve-unknown-fields: false is not allowed`);
  if (schema.properties && schema.additionalProperties !== undefined) problems.push(`${at}: properties and additionalProperties together`);
  if (schema.type === 'array' && !schema.items) problems.push(`${at}: array without items`);
  if ((schema.properties || schema.additionalProperties) && schema.type !== undefined && schema.type !== 'object') problems.push(`${at}: properties on a ${schema.type}`);
  for (const junctor of ['allOf', 'anyOf', 'oneOf', 'not']) {
    if (schema[junctor] !== undefined && path === '') problems.push(`${at}: ${junctor} at the root`);
  }
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    if (path === '' && key === 'metadata') {
      const extra = Object.keys(child).filter((k) => k !== 'type' && k !== 'description');
      if (extra.length > 0) problems.push(`metadata: only type is allowed at the root, found ${extra.join(', ')}`);
    }
    problems.push(...structuralProblems(child, `${path}.${key}`));
  }
  if (schema.items) problems.push(...structuralProblems(schema.items, `${path}[]`));
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    problems.push(...structuralProblems(schema.additionalProperties, `${path}{}`));
  }
  return problems;
}

/**
 * Converts a CRD schema to plain JSON Schema for ajv. With `rejectUnknownFields`, an object node that
 * lists properties and does not preserve unknown fields refuses other keys: what the API server would
 * silently prune (and `kubectl --validate=strict` reports) becomes an error, so a misspelt field fails.
 */
export function toJsonSchema(node: SchemaNode, rejectUnknownFields: boolean, isRoot = true): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'properties' || k === 'items' || k === 'additionalProperties' || k.startsWith('x-kubernetes-') || k === 'default') continue;
    out[k] = v;
  }
  if (node.properties) {
    out.properties = Object.fromEntries(Object.entries(node.properties).map(([k, v]) => [k, toJsonSchema(v, rejectUnknownFields, false)]));
    // The root keeps metadata/apiVersion/kind open; every other typed object is closed when asked.
    if (rejectUnknownFields && !isRoot && node['x-kubernetes-preserve-unknown-fields'] !== true) out.additionalProperties = false;
  }
  if (node.items) out.items = toJsonSchema(node.items, rejectUnknownFields, false);
  if (node.additionalProperties !== undefined) {
    out.additionalProperties = typeof node.additionalProperties === 'object' ? toJsonSchema(node.additionalProperties, rejectUnknownFields, false) : node.additionalProperties;
  }
  if (node['x-kubernetes-int-or-string'] === true) out.type = ['integer', 'string'];
  return out;
}

export type ValidationResult = { ok: boolean; errors: string[] };
export type ObjectValidator = (obj: unknown) => ValidationResult;

const rfc3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function newAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addFormat('date-time', (s: string) => rfc3339.test(s) && !Number.isNaN(Date.parse(s)));
  ajv.addFormat('date', /^\d{4}-\d{2}-\d{2}$/);
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('byte', /^[A-Za-z0-9+/]*={0,2}$/);
  return ajv;
}

function describe(e: ErrorObject): string {
  const where = e.instancePath || '<root>';
  if (e.keyword === 'additionalProperties') return `${where}: unknown field ${String((e.params as { additionalProperty?: string }).additionalProperty)}`;
  if (e.keyword === 'enum') return `${where}: ${e.message} (${((e.params as { allowedValues?: unknown[] }).allowedValues ?? []).join('|')})`;
  return `${where}: ${e.message ?? e.keyword}`;
}

/**
 * A validator for objects of one CRD version (the storage version by default). It also checks that
 * apiVersion and kind name this CRD, as the API server does.
 */
export function crdValidator(crd: Crd, options: { version?: string; rejectUnknownFields?: boolean } = {}): ObjectValidator {
  const version = crdVersion(crd, options.version);
  const schema = version.schema?.openAPIV3Schema;
  if (!schema) throw new Error(`${crd.metadata.name}/${version.name}: no schema`);
  const validate = newAjv().compile(toJsonSchema(schema, options.rejectUnknownFields ?? false));
  const apiVersion = `${crd.spec.group}/${version.name}`;
  return (obj: unknown): ValidationResult => {
    const errors: string[] = [];
    const typed = obj as { apiVersion?: unknown; kind?: unknown } | null;
    if (typed?.apiVersion !== apiVersion) errors.push(`apiVersion must be ${apiVersion}`);
    if (typed?.kind !== crd.spec.names.kind) errors.push(`kind must be ${crd.spec.names.kind}`);
    if (!validate(obj)) errors.push(...(validate.errors ?? []).map(describe));
    return { ok: errors.length === 0, errors };
  };
}

/** Every field path a schema declares, with its type (`[]` marks array items, `{}` map values). */
export function schemaPaths(schema: SchemaNode, path = ''): Map<string, string | undefined> {
  const paths = new Map<string, string | undefined>();
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const p = `${path}.${key}`;
    paths.set(p, child.type);
    for (const [k, v] of schemaPaths(child, p)) paths.set(k, v);
  }
  if (schema.items) {
    paths.set(`${path}[]`, schema.items.type);
    for (const [k, v] of schemaPaths(schema.items, `${path}[]`)) paths.set(k, v);
  }
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    paths.set(`${path}{}`, schema.additionalProperties.type);
    for (const [k, v] of schemaPaths(schema.additionalProperties, `${path}{}`)) paths.set(k, v);
  }
  return paths;
}

/** The node at a schemaPaths-style path, or undefined. */
export function schemaAt(schema: SchemaNode, path: string): SchemaNode | undefined {
  const parts = path.match(/\.[^.[{]+|\[\]|\{\}/g) ?? [];
  let node: SchemaNode | undefined = schema;
  for (const part of parts) {
    if (!node) return undefined;
    if (part === '[]') node = node.items;
    else if (part === '{}') node = typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined;
    else node = node.properties?.[part.slice(1)];
  }
  return node;
}
