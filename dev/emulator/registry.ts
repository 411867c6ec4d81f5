// The set of served resources: built-in kinds plus those CRDs add. Discovery documents are built from it.
import type { ResourceRef } from './types.ts';

export interface PrinterColumn {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  format?: string;
  priority?: number;
}

export interface ResourceDef {
  group: string;
  /** Every served version; the first one is the preferred version. */
  versions: string[];
  resource: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  /** Subresources served besides the main resource: `status`, `log`. */
  subresources: string[];
  /** Only `create` is meaningful (SelfSubjectAccessReview-like virtual resources). */
  virtual?: boolean;
  /** Set for resources a CRD defines. */
  crdName?: string;
  printerColumns?: Record<string, PrinterColumn[]>;
}

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function builtin(
  group: string,
  version: string,
  resource: string,
  kind: string,
  namespaced: boolean,
  extra: Partial<ResourceDef> = {},
): ResourceDef {
  return {
    group,
    versions: [version],
    resource,
    singular: kind.toLowerCase(),
    kind,
    listKind: `${kind}List`,
    namespaced,
    shortNames: [],
    categories: [],
    verbs: ALL_VERBS,
    subresources: [],
    ...extra,
  };
}

export function builtinResources(): ResourceDef[] {
  return [
    builtin('', 'v1', 'namespaces', 'Namespace', false, {
      shortNames: ['ns'],
      subresources: ['status'],
      verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    }),
    builtin('', 'v1', 'pods', 'Pod', true, { shortNames: ['po'], categories: ['all'], subresources: ['status', 'log'] }),
    builtin('', 'v1', 'events', 'Event', true, { shortNames: ['ev'] }),
    builtin('', 'v1', 'configmaps', 'ConfigMap', true, { shortNames: ['cm'] }),
    builtin('', 'v1', 'secrets', 'Secret', true),
    builtin('', 'v1', 'services', 'Service', true, { shortNames: ['svc'], categories: ['all'], subresources: ['status'] }),
    builtin('', 'v1', 'serviceaccounts', 'ServiceAccount', true, { shortNames: ['sa'] }),
    builtin('', 'v1', 'persistentvolumeclaims', 'PersistentVolumeClaim', true, { shortNames: ['pvc'], subresources: ['status'] }),
    builtin('batch', 'v1', 'jobs', 'Job', true, { categories: ['all'], subresources: ['status'] }),
    builtin('apps', 'v1', 'deployments', 'Deployment', true, { shortNames: ['deploy'], categories: ['all'], subresources: ['status'] }),
    builtin('coordination.k8s.io', 'v1', 'leases', 'Lease', true),
    builtin('networking.k8s.io', 'v1', 'networkpolicies', 'NetworkPolicy', true, { shortNames: ['netpol'] }),
    builtin('rbac.authorization.k8s.io', 'v1', 'roles', 'Role', true),
    builtin('rbac.authorization.k8s.io', 'v1', 'rolebindings', 'RoleBinding', true),
    builtin('rbac.authorization.k8s.io', 'v1', 'clusterroles', 'ClusterRole', false),
    builtin('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings', 'ClusterRoleBinding', false),
    builtin('authorization.k8s.io', 'v1', 'selfsubjectaccessreviews', 'SelfSubjectAccessReview', false, {
      verbs: ['create'],
      virtual: true,
    }),
    builtin('apiextensions.k8s.io', 'v1', 'customresourcedefinitions', 'CustomResourceDefinition', false, {
      shortNames: ['crd', 'crds'],
      categories: ['api-extensions'],
      subresources: ['status'],
    }),
  ];
}

/** Group order in `/apis`: built-in groups first, then CRD groups in the order they appeared. */
export class Registry {
  private readonly defs: ResourceDef[] = [];

  constructor(defs: ResourceDef[]) {
    for (const d of defs) this.defs.push(d);
  }

  all(): readonly ResourceDef[] {
    return this.defs;
  }

  add(def: ResourceDef): void {
    this.remove(def.group, def.resource);
    this.defs.push(def);
  }

  remove(group: string, resource: string): void {
    const i = this.defs.findIndex((d) => d.group === group && d.resource === resource);
    if (i >= 0) this.defs.splice(i, 1);
  }

  /** Resolve a URL's group/version/resource. */
  lookup(ref: ResourceRef): ResourceDef | undefined {
    return this.defs.find((d) => d.group === ref.group && d.resource === ref.resource && d.versions.includes(ref.version));
  }

  byGroupResource(group: string, resource: string): ResourceDef | undefined {
    return this.defs.find((d) => d.group === group && d.resource === resource);
  }

  byKind(apiVersion: string, kind: string): { def: ResourceDef; version: string } | undefined {
    const { group, version } = splitApiVersion(apiVersion);
    const def = this.defs.find((d) => d.group === group && d.kind === kind && d.versions.includes(version));
    return def ? { def, version } : undefined;
  }

  groups(): { name: string; versions: string[] }[] {
    const out = new Map<string, Set<string>>();
    for (const d of this.defs) {
      if (d.group === '') continue;
      let vs = out.get(d.group);
      if (!vs) {
        vs = new Set();
        out.set(d.group, vs);
      }
      for (const v of d.versions) vs.add(v);
    }
    return [...out.entries()].map(([name, vs]) => ({ name, versions: sortVersions([...vs]) }));
  }

  inGroupVersion(group: string, version: string): ResourceDef[] {
    return this.defs.filter((d) => d.group === group && d.versions.includes(version));
  }
}

export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf('/');
  if (slash < 0) return { group: '', version: apiVersion };
  return { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

export function apiVersionOf(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

/** Kubernetes version priority: GA > beta > alpha, higher numbers first. */
export function sortVersions(versions: string[]): string[] {
  const rank = (v: string): [number, number, number] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [0, 0, 0];
    const stability = m[2] === undefined ? 3 : m[2] === 'beta' ? 2 : 1;
    return [stability, Number(m[1]), Number(m[3] ?? 0)];
  };
  return [...versions].sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    for (let i = 0; i < 3; i++) {
      const diff = (rb[i] ?? 0) - (ra[i] ?? 0);
      if (diff !== 0) return diff;
    }
    return a.localeCompare(b);
  });
}

// ---- discovery documents ----

export function coreApiVersions(): object {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }],
  };
}

function groupDoc(g: { name: string; versions: string[] }): object {
  const versions = g.versions.map((v) => ({ groupVersion: `${g.name}/${v}`, version: v }));
  return { name: g.name, versions, preferredVersion: versions[0] };
}

export function apiGroupList(registry: Registry): object {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: registry.groups().map(groupDoc) };
}

export function apiGroup(registry: Registry, group: string): object | undefined {
  const g = registry.groups().find((x) => x.name === group);
  return g ? { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(g) } : undefined;
}

export function apiResourceList(registry: Registry, group: string, version: string): object | undefined {
  const defs = registry.inGroupVersion(group, version);
  if (defs.length === 0) return undefined;
  const resources: object[] = [];
  for (const d of defs) {
    const main: Record<string, unknown> = {
      name: d.resource,
      singularName: d.singular,
      namespaced: d.namespaced,
      kind: d.kind,
      verbs: d.verbs,
    };
    if (d.shortNames.length) main.shortNames = d.shortNames;
    if (d.categories.length) main.categories = d.categories;
    resources.push(main);
    for (const sub of d.subresources) {
      resources.push({
        name: `${d.resource}/${sub}`,
        singularName: '',
        namespaced: d.namespaced,
        kind: sub === 'log' ? 'Pod' : d.kind,
        verbs: sub === 'log' ? ['get'] : ['get', 'patch', 'update'],
      });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf(group, version), resources };
}
