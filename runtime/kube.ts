// The Kubernetes port: the only module that imports @kubernetes/client-node. Functions see a small
// interface with the outcomes they branch on (absent, already exists, conflict) as values or typed
// errors, never raw client exceptions.
import * as k8s from '@kubernetes/client-node';
import { ForbiddenError, LifecycleError, missingPermission } from './errors.ts';

export interface ResourceDescriptor {
  readonly apiVersion: string;
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    generateName?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;
    creationTimestamp?: string | Date;
    deletionTimestamp?: string | Date;
    finalizers?: string[];
  };
  [key: string]: unknown;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
}

export interface ListPage<T> {
  items: T[];
  continue?: string;
  resourceVersion?: string;
}

export interface DeleteOptions {
  namespace?: string;
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  /** Delete only this version of the object: a stale one throws ConflictError. */
  preconditions?: { resourceVersion?: string; uid?: string };
}

export type CreateResult<T> = { created: true; object: T } | { created: false; reason: 'AlreadyExists' };

export interface KubePort {
  readonly namespace: string;
  get<T extends KubeObject>(res: ResourceDescriptor, name: string, namespace?: string): Promise<T | undefined>;
  list<T extends KubeObject>(res: ResourceDescriptor, opts?: ListOptions): Promise<ListPage<T>>;
  /** Every page of a list (limit/continue), so memory and calls stay O(N/page). */
  listAll<T extends KubeObject>(res: ResourceDescriptor, opts?: Omit<ListOptions, 'continue' | 'limit'> & { pageSize?: number }): Promise<T[]>;
  /** Create; an existing object with the same name is a value, not an error (idempotent effects). */
  create<T extends KubeObject>(res: ResourceDescriptor, obj: T): Promise<CreateResult<T>>;
  /** Replace with optimistic concurrency: throws ConflictError on a stale resourceVersion. */
  replace<T extends KubeObject>(res: ResourceDescriptor, obj: T): Promise<T>;
  /** RFC 7386 merge patch of the object or its status subresource; undefined when the object is gone. */
  mergePatch<T extends KubeObject>(res: ResourceDescriptor, name: string, patch: object, opts?: { namespace?: string; subresource?: 'status' }): Promise<T | undefined>;
  /** RFC 6902 JSON patch (custom resources); a failed `test` op throws ConflictError. */
  jsonPatch<T extends KubeObject>(res: ResourceDescriptor, name: string, ops: object[], opts?: { namespace?: string; subresource?: 'status' }): Promise<T | undefined>;
  /** Delete; false when already gone. */
  delete(res: ResourceDescriptor, name: string, opts?: DeleteOptions): Promise<boolean>;
}

/** Optimistic-concurrency loss: the caller re-reads and decides again (retryable if it escapes). */
export class ConflictError extends LifecycleError {
  constructor(message: string) {
    super('retryable', message);
    this.name = 'ConflictError';
  }
}

export interface KubeConfigSource {
  /** Path of a kubeconfig file; when absent, in-cluster config (service account token) is used. */
  kubeconfigPath?: string | undefined;
  namespace?: string | undefined;
}

export function createKubePort(source: KubeConfigSource): KubePort {
  const kc = new k8s.KubeConfig();
  if (source.kubeconfigPath) kc.loadFromFile(source.kubeconfigPath);
  else kc.loadFromCluster();
  reuseConnections(kc);
  const contextNamespace = kc.getContextObject(kc.getCurrentContext())?.namespace;
  return new ClientNodeKube(kc, source.namespace ?? contextNamespace ?? 'default');
}

const ERROR_BODY_LIMIT = 300;

/**
 * client-node 2.x builds a new undici Agent for every request, so no connection is ever reused: each API call
 * pays a TCP (and on a real cluster a TLS) handshake. One dispatcher per cluster keeps connections alive; the
 * credentials still come from the request context each time (token files are re-read by the client).
 */
function reuseConnections(kc: k8s.KubeConfig): void {
  const target = kc as unknown as { createDispatcher?: (cluster: unknown, options: unknown) => unknown };
  const original = target.createDispatcher?.bind(kc);
  if (!original) return;
  const cache = new Map<string, unknown>();
  target.createDispatcher = (cluster: unknown, options: unknown): unknown => {
    const key = JSON.stringify([(cluster as { server?: string } | null)?.server ?? '', options]);
    if (!cache.has(key)) cache.set(key, original(cluster, options));
    return cache.get(key);
  };
}

class ClientNodeKube implements KubePort {
  readonly namespace: string;
  readonly #objects: k8s.KubernetesObjectApi;
  readonly #custom: k8s.CustomObjectsApi;

  constructor(kc: k8s.KubeConfig, namespace: string) {
    this.namespace = namespace;
    this.#objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    this.#custom = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  async get<T extends KubeObject>(res: ResourceDescriptor, name: string, namespace?: string): Promise<T | undefined> {
    try {
      return (await this.#objects.read(this.#ref(res, name, namespace))) as unknown as T;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw wrap(err, `get ${res.plural}/${name}`);
    }
  }

  async list<T extends KubeObject>(res: ResourceDescriptor, opts: ListOptions = {}): Promise<ListPage<T>> {
    try {
      const ns = res.namespaced ? (opts.namespace ?? this.namespace) : undefined;
      if (isCustomGroup(res) && ns) {
        // KubernetesObjectApi drops `metadata.continue` for custom resources; the custom objects client keeps it.
        const page = (await this.#custom.listNamespacedCustomObject({
          group: res.group, version: res.version, namespace: ns, plural: res.plural,
          ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}),
          ...(opts.fieldSelector ? { fieldSelector: opts.fieldSelector } : {}),
          ...(opts.limit ? { limit: opts.limit } : {}),
          ...(opts.continue ? { _continue: opts.continue } : {}),
        })) as { items?: T[]; metadata?: { continue?: string; resourceVersion?: string } };
        const out: ListPage<T> = { items: page.items ?? [] };
        if (page.metadata?.continue) out.continue = page.metadata.continue;
        if (page.metadata?.resourceVersion) out.resourceVersion = page.metadata.resourceVersion;
        return out;
      }
      const page = await this.#objects.list(res.apiVersion, res.kind, ns, undefined, undefined, undefined,
        opts.fieldSelector, opts.labelSelector, opts.limit, opts.continue);
      const meta = page.metadata ?? {};
      const out: ListPage<T> = { items: page.items as unknown as T[] };
      if (meta._continue) out.continue = meta._continue;
      if (meta.resourceVersion) out.resourceVersion = meta.resourceVersion;
      return out;
    } catch (err) {
      throw wrap(err, `list ${res.plural}`);
    }
  }

  async listAll<T extends KubeObject>(res: ResourceDescriptor, opts: Omit<ListOptions, 'continue' | 'limit'> & { pageSize?: number } = {}): Promise<T[]> {
    const items: T[] = [];
    let token: string | undefined;
    do {
      const page: ListPage<T> = await this.list<T>(res, { ...opts, limit: opts.pageSize ?? 500, ...(token ? { continue: token } : {}) });
      items.push(...page.items);
      token = page.continue;
    } while (token);
    return items;
  }

  async create<T extends KubeObject>(res: ResourceDescriptor, obj: T): Promise<CreateResult<T>> {
    const body = this.#withIdentity(res, obj);
    try {
      return { created: true, object: (await this.#objects.create(body)) as unknown as T };
    } catch (err) {
      if (statusOf(err) === 409 && reasonOf(err) === 'AlreadyExists') return { created: false, reason: 'AlreadyExists' };
      const blocking = (obj.metadata?.ownerReferences ?? []).filter((r) => r.blockOwnerDeletion).map((r) => r.kind);
      throw wrap(err, `create ${res.plural}/${obj.metadata?.name ?? obj.metadata?.generateName ?? ''}`, blocking);
    }
  }

  async replace<T extends KubeObject>(res: ResourceDescriptor, obj: T): Promise<T> {
    try {
      return (await this.#objects.replace(this.#withIdentity(res, obj))) as unknown as T;
    } catch (err) {
      throw wrap(err, `replace ${res.plural}/${obj.metadata?.name ?? ''}`);
    }
  }

  async mergePatch<T extends KubeObject>(res: ResourceDescriptor, name: string, patch: object, opts: { namespace?: string; subresource?: 'status' } = {}): Promise<T | undefined> {
    try {
      if (opts.subresource === 'status') {
        return (await this.#custom.patchNamespacedCustomObjectStatus(
          { ...this.#customRef(res, name, opts.namespace), body: patch },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        )) as T;
      }
      const spec = { ...(patch as Record<string, unknown>), ...this.#ref(res, name, opts.namespace) };
      const meta = (patch as { metadata?: object }).metadata;
      if (meta) spec.metadata = { ...meta, ...this.#ref(res, name, opts.namespace).metadata };
      return (await this.#objects.patch(spec, undefined, undefined, 'model-lifecycle', undefined, k8s.PatchStrategy.MergePatch)) as unknown as T;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw wrap(err, `patch ${res.plural}/${name}`);
    }
  }

  async jsonPatch<T extends KubeObject>(res: ResourceDescriptor, name: string, ops: object[], opts: { namespace?: string; subresource?: 'status' } = {}): Promise<T | undefined> {
    if (!isCustomGroup(res)) {
      throw new Error(`jsonPatch is only wired for custom resources, not ${res.apiVersion} ${res.kind}`);
    }
    const headers = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch);
    try {
      const ref = { ...this.#customRef(res, name, opts.namespace), body: ops };
      const result: unknown = opts.subresource === 'status'
        ? await this.#custom.patchNamespacedCustomObjectStatus(ref, headers)
        : await this.#custom.patchNamespacedCustomObject(ref, headers);
      return result as T;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      if (statusOf(err) === 422) throw new ConflictError(`json patch test failed on ${res.plural}/${name}`);
      throw wrap(err, `patch ${res.plural}/${name}`);
    }
  }

  async delete(res: ResourceDescriptor, name: string, opts: DeleteOptions = {}): Promise<boolean> {
    try {
      const body = opts.preconditions ? { preconditions: opts.preconditions } : undefined;
      await this.#objects.delete(this.#ref(res, name, opts.namespace), undefined, undefined, undefined, undefined, opts.propagationPolicy ?? 'Background', body);
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw wrap(err, `delete ${res.plural}/${name}`);
    }
  }

  #ref(res: ResourceDescriptor, name: string, namespace?: string): k8s.KubernetesObject & { metadata: { name: string; namespace?: string } } {
    return {
      apiVersion: res.apiVersion,
      kind: res.kind,
      metadata: res.namespaced ? { name, namespace: namespace ?? this.namespace } : { name },
    };
  }

  #customRef(res: ResourceDescriptor, name: string, namespace?: string) {
    return { group: res.group, version: res.version, plural: res.plural, namespace: namespace ?? this.namespace, name };
  }

  #withIdentity<T extends KubeObject>(res: ResourceDescriptor, obj: T): k8s.KubernetesObject {
    const metadata = { ...(obj.metadata ?? {}) };
    if (res.namespaced && !metadata.namespace) metadata.namespace = this.namespace;
    return { ...obj, apiVersion: res.apiVersion, kind: res.kind, metadata } as k8s.KubernetesObject;
  }
}

const BUILT_IN_GROUPS = new Set(['', 'apps', 'batch', 'coordination.k8s.io', 'rbac.authorization.k8s.io', 'events.k8s.io', 'policy', 'networking.k8s.io', 'apiextensions.k8s.io']);
const isCustomGroup = (res: ResourceDescriptor): boolean => !BUILT_IN_GROUPS.has(res.group);

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function reasonOf(err: unknown): string | undefined {
  return statusBody(err)?.reason;
}

function statusBody(err: unknown): { reason?: string; message?: string } | undefined {
  const body = (err as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try { return JSON.parse(body) as { reason?: string; message?: string }; } catch { return { message: body }; }
  }
  return typeof body === 'object' && body !== null ? (body) : undefined;
}

/** Map a client-node failure into the taxonomy with a short, secret-free message. */
function wrap(err: unknown, what: string, ownerKinds: readonly string[] = []): LifecycleError {
  const status = statusOf(err);
  if (status === undefined) {
    const msg = err instanceof Error ? err.message : String(err);
    return new LifecycleError('retryable', `${what}: ${msg.slice(0, ERROR_BODY_LIMIT)}`, { cause: err });
  }
  const body = statusBody(err);
  const detail = (body?.message ?? '').slice(0, ERROR_BODY_LIMIT);
  if (status === 409) return new ConflictError(`${what}: conflict: ${detail}`);
  // A 403 is a configuration fault, never a blind retry: say what the Role lacks (runtime/errors.ts).
  if (status === 403) {
    const missing = missingPermission(body?.message ?? '', ownerKinds);
    return new ForbiddenError(`${what}: forbidden: missing ${missing}: ${detail}`, missing, { cause: err });
  }
  if (status === 400 || status === 422) return new LifecycleError('permanent', `${what}: rejected (${status}): ${detail}`, { cause: err });
  return new LifecycleError('retryable', `${what}: kubernetes answered ${status}: ${detail}`, { cause: err });
}
