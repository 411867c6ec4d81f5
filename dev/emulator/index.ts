// Public entry: an in-memory Kubernetes API server on 127.0.0.1 speaking the real REST protocol.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { ApiError } from './errors.ts';
import { Faults } from './faults.ts';
import { Registry, builtinResources } from './registry.ts';
import { ADMIN_GROUP, Authorizer, serviceAccountUser } from './rbac.ts';
import type { UserInfo } from './rbac.ts';
import { createHandler } from './router.ts';
import { reviewResources } from './reviews.ts';
import type { RequestLogEntry } from './router.ts';
import { Store } from './store.ts';
import { NEWEST_KUBE_VERSION, createAdmission } from './admission.ts';
import type { Admission, ClusterProfile, KubeVersion } from './admission.ts';
import type { KubeObject, StoredObject } from './types.ts';

export type { RequestLogEntry } from './router.ts';
export type { FaultRule, FaultVerb } from './faults.ts';
export type { Faults } from './faults.ts';
export type { Store, WatchEvent, SubscribeFilter, WriteOptions, DeleteOptions, ListPage, ListPageOptions } from './store.ts';
export type { KubeObject, StoredObject, ResourceRef, ResourceSelector, ObjectKey, ListOptions, StoreEvent, PropagationPolicy } from './types.ts';
export type { UserInfo } from './rbac.ts';
export { ApiError } from './errors.ts';
export { ClusterProfiles, KubeVersions, NEWEST_KUBE_VERSION, isClusterProfile, isKubeVersion, podSecurityViolations } from './admission.ts';
export type { Admission, ClusterProfile, KubeVersion } from './admission.ts';

export interface EmulatorOptions {
  port?: number;
  host?: string;
  /** Enforce RBAC for non-admin tokens (default true). */
  rbac?: boolean;
  /** Seed of the fault-injection PRNG (default 1). */
  seed?: number;
  /** Load objects from this JSON file at start (if it exists) and write them back on close. */
  statePath?: string;
  /** Watch history ring size: how far back a watch can resume (default 10000 events). */
  historySize?: number;
  /** How often watches that allow bookmarks get one (default 10000 ms). */
  bookmarkIntervalMs?: number;
  /** Serve OpenShift's security.openshift.io review API (default true: `mlops dev` emulates OpenShift). */
  openshiftApis?: boolean;
  /** Largest accepted request body (default 3 MiB, like the real server). */
  maxBodyBytes?: number;
  /**
   * `openshift`: OwnerReferencesPermissionEnforcement and Pod Security `restricted` by default (docs/openshift.md);
   * `kubernetes` (default here): neither (upstream's default enforce level is `privileged`).
   */
  profile?: ClusterProfile;
  /** The Kubernetes minor version the emulator reports and its controllers behave as (default the newest). */
  kubeVersion?: KubeVersion;
}

export interface KubeconfigOptions {
  token?: string;
  namespace?: string;
  context?: string;
}

export interface Emulator {
  url: string;
  port: number;
  adminToken: string;
  store: Store;
  faults: Faults;
  profile: ClusterProfile;
  kubeVersion: KubeVersion;
  admission: Admission;
  requests: RequestLogEntry[];
  resetRequests(): void;
  issueServiceAccountToken(namespace: string, name: string): string;
  kubeconfigYaml(opts?: KubeconfigOptions): string;
  writeKubeconfig(path: string, opts?: KubeconfigOptions): Promise<void>;
  applyManifests(objs: object[]): Promise<void>;
  close(): Promise<void>;
}

const CRD_KIND = 'CustomResourceDefinition';

export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const registry = new Registry([...builtinResources(), ...reviewResources({ openshift: opts.openshiftApis ?? true })]);
  const store = new Store(registry, opts.historySize ?? 10000);
  const faults = new Faults(opts.seed ?? 1);
  const authorizer = new Authorizer(store);
  const users = new Map<string, UserInfo>();
  const adminToken = `admin-${randomBytes(16).toString('hex')}`;
  users.set(adminToken, { name: 'admin', groups: [ADMIN_GROUP, 'system:authenticated'] });
  const requests: RequestLogEntry[] = [];
  const watches = new Set<() => void>();

  let restored = false;
  if (opts.statePath) {
    try {
      const snap = JSON.parse(await readFile(opts.statePath, 'utf8')) as { resourceVersion: number; objects: StoredObject[] };
      store.restore(snap);
      restored = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  if (!restored) {
    for (const name of ['default', 'kube-system', 'kube-public']) store.create({ group: '', version: 'v1', resource: 'namespaces' }, { metadata: { name } });
  }

  const profile = opts.profile ?? 'kubernetes';
  const kubeVersion = opts.kubeVersion ?? NEWEST_KUBE_VERSION;
  const admission = createAdmission(profile, { store, authorizer, rbac: opts.rbac ?? true });
  const handler = createHandler({
    admission,
    kubeVersion,
    store,
    registry,
    authorizer,
    faults,
    rbac: opts.rbac ?? true,
    users,
    log: (e) => requests.push(e),
    bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 10000,
    watches,
    maxBodyBytes: opts.maxBodyBytes ?? 3 * 1024 * 1024,
  });
  const server = createServer(handler);
  server.keepAliveTimeout = 5000;
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const kubeconfigYaml = (k: KubeconfigOptions = {}): string => {
    const context = k.context ?? 'emulator';
    return toYaml({
      apiVersion: 'v1',
      kind: 'Config',
      // The token also rides in the URL path: kubectl sends no credentials to http servers (see router.ts).
      // insecure-skip-tls-verify: client-node refuses plain http without it (there is no TLS to verify).
      clusters: [{ name: 'emulator', cluster: { server: `${url}/auth/${encodeURIComponent(k.token ?? adminToken)}`, 'insecure-skip-tls-verify': true } }],
      users: [{ name: `${context}-user`, user: { token: k.token ?? adminToken } }],
      contexts: [{ name: context, context: { cluster: 'emulator', user: `${context}-user`, namespace: k.namespace ?? 'default' } }],
      'current-context': context,
      preferences: {},
    });
  };

  let closed = false;
  const emulator: Emulator = {
    url,
    port,
    adminToken,
    store,
    faults,
    profile,
    kubeVersion,
    admission,
    requests,
    resetRequests() {
      requests.length = 0;
    },
    issueServiceAccountToken(namespace, name) {
      const token = `sa-${namespace}-${name}-${randomBytes(12).toString('hex')}`;
      users.set(token, serviceAccountUser(namespace, name));
      return token;
    },
    kubeconfigYaml,
    async writeKubeconfig(path, k = {}) {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, kubeconfigYaml(k), { mode: 0o600 });
    },
    applyManifests(objs) {
      const list = objs.filter((o): o is KubeObject => o !== null && typeof o === 'object');
      const ordered = [...list.filter((o) => o.kind === CRD_KIND), ...list.filter((o) => o.kind !== CRD_KIND)];
      try {
        for (const obj of ordered) applyOne(store, obj);
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      return Promise.resolve();
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const stop of [...watches]) stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (opts.statePath) {
        await mkdir(dirname(opts.statePath), { recursive: true });
        await writeFile(opts.statePath, JSON.stringify(store.snapshot()));
      }
    },
  };
  return emulator;
}

/** Create-or-replace as admin; `List` kinds are unpacked. */
function applyOne(store: Store, obj: KubeObject): void {
  if (typeof obj.kind === 'string' && obj.kind.endsWith('List') && Array.isArray(obj.items)) {
    for (const item of obj.items as KubeObject[]) applyOne(store, item);
    return;
  }
  if (!obj.apiVersion || !obj.kind) throw new ApiError(400, 'BadRequest', 'manifest without apiVersion/kind');
  const sel = { apiVersion: obj.apiVersion, kind: obj.kind };
  const { def } = store.resolve(sel);
  const key = { name: obj.metadata?.name ?? '', namespace: def.namespaced ? (obj.metadata?.namespace ?? 'default') : undefined };
  const withNs: KubeObject = def.namespaced ? { ...obj, metadata: { ...obj.metadata, namespace: key.namespace } } : obj;
  const existing = key.name ? store.get(sel, key) : undefined;
  if (existing) {
    const next: KubeObject = { ...withNs, metadata: { ...withNs.metadata, resourceVersion: existing.metadata.resourceVersion } };
    const updated = store.update(sel, next);
    if (obj.status !== undefined && def.subresources.includes('status')) store.updateStatus(sel, { ...updated, status: obj.status });
  } else {
    store.create(sel, withNs);
    if (obj.status !== undefined && def.subresources.includes('status')) {
      const created = store.read(sel, key);
      store.updateStatus(sel, { ...created, status: obj.status });
    }
  }
}
