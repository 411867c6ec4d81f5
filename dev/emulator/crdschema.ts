// CRD structural schemas: pruning, defaulting and validation (ajv) the way the API server applies them.
import { Ajv } from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { FieldCause } from './errors.ts';

export type OpenApiSchema = Record<string, unknown>;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** OpenAPI v3 (Kubernetes dialect) → JSON Schema that ajv understands. */
export function toJsonSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toJsonSchema);
  if (!isObject(schema)) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'format' || k === 'nullable' || k.startsWith('x-kubernetes-')) continue;
    if (k === 'properties' || k === 'patternProperties' || k === 'definitions') {
      out[k] = Object.fromEntries(Object.entries(isObject(v) ? v : {}).map(([pk, pv]) => [pk, toJsonSchema(pv)]));
    } else if (k === 'default' || k === 'enum' || k === 'example' || k === 'const') {
      out[k] = v;
    } else {
      out[k] = toJsonSchema(v);
    }
  }
  if (schema['x-kubernetes-int-or-string'] === true) {
    delete out.type;
    if (out.anyOf === undefined && out.oneOf === undefined) out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  if (schema.nullable === true) {
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...(out.enum as unknown[]), null];
  }
  return out;
}

/** Properties a node knows about, including those named in allOf/anyOf/oneOf branches. */
function knownProperties(schema: Record<string, unknown>): Record<string, unknown> {
  const props: Record<string, unknown> = { ...(isObject(schema.properties) ? schema.properties : {}) };
  for (const key of ['allOf', 'anyOf', 'oneOf']) {
    const branches = schema[key];
    if (!Array.isArray(branches)) continue;
    for (const b of branches) if (isObject(b) && isObject(b.properties)) for (const [k, v] of Object.entries(b.properties)) props[k] ??= v;
  }
  return props;
}

/**
 * Drops fields the schema does not declare (unless `x-kubernetes-preserve-unknown-fields`), fills `default`s.
 * Mutates `value` in place. `isRoot` keeps apiVersion/kind/metadata, which the server never prunes.
 */
export function pruneAndDefault(value: unknown, schema: unknown, isRoot = false): void {
  if (!isObject(schema)) return;
  if (Array.isArray(value)) {
    for (const item of value) pruneAndDefault(item, schema.items);
    return;
  }
  if (!isObject(value)) return;
  if (schema['x-kubernetes-embedded-resource'] === true && isObject(value.metadata)) {
    // embedded objects keep their type meta and metadata
  }
  const props = knownProperties(schema);
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  const additional = schema.additionalProperties;
  for (const key of Object.keys(value)) {
    if (isRoot && (key === 'apiVersion' || key === 'kind' || key === 'metadata')) continue;
    if (key in props) {
      pruneAndDefault(value[key], props[key]);
    } else if (isObject(additional)) {
      pruneAndDefault(value[key], additional);
    } else if (!preserve && additional !== true) {
      delete value[key];
    }
  }
  for (const [key, propSchema] of Object.entries(props)) {
    if (value[key] === undefined && isObject(propSchema) && propSchema.default !== undefined) {
      value[key] = structuredClone(propSchema.default);
      pruneAndDefault(value[key], propSchema);
    }
  }
}

export interface CompiledSchema {
  /** Prunes, defaults, then validates; returns the causes of failure (empty when valid). */
  admit(obj: Record<string, unknown>): FieldCause[];
}

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, logger: false });

export function compileSchema(openAPIV3Schema: unknown): CompiledSchema {
  const root = isObject(openAPIV3Schema) ? openAPIV3Schema : { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  const jsonSchema = toJsonSchema(root) as Record<string, unknown>;
  // The server validates metadata itself; the CRD's schema for it (if any) is ignored.
  if (isObject(jsonSchema.properties)) {
    const props = { ...jsonSchema.properties };
    delete props.metadata;
    jsonSchema.properties = props;
  }
  const validate: ValidateFunction = ajv.compile(jsonSchema);
  return {
    admit(obj) {
      pruneAndDefault(obj, root, true);
      if (validate(obj)) return [];
      return (validate.errors ?? []).map(errorToCause).filter(uniqueCause());
    },
  };
}

function uniqueCause(): (c: FieldCause) => boolean {
  const seen = new Set<string>();
  return (c) => {
    const key = `${c.field}|${c.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  };
}

function fieldPath(instancePath: string): string {
  return instancePath
    .split('/')
    .filter((s) => s !== '')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');
}

function errorToCause(e: ErrorObject): FieldCause {
  const path = fieldPath(e.instancePath);
  const shown = (v: unknown): string => JSON.stringify(v);
  switch (e.keyword) {
    case 'required': {
      const missing = String((e.params as { missingProperty?: string }).missingProperty ?? '');
      return { field: path ? `${path}.${missing}` : missing, message: 'Required value', reason: 'FieldValueRequired' };
    }
    case 'type':
      return {
        field: path,
        message: `Invalid value: ${shown(typeof e.data)}: ${path || 'body'} in body must be of type ${String((e.params as { type?: unknown }).type)}: ${shown(e.data)}`,
        reason: 'FieldValueTypeInvalid',
      };
    case 'enum': {
      const allowed = ((e.params as { allowedValues?: unknown[] }).allowedValues ?? []).map(shown).join(', ');
      return { field: path, message: `Unsupported value: ${shown(e.data)}: supported values: ${allowed}`, reason: 'FieldValueNotSupported' };
    }
    default:
      return { field: path, message: `Invalid value: ${shown(e.data)}: ${path || 'body'} in body ${e.message ?? 'is invalid'}`, reason: 'FieldValueInvalid' };
  }
}
