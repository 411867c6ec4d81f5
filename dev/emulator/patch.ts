// PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and a simplified strategic merge patch.
import jsonpatch from 'fast-json-patch';
import { ApiError, badRequest } from './errors.ts';

export const PatchType = {
  Merge: 'application/merge-patch+json',
  Json: 'application/json-patch+json',
  Strategic: 'application/strategic-merge-patch+json',
  Apply: 'application/apply-patch+yaml',
} as const;
export type PatchType = (typeof PatchType)[keyof typeof PatchType];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v) as Json;
  }
  return out;
}

export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest('json patch must be an array of operations');
  try {
    return jsonpatch.applyPatch(clone(target), ops as jsonpatch.Operation[], true, false).newDocument;
  } catch (err) {
    const e = err as Error & { name?: string };
    if (e.name === 'TEST_OPERATION_FAILED') {
      throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: test operation failed`);
    }
    if (e.name === 'OPERATION_PATH_UNRESOLVABLE' || e.name === 'OPERATION_FROM_UNRESOLVABLE') {
      throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${firstLine(e.message)}`);
    }
    throw badRequest(`invalid json patch: ${firstLine(e.message)}`);
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

/**
 * Lists the built-in kinds merge by key instead of replacing; enough for Pod/Job/Deployment templates.
 * Everything else follows merge-patch semantics (lists are replaced).
 */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  ports: 'containerPort',
  imagePullSecrets: 'name',
  hostAliases: 'ip',
  ownerReferences: 'uid',
  conditions: 'type',
};

/** Primitive lists with merge semantics (set union), as the real types declare. */
const MERGE_PRIMITIVE_LISTS = new Set(['finalizers']);

export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  return smp(target, patch);
}

function smp(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  if (patch['$patch'] === 'replace') {
    const rest = clone(patch);
    delete rest['$patch'];
    return rest;
  }
  if (patch['$patch'] === 'delete') return undefined;
  const out: JsonObject = isObject(target) ? clone(target) : {};
  // Deletions from primitive lists come first, as the real server applies them.
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$deleteFromPrimitiveList/') && Array.isArray(v)) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const cur = out[field];
      if (Array.isArray(cur)) out[field] = cur.filter((x) => !v.some((d) => d === x));
    }
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue; // $setElementOrder, $retainKeys, $patch: ordering/retention hints we ignore
    if (v === null) {
      delete out[k];
      continue;
    }
    const mergeKey = MERGE_KEYS[k];
    const cur = out[k];
    if (Array.isArray(v) && mergeKey !== undefined && (cur === undefined || Array.isArray(cur))) {
      out[k] = mergeList(Array.isArray(cur) ? cur : [], v, mergeKey);
    } else if (Array.isArray(v) && MERGE_PRIMITIVE_LISTS.has(k) && Array.isArray(cur)) {
      const merged = [...cur];
      for (const x of v) if (!merged.some((y) => y === x)) merged.push(x);
      out[k] = merged;
    } else if (isObject(v)) {
      const next = smp(cur, v);
      if (next === undefined) delete out[k];
      else out[k] = next as Json;
    } else {
      out[k] = clone(v);
    }
  }
  return out;
}

function mergeList(current: Json[], patch: Json[], key: string): Json[] {
  if (patch.some((p) => isObject(p) && p['$patch'] === 'replace')) {
    return patch.filter((p) => !(isObject(p) && p['$patch'] === 'replace'));
  }
  const out = clone(current);
  for (const item of patch) {
    if (!isObject(item) || item[key] === undefined) {
      out.push(clone(item));
      continue;
    }
    const idx = out.findIndex((x) => isObject(x) && x[key] === item[key]);
    if (item['$patch'] === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = smp(out[idx], item) as Json;
    else out.push(smp(undefined, item) as Json);
  }
  return out;
}

export function applyPatch(type: string, target: unknown, patch: unknown): unknown {
  switch (type) {
    case PatchType.Merge:
      return mergePatch(target, patch);
    case PatchType.Json:
      return jsonPatch(target, patch);
    case PatchType.Strategic:
      return strategicMergePatch(target, patch);
    default:
      throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`);
  }
}
