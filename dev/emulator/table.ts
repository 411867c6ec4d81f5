// Server-side printing (`as=Table`): what `kubectl get` shows as columns.
import type { PrinterColumn, ResourceDef } from './registry.ts';
import { scalarString } from './selectors.ts';
import type { StoredObject } from './types.ts';

export interface TableColumn {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

const NAME_COLUMN: TableColumn = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description: 'Name must be unique within a namespace.',
  priority: 0,
};

const AGE_COLUMN: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
};

const BUILTIN_COLUMNS: Record<string, PrinterColumn[]> = {
  '/pods': [{ name: 'Status', type: 'string', jsonPath: '.status.phase' }, AGE_COLUMN],
  '/namespaces': [{ name: 'Status', type: 'string', jsonPath: '.status.phase' }, AGE_COLUMN],
  '/secrets': [{ name: 'Type', type: 'string', jsonPath: '.type' }, AGE_COLUMN],
  'coordination.k8s.io/leases': [{ name: 'Holder', type: 'string', jsonPath: '.spec.holderIdentity' }, AGE_COLUMN],
  '/events': [
    { name: 'Type', type: 'string', jsonPath: '.type' },
    { name: 'Reason', type: 'string', jsonPath: '.reason' },
    { name: 'Object', type: 'string', jsonPath: '.involvedObject.name' },
    { name: 'Message', type: 'string', jsonPath: '.message' },
  ],
};

export function columnsFor(def: ResourceDef, version: string): PrinterColumn[] {
  if (def.crdName !== undefined) {
    const declared = def.printerColumns?.[version] ?? [];
    return declared.length > 0 ? declared : [AGE_COLUMN];
  }
  return BUILTIN_COLUMNS[`${def.group}/${def.resource}`] ?? [AGE_COLUMN];
}

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export interface TableListMeta {
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

export function toTable(
  def: ResourceDef,
  version: string,
  objects: StoredObject[],
  listMeta: TableListMeta,
  includeObject: IncludeObject,
  now: Date = new Date(),
): object {
  const cols = columnsFor(def, version);
  const columnDefinitions: TableColumn[] = [
    NAME_COLUMN,
    ...cols.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format ?? '',
      description: c.description ?? '',
      priority: c.priority ?? 0,
    })),
  ];
  const rows = objects.map((o) => {
    const row: Record<string, unknown> = {
      cells: [o.metadata.name, ...cols.map((c) => cell(c, o, now))],
    };
    if (includeObject === 'Object') row.object = o;
    else if (includeObject === 'Metadata') {
      row.object = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
    }
    return row;
  });
  const metadata: Record<string, unknown> = { resourceVersion: listMeta.resourceVersion };
  if (listMeta.continue) metadata.continue = listMeta.continue;
  if (listMeta.remainingItemCount !== undefined) metadata.remainingItemCount = listMeta.remainingItemCount;
  return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata, columnDefinitions, rows };
}

function cell(col: PrinterColumn, obj: StoredObject, now: Date): unknown {
  const values = evalJsonPath(obj, col.jsonPath);
  const v = values.find((x) => x !== undefined && x !== null);
  if (v === undefined) return null;
  if (col.type === 'date') {
    const t = Date.parse(scalarString(v));
    return Number.isNaN(t) ? scalarString(v) : humanDuration(now.getTime() - t);
  }
  if (col.type === 'integer' || col.type === 'number') return typeof v === 'number' ? v : Number(scalarString(v));
  if (col.type === 'boolean') return Boolean(v);
  return scalarString(v);
}

type PathStep = { key: string } | { index: number } | { filter: { path: string[]; value: string } } | { wildcard: true };

function parsePath(path: string): PathStep[] {
  const steps: PathStep[] = [];
  let p = path.trim();
  if (p.startsWith('{') && p.endsWith('}')) p = p.slice(1, -1);
  let i = 0;
  while (i < p.length) {
    const ch = p[i];
    if (ch === '.') {
      i++;
      let key = '';
      while (i < p.length && p[i] !== '.' && p[i] !== '[') key += p[i++];
      if (key === '*') steps.push({ wildcard: true });
      else if (key !== '') steps.push({ key });
    } else if (ch === '[') {
      const end = p.indexOf(']', i);
      if (end < 0) break;
      const inner = p.slice(i + 1, end).trim();
      i = end + 1;
      const filter = /^\?\(@\.([\w.-]+)\s*==\s*["']?([^"')]*)["']?\)$/.exec(inner);
      if (filter) steps.push({ filter: { path: (filter[1] ?? '').split('.'), value: filter[2] ?? '' } });
      else if (inner === '*') steps.push({ wildcard: true });
      else if (/^-?\d+$/.test(inner)) steps.push({ index: Number(inner) });
      else steps.push({ key: inner.replace(/^['"]|['"]$/g, '') });
    } else i++;
  }
  return steps;
}

/** The JSONPath subset printer columns use: `.a.b`, `['a.b']`, `[0]`, `[*]`, `[?(@.type=="Ready")]`. */
export function evalJsonPath(obj: unknown, path: string): unknown[] {
  let current: unknown[] = [obj];
  for (const step of parsePath(path)) {
    const next: unknown[] = [];
    for (const c of current) {
      if (c === null || typeof c !== 'object') continue;
      if ('key' in step) next.push((c as Record<string, unknown>)[step.key]);
      else if ('index' in step) {
        if (Array.isArray(c)) next.push(c[step.index < 0 ? c.length + step.index : step.index]);
      } else if ('wildcard' in step) next.push(...(Array.isArray(c) ? (c as unknown[]) : Object.values(c as Record<string, unknown>)));
      else if (Array.isArray(c)) {
        for (const item of c) {
          let v: unknown = item;
          for (const seg of step.filter.path) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[seg] : undefined;
          if (v !== undefined && scalarString(v) === step.filter.value) next.push(item);
        }
      }
    }
    current = next;
  }
  return current;
}

/** k8s.io/apimachinery/pkg/util/duration.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const d = Math.floor(hours / 24) % 365;
    return d === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${d}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}
