// Label and field selectors, parsed once and matched against objects.
import { badRequest } from './errors.ts';
import type { KubeObject } from './types.ts';

type Requirement =
  | { key: string; op: 'eq' | 'neq'; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' };

export type Selector = (obj: KubeObject) => boolean;

/** Split on commas that are not inside `in (...)` parentheses. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

export function parseLabelSelector(selector: string | undefined): Requirement[] {
  if (!selector || selector.trim() === '') return [];
  const reqs: Requirement[] = [];
  for (const part of splitTopLevel(selector)) {
    let m = /^([^\s!=()]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part);
    if (m) {
      const values = (m[3] ?? '').split(',').map((v) => v.trim()).filter((v) => v !== '');
      reqs.push({ key: m[1] ?? '', op: m[2] === 'in' ? 'in' : 'notin', values });
      continue;
    }
    m = /^([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=()]*)$/.exec(part);
    if (m) {
      reqs.push({ key: m[1] ?? '', op: m[2] === '!=' ? 'neq' : 'eq', value: m[3] ?? '' });
      continue;
    }
    m = /^!\s*([^\s!=()]+)$/.exec(part);
    if (m) {
      reqs.push({ key: m[1] ?? '', op: 'notexists' });
      continue;
    }
    m = /^([^\s!=()]+)$/.exec(part);
    if (m) {
      reqs.push({ key: m[1] ?? '', op: 'exists' });
      continue;
    }
    throw badRequest(`unable to parse requirement: invalid label selector "${selector}"`);
  }
  return reqs;
}

function matchRequirement(labels: Record<string, string>, r: Requirement): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const value = labels[r.key];
  switch (r.op) {
    case 'eq':
      return has && value === r.value;
    case 'neq':
      return !has || value !== r.value;
    case 'in':
      return has && r.values.includes(value ?? '');
    case 'notin':
      return !has || !r.values.includes(value ?? '');
    case 'exists':
      return has;
    case 'notexists':
      return !has;
  }
}

export function labelSelector(selector: string | undefined): Selector {
  const reqs = parseLabelSelector(selector);
  if (reqs.length === 0) return () => true;
  return (obj) => {
    const labels = obj.metadata?.labels ?? {};
    return reqs.every((r) => matchRequirement(labels, r));
  };
}

/** Reads a dotted path such as `involvedObject.name` or `status.phase`. */
export function readPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const seg of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/**
 * Field selectors: `=`, `==`, `!=` on any dotted path (the real server allows a per-kind set; we allow any
 * path, which is a superset: metadata.name, metadata.namespace, involvedObject.*, status.phase, ...).
 */
export function fieldSelector(selector: string | undefined): Selector {
  if (!selector || selector.trim() === '') return () => true;
  const reqs: { path: string; neq: boolean; value: string }[] = [];
  for (const part of splitTopLevel(selector)) {
    const m = /^([^\s!=]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw badRequest(`invalid field selector: "${selector}"`);
    reqs.push({ path: m[1] ?? '', neq: m[2] === '!=', value: (m[3] ?? '').trim() });
  }
  return (obj) =>
    reqs.every((r) => {
      const v = readPath(obj, r.path);
      const s = scalarString(v);
      return r.neq ? s !== r.value : s === r.value;
    });
}

/** How a field value compares in selectors and printer columns: scalars as text, structures as JSON. */
export function scalarString(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return v.toString();
  return JSON.stringify(v);
}

export function combine(...selectors: Selector[]): Selector {
  return (obj) => selectors.every((s) => s(obj));
}
