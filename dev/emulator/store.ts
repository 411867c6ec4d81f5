// The object store: every write (HTTP or in-process) goes through here, bumps the global resourceVersion,
// records the change in a bounded history ring and notifies watchers.
import { randomUUID } from 'node:crypto';
import { compileSchema } from './crdschema.ts';
import type { CompiledSchema } from './crdschema.ts';
import {
  ApiError,
  alreadyExists,
  badRequest,
  conflict,
  gone,
  invalid,
  notFound,
  staleConflict,
  unsupportedMediaType,
} from './errors.ts';
import type { FieldCause } from './errors.ts';
import { applyPatch, clone, PatchType } from './patch.ts';
import { apiVersionOf, sortVersions, splitApiVersion } from './registry.ts';
import type { PrinterColumn, Registry, ResourceDef } from './registry.ts';
import { combine, fieldSelector, labelSelector } from './selectors.ts';
import type { Selector } from './selectors.ts';
import type {
  KubeObject,
  ListOptions,
  ObjectKey,
  PropagationPolicy,
  ResourceSelector,
  StoredObject,
  StoreEvent,
} from './types.ts';

export interface Resolved {
  def: ResourceDef;
  version: string;
}

export interface WriteOptions {
  /** `status` writes only `.status`; anything else writes the main resource (ignoring `.status` where a status subresource exists). */
  subresource?: 'status';
  /** Validate and compute the result but do not store it. */
  dryRun?: boolean;
  /** Validating admission (dev/emulator/admission.ts): sees the final object; throws to deny. */
  validate?: (obj: StoredObject, old: StoredObject | undefined) => void;
}

export interface DeleteOptions {
  propagationPolicy?: PropagationPolicy;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

export interface ListPageOptions extends ListOptions {
  limit?: number;
  continue?: string;
}

export interface ListPage {
  items: StoredObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

/** An event as delivered to one watcher: already filtered and shown at the watcher's version. */
export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: StoredObject;
}

export interface SubscribeFilter extends ListOptions {
  resource: ResourceSelector;
  name?: string;
}

const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function timestamp(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function storageKeyOf(def: ResourceDef): string {
  return `${def.group}/${def.resource}`;
}

function objectKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Everything but metadata and status: what `metadata.generation` tracks. */
function specPart(obj: KubeObject): string {
  const rest: Record<string, unknown> = { ...obj };
  delete rest.metadata;
  delete rest.status;
  delete rest.apiVersion;
  delete rest.kind;
  return JSON.stringify(rest);
}

export class Store {
  private rv = 0;
  private readonly data = new Map<string, Map<string, StoredObject>>();
  private readonly byUid = new Map<string, { storageKey: string; key: string }>();
  private history: StoreEvent[] = [];
  private compactedRv = 0;
  private readonly historySize: number;
  private readonly listeners = new Set<(e: StoreEvent) => void>();
  private readonly pending: StoreEvent[] = [];
  private dispatching = false;
  private readonly schemas = new Map<string, Map<string, CompiledSchema>>();
  private readonly logs = new Map<string, string>();
  readonly registry: Registry;

  constructor(registry: Registry, historySize = 10000) {
    this.registry = registry;
    this.historySize = Math.max(1, historySize);
  }

  // ---------------------------------------------------------------- resolution

  resolve(sel: ResourceSelector): Resolved {
    if ('resource' in sel) {
      const def = this.registry.lookup(sel);
      if (!def) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource', { group: sel.group, kind: sel.resource });
      return { def, version: sel.version };
    }
    const found = this.registry.byKind(sel.apiVersion, sel.kind);
    if (!found) {
      throw new ApiError(404, 'NotFound', `no matches for kind "${sel.kind}" in version "${sel.apiVersion}"`);
    }
    return found;
  }

  currentResourceVersion(): string {
    return String(this.rv);
  }

  // ---------------------------------------------------------------- reads

  get(sel: ResourceSelector, key: ObjectKey): StoredObject | undefined {
    const { def, version } = this.resolve(sel);
    const obj = this.raw(def, key.namespace, key.name);
    return obj ? this.present(obj, def, version) : undefined;
  }

  /** Like `get` but throws the API's NotFound. */
  read(sel: ResourceSelector, key: ObjectKey): StoredObject {
    const { def } = this.resolve(sel);
    const obj = this.get(sel, key);
    if (!obj) throw notFound(def.group, def.resource, key.name);
    return obj;
  }

  list(sel: ResourceSelector, opts: ListOptions = {}): StoredObject[] {
    return this.listPage(sel, opts).items;
  }

  listPage(sel: ResourceSelector, opts: ListPageOptions = {}): ListPage {
    const { def, version } = this.resolve(sel);
    const match = combine(labelSelector(opts.labelSelector), fieldSelector(opts.fieldSelector));
    const entries = [...(this.data.get(storageKeyOf(def)) ?? new Map<string, StoredObject>()).entries()]
      .filter(([, o]) => !def.namespaced || opts.namespace === undefined || o.metadata.namespace === opts.namespace)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    let start = 0;
    if (opts.continue) {
      const after = decodeContinue(opts.continue);
      start = entries.findIndex(([k]) => k > after);
      if (start < 0) start = entries.length;
    }
    const items: StoredObject[] = [];
    let i = start;
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    let lastKey = '';
    for (; i < entries.length && items.length < limit; i++) {
      const entry = entries[i];
      if (!entry) continue;
      const [k, o] = entry;
      if (match(o)) {
        items.push(this.present(o, def, version));
        lastKey = k;
      }
    }
    const page: ListPage = { items, resourceVersion: this.currentResourceVersion() };
    if (items.length >= limit) {
      const remaining = entries.slice(i).filter(([, o]) => match(o)).length;
      if (remaining > 0) {
        page.continue = encodeContinue(lastKey);
        page.remainingItemCount = remaining;
      }
    }
    return page;
  }

  /** Every stored object of a resource, unfiltered and uncloned (RBAC and GC read through this). */
  rawAll(group: string, resource: string): StoredObject[] {
    return [...(this.data.get(`${group}/${resource}`)?.values() ?? [])];
  }

  podLog(namespace: string, name: string): string {
    return this.logs.get(objectKey(namespace, name)) ?? '';
  }

  /** Simulated controllers set what `pods/log` returns. */
  setPodLog(namespace: string, name: string, text: string): void {
    this.logs.set(objectKey(namespace, name), text);
  }

  // ---------------------------------------------------------------- writes

  create(sel: ResourceSelector, obj: KubeObject, opts: WriteOptions = {}): StoredObject {
    const { def, version } = this.resolve(sel);
    return this.createIn(def, version, obj, obj.metadata?.namespace, opts);
  }

  /** Create with the namespace from the URL (HTTP path). */
  createIn(def: ResourceDef, version: string, input: KubeObject, urlNamespace: string | undefined, opts: WriteOptions = {}): StoredObject {
    if (def.virtual) throw badRequest(`${def.resource} cannot be stored`);
    const obj = clone<KubeObject>(input);
    this.checkTypeMeta(def, version, obj);
    const meta = { ...(obj.metadata ?? {}) };
    const namespace = this.namespaceFor(def, meta.namespace, urlNamespace);
    if (!meta.name) {
      if (meta.generateName) meta.name = meta.generateName + randomSuffix();
      else throw invalid(def.group, def.kind, '', [{ field: 'metadata.name', message: 'Required value: name or generateName is required', reason: 'FieldValueRequired' }]);
    }
    const name = meta.name;
    this.checkName(def, name);
    if (namespace !== undefined) this.checkNamespaceWritable(def, namespace);
    if (this.raw(def, namespace, name)) throw alreadyExists(def.group, def.resource, name);

    const stored: StoredObject = {
      ...obj,
      apiVersion: apiVersionOf(def.group, version),
      kind: def.kind,
      metadata: {
        ...meta,
        name,
        uid: randomUUID(),
        resourceVersion: '',
        creationTimestamp: timestamp(),
      },
    };
    if (namespace !== undefined) stored.metadata.namespace = namespace;
    else delete stored.metadata.namespace;
    delete stored.metadata.deletionTimestamp;
    delete stored.metadata.deletionGracePeriodSeconds;
    delete stored.metadata.managedFields;
    delete stored.metadata.selfLink;
    if (def.subresources.includes('status')) delete stored.status;
    if (def.crdName !== undefined || 'spec' in stored) stored.metadata.generation = 1;
    else delete stored.metadata.generation;
    this.admit(def, version, stored, undefined);
    opts.validate?.(stored, undefined);
    if (opts.dryRun) return this.present(stored, def, version);
    this.put(def, stored, 'ADDED');
    return this.present(stored, def, version);
  }

  update(sel: ResourceSelector, obj: KubeObject, opts: WriteOptions = {}): StoredObject {
    const { def, version } = this.resolve(sel);
    const name = obj.metadata?.name;
    if (!name) throw badRequest('metadata.name is required');
    return this.updateIn(def, version, obj, obj.metadata?.namespace, name, opts);
  }

  updateStatus(sel: ResourceSelector, obj: KubeObject): StoredObject {
    return this.update(sel, obj, { subresource: 'status' });
  }

  updateIn(
    def: ResourceDef,
    version: string,
    input: KubeObject,
    urlNamespace: string | undefined,
    urlName: string,
    opts: WriteOptions = {},
  ): StoredObject {
    if (def.virtual) throw badRequest(`${def.resource} cannot be updated`);
    const obj = clone<KubeObject>(input);
    this.checkTypeMeta(def, version, obj);
    const namespace = this.namespaceFor(def, obj.metadata?.namespace, urlNamespace);
    if (obj.metadata?.name !== undefined && obj.metadata.name !== urlName) {
      throw badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${urlName})`);
    }
    const existing = this.raw(def, namespace, urlName);
    if (!existing) throw notFound(def.group, def.resource, urlName);
    const wantRv = obj.metadata?.resourceVersion;
    if (wantRv !== undefined && wantRv !== '' && wantRv !== existing.metadata.resourceVersion) {
      throw staleConflict(def.group, def.resource, urlName);
    }
    if (obj.metadata?.uid !== undefined && obj.metadata.uid !== '' && obj.metadata.uid !== existing.metadata.uid) {
      throw conflict(def.group, def.resource, urlName, `Precondition failed: UID in precondition: ${obj.metadata.uid}, UID in object meta: ${existing.metadata.uid}`);
    }

    let next: StoredObject;
    if (opts.subresource === 'status') {
      next = clone(existing);
      if (obj.status === undefined) delete next.status;
      else next.status = obj.status;
    } else {
      const meta = obj.metadata ?? {};
      next = {
        ...obj,
        apiVersion: apiVersionOf(def.group, version),
        kind: def.kind,
        metadata: {
          ...meta,
          name: urlName,
          uid: existing.metadata.uid,
          resourceVersion: existing.metadata.resourceVersion,
          creationTimestamp: existing.metadata.creationTimestamp,
        },
      };
      if (namespace !== undefined) next.metadata.namespace = namespace;
      else delete next.metadata.namespace;
      delete next.metadata.managedFields;
      delete next.metadata.selfLink;
      copyIfPresent(existing.metadata, next.metadata, 'deletionTimestamp');
      copyIfPresent(existing.metadata, next.metadata, 'deletionGracePeriodSeconds');
      copyIfPresent(existing.metadata, next.metadata, 'generation');
      if (def.subresources.includes('status')) {
        if (existing.status === undefined) delete next.status;
        else next.status = clone(existing.status);
      }
      if (existing.metadata.deletionTimestamp !== undefined) {
        // A terminating object may only lose finalizers, never gain new ones.
        const added = (next.metadata.finalizers ?? []).filter((f) => !(existing.metadata.finalizers ?? []).includes(f));
        if (added.length > 0) {
          throw invalid(def.group, def.kind, urlName, [{ field: 'metadata.finalizers', message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}` }]);
        }
      }
    }
    this.admit(def, version, next, existing);
    opts.validate?.(next, existing);
    if (opts.subresource !== 'status' && next.metadata.generation !== undefined && specPart(next) !== specPart(existing)) {
      next.metadata.generation = (existing.metadata.generation ?? 1) + 1;
    }
    // The real server skips no-op writes: no new resourceVersion, no watch event.
    const sameAsBefore = deepEqual({ ...next, apiVersion: existing.apiVersion }, existing);
    if (sameAsBefore || opts.dryRun) return this.present(opts.dryRun ? next : existing, def, version);
    if (next.metadata.deletionTimestamp !== undefined && (next.metadata.finalizers ?? []).length === 0) {
      // Removing the last finalizer of a terminating object deletes it: watchers see only DELETED.
      this.remove(def, next);
      return this.present(next, def, version);
    }
    this.put(def, next, 'MODIFIED', existing);
    return this.present(next, def, version);
  }

  patch(sel: ResourceSelector, key: ObjectKey, patchType: string, body: unknown, opts: WriteOptions = {}): StoredObject {
    const { def, version } = this.resolve(sel);
    return this.patchIn(def, version, key.namespace, key.name, patchType, body, opts);
  }

  patchMerge(sel: ResourceSelector, key: ObjectKey, body: unknown, opts: WriteOptions = {}): StoredObject {
    return this.patch(sel, key, PatchType.Merge, body, opts);
  }

  patchIn(
    def: ResourceDef,
    version: string,
    namespace: string | undefined,
    name: string,
    patchType: string,
    body: unknown,
    opts: WriteOptions = {},
  ): StoredObject {
    if (patchType === PatchType.Strategic && def.crdName !== undefined) throw unsupportedMediaType(patchType);
    const ns = def.namespaced ? (namespace ?? 'default') : undefined;
    const existing = this.raw(def, ns, name);
    if (!existing) throw notFound(def.group, def.resource, name);
    const current = this.present(existing, def, version);
    const patched = applyPatch(patchType, current, body) as KubeObject;
    if (patched === null || typeof patched !== 'object' || Array.isArray(patched)) throw badRequest('patch produced a non-object');
    const meta = (patched.metadata ?? {}) as Record<string, unknown>;
    if (meta.name !== undefined && meta.name !== name) throw badRequest(`metadata.name: Invalid value: "${JSON.stringify(meta.name)}": field is immutable`);
    return this.updateIn(def, version, patched, ns, name, opts);
  }

  delete(sel: ResourceSelector, key: ObjectKey, opts: DeleteOptions = {}): StoredObject {
    const { def, version } = this.resolve(sel);
    return this.deleteIn(def, version, key.namespace, key.name, opts);
  }

  deleteIn(def: ResourceDef, version: string, namespace: string | undefined, name: string, opts: DeleteOptions = {}): StoredObject {
    const ns = def.namespaced ? (namespace ?? 'default') : undefined;
    const existing = this.raw(def, ns, name);
    if (!existing) throw notFound(def.group, def.resource, name);
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== existing.metadata.uid) {
      throw conflict(def.group, def.resource, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${existing.metadata.uid}`);
    }
    if (pre?.resourceVersion && pre.resourceVersion !== existing.metadata.resourceVersion) {
      throw conflict(def.group, def.resource, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${existing.metadata.resourceVersion}`);
    }
    if (opts.dryRun) return this.present(existing, def, version);
    const policy = opts.propagationPolicy ?? 'Background';
    if (policy === 'Orphan') this.orphanDependents(existing);

    const finalizers = [...(existing.metadata.finalizers ?? [])];
    let dependents = policy === 'Foreground' ? this.dependentsOf(existing.metadata.uid) : [];
    if (policy === 'Foreground' && dependents.length > 0 && !finalizers.includes('foregroundDeletion')) finalizers.push('foregroundDeletion');
    if (finalizers.length > 0) {
      if (existing.metadata.deletionTimestamp !== undefined && deepEqual(finalizers, existing.metadata.finalizers ?? [])) {
        return this.present(existing, def, version);
      }
      const next = clone(existing);
      next.metadata.deletionTimestamp ??= timestamp();
      next.metadata.deletionGracePeriodSeconds ??= 0;
      next.metadata.finalizers = finalizers;
      this.put(def, next, 'MODIFIED', existing);
      if (policy === 'Foreground') {
        for (const d of dependents) this.deleteStored(d, 'Foreground');
        dependents = this.dependentsOf(existing.metadata.uid);
        if (dependents.length === 0) this.releaseForeground(next.metadata.uid);
      }
      const after = this.rawByUid(existing.metadata.uid);
      return this.present(after ?? next, def, version);
    }
    this.remove(def, existing);
    return this.present(existing, def, version);
  }

  deleteCollection(sel: ResourceSelector, opts: ListOptions & DeleteOptions = {}): StoredObject[] {
    const { def, version } = this.resolve(sel);
    return this.deleteCollectionIn(def, version, opts);
  }

  deleteCollectionIn(def: ResourceDef, version: string, opts: ListOptions & DeleteOptions): StoredObject[] {
    const targets = this.listPage({ group: def.group, version, resource: def.resource }, opts).items;
    const out: StoredObject[] = [];
    for (const t of targets) {
      try {
        out.push(this.deleteIn(def, version, t.metadata.namespace, t.metadata.name, opts));
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 404)) throw err;
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- watching

  /** Raw change feed, in resourceVersion order. */
  onEvent(listener: (e: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** In-process watch: events for one resource, filtered like an HTTP watch. Returns an unsubscribe function. */
  subscribe(filter: SubscribeFilter, cb: (e: WatchEvent) => void): () => void {
    const { def, version } = this.resolve(filter.resource);
    const match = this.watchMatcher(def, filter);
    return this.onEvent((e) => {
      const out = translateEvent(e, def, version, match);
      if (out) cb(out);
    });
  }

  watchMatcher(def: ResourceDef, filter: ListOptions & { name?: string }): Selector {
    const parts: Selector[] = [labelSelector(filter.labelSelector), fieldSelector(filter.fieldSelector)];
    if (def.namespaced && filter.namespace !== undefined) parts.push((o) => o.metadata?.namespace === filter.namespace);
    if (filter.name !== undefined) parts.push((o) => o.metadata?.name === filter.name);
    return combine(...parts);
  }

  /** Changes after `resourceVersion` for one resource, or throws 410 Expired when the ring no longer reaches back. */
  eventsSince(def: ResourceDef, resourceVersion: number): StoreEvent[] {
    if (resourceVersion < this.compactedRv) {
      throw gone(`too old resource version: ${resourceVersion} (${this.compactedRv + 1})`);
    }
    const key = storageKeyOf(def);
    return this.history.filter((e) => e.resourceVersion > resourceVersion && e.storageKey === key);
  }

  present(obj: StoredObject, def: ResourceDef, version: string): StoredObject {
    const out = clone(obj);
    out.apiVersion = apiVersionOf(def.group, version);
    return out;
  }

  // ---------------------------------------------------------------- internals

  private raw(def: ResourceDef, namespace: string | undefined, name: string): StoredObject | undefined {
    return this.data.get(storageKeyOf(def))?.get(objectKey(def.namespaced ? namespace : undefined, name));
  }

  private rawByUid(uid: string): StoredObject | undefined {
    const loc = this.byUid.get(uid);
    return loc ? this.data.get(loc.storageKey)?.get(loc.key) : undefined;
  }

  private checkTypeMeta(def: ResourceDef, version: string, obj: KubeObject): void {
    if (obj.kind !== undefined && obj.kind !== '' && obj.kind !== def.kind) {
      throw badRequest(`the kind of the object (${String(obj.kind)}) does not match the resource (${def.kind})`);
    }
    if (obj.apiVersion !== undefined && obj.apiVersion !== '') {
      const { group } = splitApiVersion(obj.apiVersion);
      if (group !== def.group) throw badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersionOf(def.group, version)})`);
    }
  }

  private namespaceFor(def: ResourceDef, bodyNs: string | undefined, urlNs: string | undefined): string | undefined {
    if (!def.namespaced) return undefined;
    if (urlNs !== undefined && bodyNs !== undefined && bodyNs !== '' && bodyNs !== urlNs) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    return urlNs ?? (bodyNs || 'default');
  }

  private checkName(def: ResourceDef, name: string): void {
    const rbac = def.group === 'rbac.authorization.k8s.io';
    const ok = rbac ? name !== '.' && name !== '..' && !/[/%]/.test(name) : name.length <= 253 && DNS_SUBDOMAIN.test(name);
    if (!ok) {
      throw invalid(def.group, def.kind, name, [
        {
          field: 'metadata.name',
          message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
        },
      ]);
    }
  }

  private checkNamespaceWritable(def: ResourceDef, namespace: string): void {
    const ns = this.data.get('/namespaces')?.get(objectKey(undefined, namespace));
    if (!ns) throw notFound('', 'namespaces', namespace);
    if (ns.metadata.deletionTimestamp !== undefined) {
      throw new ApiError(403, 'Forbidden', `${def.resource} is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`, {
        kind: def.resource,
        group: def.group,
      });
    }
  }

  /** Per-kind admission: defaults, derived fields, CRD schema checks. */
  private admit(def: ResourceDef, version: string, obj: StoredObject, existing: StoredObject | undefined): void {
    const key = storageKeyOf(def);
    if (key === '/namespaces') {
      obj.status = { phase: obj.metadata.deletionTimestamp ? 'Terminating' : 'Active' };
      obj.spec = { finalizers: ['kubernetes'], ...(obj.spec as object | undefined) };
    } else if (key === '/pods' && !existing && obj.status === undefined) {
      obj.status = { phase: 'Pending' };
    } else if (key === '/secrets') {
      const stringData = obj.stringData as Record<string, string> | undefined;
      if (stringData) {
        const data = { ...((obj.data as Record<string, string> | undefined) ?? {}) };
        for (const [k, v] of Object.entries(stringData)) data[k] = Buffer.from(String(v)).toString('base64');
        obj.data = data;
        delete obj.stringData;
      }
      obj.type ??= 'Opaque';
    } else if (key === 'apiextensions.k8s.io/customresourcedefinitions') {
      this.admitCrd(obj);
    }
    if (def.crdName !== undefined) {
      const schema = this.schemas.get(key)?.get(version);
      if (schema) {
        const causes: FieldCause[] = schema.admit(obj);
        if (causes.length > 0) throw invalid(def.group, def.kind, obj.metadata.name, causes);
      }
    }
  }

  private admitCrd(obj: StoredObject): void {
    const spec = (obj.spec ?? {}) as CrdSpec;
    const causes: FieldCause[] = [];
    const names = spec.names ?? ({} as CrdSpec['names']);
    if (!spec.group) causes.push({ field: 'spec.group', message: 'Required value' });
    if (!names.plural) causes.push({ field: 'spec.names.plural', message: 'Required value' });
    if (!names.kind) causes.push({ field: 'spec.names.kind', message: 'Required value' });
    if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') {
      causes.push({ field: 'spec.scope', message: `Unsupported value: ${JSON.stringify(spec.scope ?? '')}: supported values: "Cluster", "Namespaced"` });
    }
    const versions = spec.versions ?? [];
    if (versions.length === 0) causes.push({ field: 'spec.versions', message: 'Invalid value: must have exactly one version marked as storage version' });
    else if (versions.filter((v) => v.storage).length !== 1) {
      causes.push({ field: 'spec.versions', message: 'Invalid value: must have exactly one version marked as storage version' });
    }
    if (spec.group && names.plural && obj.metadata.name !== `${names.plural}.${spec.group}`) {
      causes.push({ field: 'metadata.name', message: `Invalid value: "${obj.metadata.name}": must be spec.names.plural+"."+spec.group` });
    }
    if (causes.length > 0) throw invalid('apiextensions.k8s.io', 'CustomResourceDefinition', obj.metadata.name, causes);
    const now = timestamp();
    obj.status = {
      conditions: [
        { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found', lastTransitionTime: now },
        { type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted', lastTransitionTime: now },
      ],
      acceptedNames: { ...names, singular: names.singular ?? names.kind.toLowerCase(), listKind: names.listKind ?? `${names.kind}List` },
      storedVersions: versions.filter((v) => v.storage).map((v) => v.name),
    };
  }

  private registerCrd(obj: StoredObject): void {
    const spec = obj.spec as CrdSpec;
    const served = spec.versions.filter((v) => v.served !== false);
    const versions = sortVersions(served.map((v) => v.name));
    const printerColumns: Record<string, PrinterColumn[]> = {};
    const schemas = new Map<string, CompiledSchema>();
    for (const v of served) {
      printerColumns[v.name] = v.additionalPrinterColumns ?? [];
      schemas.set(v.name, compileSchema(v.schema?.openAPIV3Schema));
    }
    const hasStatus = served.some((v) => v.subresources?.status !== undefined);
    const def: ResourceDef = {
      group: spec.group,
      versions,
      resource: spec.names.plural,
      singular: spec.names.singular ?? spec.names.kind.toLowerCase(),
      kind: spec.names.kind,
      listKind: spec.names.listKind ?? `${spec.names.kind}List`,
      namespaced: spec.scope === 'Namespaced',
      shortNames: spec.names.shortNames ?? [],
      categories: spec.names.categories ?? [],
      verbs: ['delete', 'deletecollection', 'get', 'list', 'patch', 'create', 'update', 'watch'],
      subresources: hasStatus ? ['status'] : [],
      crdName: obj.metadata.name,
      printerColumns,
    };
    this.registry.add(def);
    this.schemas.set(storageKeyOf(def), schemas);
  }

  private unregisterCrd(obj: StoredObject): void {
    const spec = obj.spec as CrdSpec;
    const def = this.registry.byGroupResource(spec.group, spec.names.plural);
    if (!def || def.crdName !== obj.metadata.name) return;
    for (const o of this.rawAll(def.group, def.resource)) this.remove(def, o);
    this.registry.remove(def.group, def.resource);
    this.schemas.delete(storageKeyOf(def));
  }

  private put(def: ResourceDef, obj: StoredObject, type: 'ADDED' | 'MODIFIED', old?: StoredObject): void {
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    const storageKey = storageKeyOf(def);
    let bucket = this.data.get(storageKey);
    if (!bucket) {
      bucket = new Map();
      this.data.set(storageKey, bucket);
    }
    const key = objectKey(obj.metadata.namespace, obj.metadata.name);
    bucket.set(key, obj);
    this.byUid.set(obj.metadata.uid, { storageKey, key });
    if (storageKey === 'apiextensions.k8s.io/customresourcedefinitions') this.registerCrd(obj);
    const event: StoreEvent = { type, storageKey, resourceVersion: this.rv, object: clone(obj) };
    if (old) event.oldObject = clone(old);
    this.emit(event);
  }

  /** Takes an object out of the store for good and lets the garbage collector follow. */
  private remove(def: ResourceDef, obj: StoredObject): void {
    const storageKey = storageKeyOf(def);
    const key = objectKey(obj.metadata.namespace, obj.metadata.name);
    const bucket = this.data.get(storageKey);
    const current = bucket?.get(key);
    if (!bucket || !current || current.metadata.uid !== obj.metadata.uid) return;
    bucket.delete(key);
    this.byUid.delete(current.metadata.uid);
    this.logs.delete(key);
    this.rv++;
    const gone = clone(obj);
    gone.metadata.resourceVersion = String(this.rv);
    this.emit({ type: 'DELETED', storageKey, resourceVersion: this.rv, object: gone });

    if (storageKey === 'apiextensions.k8s.io/customresourcedefinitions') this.unregisterCrd(current);
    if (storageKey === '/namespaces') this.emptyNamespace(current.metadata.name);
    // Background garbage collection: dependents whose every owner is gone follow their owner.
    for (const d of this.dependentsOf(current.metadata.uid)) {
      const owners = d.metadata.ownerReferences ?? [];
      if (owners.every((o) => !this.byUid.has(o.uid))) this.deleteStored(d, 'Background');
    }
    for (const o of current.metadata.ownerReferences ?? []) {
      const owner = this.rawByUid(o.uid);
      if (owner?.metadata.finalizers?.includes('foregroundDeletion') && this.dependentsOf(o.uid).length === 0) {
        this.releaseForeground(o.uid);
      }
    }
  }

  private releaseForeground(uid: string): void {
    const owner = this.rawByUid(uid);
    if (!owner) return;
    const def = this.defOfStored(owner);
    if (!def) return;
    const next = clone(owner);
    next.metadata.finalizers = (owner.metadata.finalizers ?? []).filter((f) => f !== 'foregroundDeletion');
    if (next.metadata.finalizers.length === 0) {
      delete next.metadata.finalizers;
      this.remove(def, next);
    } else {
      this.put(def, next, 'MODIFIED', owner);
    }
  }

  private emptyNamespace(namespace: string): void {
    for (const def of [...this.registry.all()]) {
      if (!def.namespaced) continue;
      for (const o of this.rawAll(def.group, def.resource)) {
        if (o.metadata.namespace === namespace) this.remove(def, o);
      }
    }
  }

  private defOfStored(obj: StoredObject): ResourceDef | undefined {
    const loc = this.byUid.get(obj.metadata.uid);
    if (!loc) return undefined;
    const slash = loc.storageKey.indexOf('/');
    return this.registry.byGroupResource(loc.storageKey.slice(0, slash), loc.storageKey.slice(slash + 1));
  }

  private dependentsOf(uid: string): StoredObject[] {
    const out: StoredObject[] = [];
    for (const bucket of this.data.values()) {
      for (const o of bucket.values()) {
        if (o.metadata.ownerReferences?.some((r) => r.uid === uid)) out.push(o);
      }
    }
    return out;
  }

  private deleteStored(obj: StoredObject, policy: PropagationPolicy): void {
    const def = this.defOfStored(obj);
    if (!def) return;
    try {
      this.deleteIn(def, def.versions[0] ?? 'v1', obj.metadata.namespace, obj.metadata.name, { propagationPolicy: policy });
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 404)) throw err;
    }
  }

  private orphanDependents(owner: StoredObject): void {
    for (const d of this.dependentsOf(owner.metadata.uid)) {
      const def = this.defOfStored(d);
      if (!def) continue;
      const next = clone(d);
      next.metadata.ownerReferences = (d.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid);
      if (next.metadata.ownerReferences.length === 0) delete next.metadata.ownerReferences;
      this.put(def, next, 'MODIFIED', d);
    }
  }

  private emit(event: StoreEvent): void {
    this.history.push(event);
    if (this.history.length > this.historySize) {
      const drop = this.history.length - this.historySize;
      const last = this.history[drop - 1];
      if (last) this.compactedRv = last.resourceVersion;
      this.history = this.history.slice(drop);
    }
    // Queue so that listeners writing back into the store still see events in resourceVersion order.
    this.pending.push(event);
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      for (let e = this.pending.shift(); e; e = this.pending.shift()) {
        for (const l of [...this.listeners]) l(e);
      }
    } finally {
      this.dispatching = false;
    }
  }

  // ---------------------------------------------------------------- persistence

  snapshot(): { resourceVersion: number; objects: StoredObject[] } {
    const objects: StoredObject[] = [];
    const crds = this.rawAll('apiextensions.k8s.io', 'customresourcedefinitions');
    objects.push(...crds);
    for (const [key, bucket] of this.data) {
      if (key === 'apiextensions.k8s.io/customresourcedefinitions') continue;
      objects.push(...bucket.values());
    }
    return { resourceVersion: this.rv, objects: clone(objects) };
  }

  /** Loads a snapshot verbatim (uids and resourceVersions kept); CRDs are registered as they load. */
  restore(snap: { resourceVersion: number; objects: StoredObject[] }): void {
    for (const obj of snap.objects) {
      const found = this.registry.byKind(obj.apiVersion, obj.kind);
      if (!found) continue;
      const storageKey = storageKeyOf(found.def);
      let bucket = this.data.get(storageKey);
      if (!bucket) {
        bucket = new Map();
        this.data.set(storageKey, bucket);
      }
      const key = objectKey(obj.metadata.namespace, obj.metadata.name);
      bucket.set(key, obj);
      this.byUid.set(obj.metadata.uid, { storageKey, key });
      if (storageKey === 'apiextensions.k8s.io/customresourcedefinitions') this.registerCrd(obj);
    }
    this.rv = Math.max(this.rv, snap.resourceVersion);
    this.compactedRv = this.rv;
  }
}

interface CrdVersion {
  name: string;
  served?: boolean;
  storage?: boolean;
  schema?: { openAPIV3Schema?: unknown };
  subresources?: { status?: object; scale?: object };
  additionalPrinterColumns?: PrinterColumn[];
}

interface CrdSpec {
  group: string;
  scope: 'Namespaced' | 'Cluster';
  names: { plural: string; singular?: string; kind: string; listKind?: string; shortNames?: string[]; categories?: string[] };
  versions: CrdVersion[];
}

function copyIfPresent(from: Record<string, unknown>, to: Record<string, unknown>, key: string): void {
  if (from[key] === undefined) delete to[key];
  else to[key] = from[key];
}

function randomSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += NAME_CHARS[Math.floor(Math.random() * NAME_CHARS.length)] ?? 'x';
  return s;
}

function encodeContinue(lastKey: string): string {
  return Buffer.from(JSON.stringify({ v: 1, after: lastKey })).toString('base64url');
}

function decodeContinue(token: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof parsed.after === 'string') return parsed.after;
  } catch {
    // fall through
  }
  throw badRequest('invalid continue token');
}

/**
 * Turns a store event into what one watcher should see: filtered by its selector, with objects entering or
 * leaving the selection reported as ADDED/DELETED like the real watch cache does.
 */
export function translateEvent(e: StoreEvent, def: ResourceDef, version: string, match: Selector): WatchEvent | undefined {
  if (e.storageKey !== storageKeyOf(def)) return undefined;
  const show = (o: StoredObject): StoredObject => {
    const out = clone(o);
    out.apiVersion = apiVersionOf(def.group, version);
    return out;
  };
  const now = match(e.object);
  if (e.type !== 'MODIFIED') return now ? { type: e.type, object: show(e.object) } : undefined;
  const before = e.oldObject ? match(e.oldObject) : now;
  if (now && before) return { type: 'MODIFIED', object: show(e.object) };
  if (now && !before) return { type: 'ADDED', object: show(e.object) };
  if (!now && before) return { type: 'DELETED', object: show(e.object) };
  return undefined;
}
