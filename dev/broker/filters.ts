// Trigger filters: the classic `spec.filter.attributes` exact match and the newer `spec.filters`
// dialects (exact, prefix, suffix, all, any, not). CESQL is rejected at load with a clear error.
import type { CloudEvent } from 'cloudevents';

export type EventPredicate = (event: CloudEvent<unknown>) => boolean;

/** A context attribute or extension as a string, undefined when the event does not carry it. */
export function attributeValue(event: CloudEvent<unknown>, name: string): string | undefined {
  const raw = (event as unknown as Record<string, unknown>)[name.toLowerCase()];
  if (raw === undefined || raw === null) return undefined;
  if (raw instanceof Date) return raw.toISOString();
  if (typeof raw === 'string') return raw;
  if (typeof raw === 'number' || typeof raw === 'boolean' || typeof raw === 'bigint') return String(raw);
  return undefined; // data and other structured values are not attributes
}

function stringMap(value: unknown, where: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${where} must be a map of attribute name to string`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new Error(`${where}.${k} must be a string`);
    out[k.toLowerCase()] = v;
  }
  return out;
}

/** `spec.filter.attributes`: every pair must match exactly; an empty value matches any value (Knative's "any"). */
export function compileAttributesFilter(attributes: unknown, where = 'spec.filter.attributes'): EventPredicate {
  const wanted = stringMap(attributes ?? {}, where);
  return (event) =>
    Object.entries(wanted).every(([name, value]) => {
      if (value === '') return true;
      return attributeValue(event, name) === value;
    });
}

const DIALECTS = ['exact', 'prefix', 'suffix', 'all', 'any', 'not', 'cesql'] as const;

/** One entry of `spec.filters` (exactly one dialect per entry, like the CloudEvents Subscriptions API). */
export function compileFilter(filter: unknown, where: string): EventPredicate {
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) {
    throw new Error(`${where} must be an object with one of ${DIALECTS.join(', ')}`);
  }
  const keys = Object.keys(filter).filter((k) => (filter as Record<string, unknown>)[k] !== undefined);
  if (keys.length !== 1) {
    throw new Error(`${where} must have exactly one dialect (${DIALECTS.join(', ')}), got ${keys.length ? keys.join(', ') : 'none'}`);
  }
  const dialect = keys[0] as string;
  const body = (filter as Record<string, unknown>)[dialect];
  const at = `${where}.${dialect}`;
  switch (dialect) {
    case 'exact':
    case 'prefix':
    case 'suffix': {
      const pairs = Object.entries(stringMap(body, at));
      if (pairs.length === 0) throw new Error(`${at} must name at least one attribute`);
      if (dialect !== 'exact') {
        for (const [k, v] of pairs) if (v === '') throw new Error(`${at}.${k} must not be empty`);
      }
      return (event) =>
        pairs.every(([name, value]) => {
          const actual = attributeValue(event, name);
          if (actual === undefined) return false;
          if (dialect === 'exact') return actual === value;
          if (dialect === 'prefix') return actual.startsWith(value);
          return actual.endsWith(value);
        });
    }
    case 'all':
    case 'any': {
      if (!Array.isArray(body)) throw new Error(`${at} must be a list of filters`);
      const parts = body.map((f, i) => compileFilter(f, `${at}[${i}]`));
      return dialect === 'all' ? (event) => parts.every((p) => p(event)) : (event) => parts.some((p) => p(event));
    }
    case 'not': {
      const inner = compileFilter(body, at);
      return (event) => !inner(event);
    }
    case 'cesql':
      throw new Error(`${at}: CESQL filters are not supported by the local broker; use exact/prefix/suffix/all/any/not`);
    default:
      throw new Error(`${where}: unknown filter dialect "${dialect}" (supported: exact, prefix, suffix, all, any, not)`);
  }
}

/** `spec.filters` (ANDed) wins over `spec.filter` when non-empty, as in Knative with new-trigger-filters. */
export function compileTriggerFilter(spec: { filter?: { attributes?: unknown } | undefined; filters?: unknown }): EventPredicate {
  if (spec.filters !== undefined && spec.filters !== null) {
    if (!Array.isArray(spec.filters)) throw new Error('spec.filters must be a list');
    if (spec.filters.length > 0) {
      const parts = spec.filters.map((f, i) => compileFilter(f, `spec.filters[${i}]`));
      return (event) => parts.every((p) => p(event));
    }
  }
  return compileAttributesFilter(spec.filter?.attributes ?? {});
}
