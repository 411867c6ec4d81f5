// Validating admission of the emulator's cluster profiles (docs/openshift.md):
//  - `OwnerReferencesPermissionEnforcement`, which OpenShift enables by default, as kubernetes/kubernetes
//    plugin/pkg/admission/gc/gc_admission.go (commit 2876d1ab9b6016c0fe9d5e92ac56f3c4caf48c6c) does it;
//  - Pod Security admission at the namespace's enforce level (label `pod-security.kubernetes.io/enforce`,
//    else the profile's default: `restricted` on openshift, `privileged` on kubernetes), with the checks of
//    kubernetes/pod-security-admission policy/check_*.go (commit 8f84a87c7f617f64a4ddc1aea24aeeb7a2e07cb8)
//    that our pods can meet, and the message of admission/admission.go EvaluatePod.
import { ApiError, forbidden, qualifiedResource } from './errors.ts';
import type { Authorizer, RequestAttributes, UserInfo } from './rbac.ts';
import type { ResourceDef } from './registry.ts';
import type { Store } from './store.ts';
import type { KubeObject, OwnerReference, StoredObject } from './types.ts';

export const ClusterProfiles = { openshift: 'openshift', kubernetes: 'kubernetes' } as const;
export type ClusterProfile = (typeof ClusterProfiles)[keyof typeof ClusterProfiles];
export const KubeVersions = ['1.26', '1.32'] as const;
export type KubeVersion = (typeof KubeVersions)[number];
export const NEWEST_KUBE_VERSION: KubeVersion = '1.32';

export function isClusterProfile(v: string): v is ClusterProfile {
  return v === 'openshift' || v === 'kubernetes';
}
export function isKubeVersion(v: string): v is KubeVersion {
  return (KubeVersions as readonly string[]).includes(v);
}

export const PodSecurityLevels = { privileged: 'privileged', baseline: 'baseline', restricted: 'restricted' } as const;
export type PodSecurityLevel = (typeof PodSecurityLevels)[keyof typeof PodSecurityLevels];
export const POD_SECURITY_ENFORCE_LABEL = 'pod-security.kubernetes.io/enforce';

/** The attributes of one create/update that reach validating admission. */
export interface AdmissionRequest {
  user: UserInfo;
  operation: 'CREATE' | 'UPDATE';
  def: ResourceDef;
  subresource?: string;
  namespace?: string;
  object: StoredObject;
  oldObject?: StoredObject;
}

export interface Admission {
  readonly profile: ClusterProfile;
  /** Throws the API server's 403 when a plugin of the profile denies the request. */
  validate(req: AdmissionRequest): void;
  /** Pod Security for a pod a simulated controller creates in `namespace`; throws the 403 a real API server answers. */
  validatePodCreate(namespace: string, pod: KubeObject): void;
}

export function createAdmission(profile: ClusterProfile, deps: { store: Store; authorizer: Authorizer; rbac: boolean }): Admission {
  const allowed = (user: UserInfo, a: RequestAttributes): boolean => !deps.rbac || deps.authorizer.allowed(user, a);
  const admission: Admission = {
    profile,
    validate(req) {
      if (profile === 'openshift') ownerReferencesPermissionEnforcement(req, deps.store, allowed);
      if (req.def.group === '' && req.def.resource === 'pods' && req.subresource === undefined && req.operation === 'CREATE' && req.namespace !== undefined) {
        admission.validatePodCreate(req.namespace, req.object);
      }
    },
    validatePodCreate(namespace, pod) {
      const level = enforceLevel(deps.store, namespace, profile);
      const violations = podSecurityViolations(level, pod);
      if (violations === '') return;
      const name = pod.metadata?.name || 'Unknown';
      throw podSecurityForbidden(name, level, violations);
    },
  };
  return admission;
}

// ------------------------------------------------------------------ OwnerReferencesPermissionEnforcement

/** Only pods/status is whitelisted upstream (gc_admission.go `whiteList`). */
const WHITELIST = [{ group: '', resource: 'pods', subresource: 'status' }];

function ownerReferencesPermissionEnforcement(
  req: AdmissionRequest,
  store: Store,
  allowed: (user: UserInfo, a: RequestAttributes) => boolean,
): void {
  if (WHITELIST.some((w) => w.group === req.def.group && w.resource === req.def.resource && w.subresource === req.subresource)) return;
  const refs = req.object.metadata.ownerReferences ?? [];
  const oldRefs = req.oldObject?.metadata.ownerReferences ?? [];
  if (!isChangingOwnerReference(refs, req.oldObject ? oldRefs : undefined)) return;
  const name = req.object.metadata.name;
  const deny = (msg: string): ApiError => {
    const gr = qualifiedResource(req.def.group, req.def.resource);
    return forbidden(`${gr} "${name || 'Unknown'}" is forbidden: ${msg}`, { name: name || 'Unknown', group: req.def.group, kind: req.def.resource });
  };
  // 1. The creator must be allowed to delete the object it sets owner references on.
  const deleteAttrs: RequestAttributes = { verb: 'delete', group: req.def.group, resource: req.def.resource, name };
  if (req.subresource !== undefined) deleteAttrs.subresource = req.subresource;
  if (req.namespace !== undefined) deleteAttrs.namespace = req.namespace;
  // The RBAC authorizer denies with an empty reason and no error, hence upstream's ": , <nil>".
  if (!allowed(req.user, deleteAttrs)) throw deny(`cannot set an ownerRef on a resource you can't delete: , <nil>`);
  // 2. Each new blockOwnerDeletion=true reference needs `update` on the owner's `finalizers` subresource.
  for (const ref of newBlockingRefs(refs, req.oldObject ? oldRefs : [])) {
    let resource: string;
    try {
      resource = store.resolve({ apiVersion: ref.apiVersion, kind: ref.kind }).def.resource;
    } catch {
      const [group, version] = ref.apiVersion.includes('/') ? ref.apiVersion.split('/') : ['', ref.apiVersion];
      throw deny(
        `cannot set blockOwnerDeletion in this case because cannot find RESTMapping for APIVersion ${ref.apiVersion} Kind ${ref.kind}: no matches for kind "${ref.kind}" in version "${group ? `${group}/` : ''}${version ?? ''}"`,
      );
    }
    const group = ref.apiVersion.includes('/') ? (ref.apiVersion.split('/')[0] ?? '') : '';
    const attrs: RequestAttributes = { verb: 'update', group, resource, subresource: 'finalizers', name: ref.name };
    if (req.namespace !== undefined) attrs.namespace = req.namespace;
    if (!allowed(req.user, attrs)) {
      throw deny('cannot set blockOwnerDeletion if an ownerReference refers to a resource you can\'t set finalizers on: , <nil>');
    }
  }
}

/** gc_admission.go isChangingOwnerReference: on create any ref; on update a changed count or any changed ref. */
function isChangingOwnerReference(refs: OwnerReference[], oldRefs: OwnerReference[] | undefined): boolean {
  if (oldRefs === undefined) return refs.length > 0;
  if (refs.length !== oldRefs.length) return true;
  return refs.some((r, i) => !sameRef(r, oldRefs[i]));
}

function sameRef(a: OwnerReference, b: OwnerReference | undefined): boolean {
  if (!b) return false;
  return a.apiVersion === b.apiVersion && a.kind === b.kind && a.name === b.name && a.uid === b.uid
    && (a.controller ?? undefined) === (b.controller ?? undefined) && (a.blockOwnerDeletion ?? undefined) === (b.blockOwnerDeletion ?? undefined);
}

/** gc_admission.go newBlockingOwnerDeletionRefs: blocking refs that are new by UID or were not blocking before. */
function newBlockingRefs(refs: OwnerReference[], oldRefs: OwnerReference[]): OwnerReference[] {
  return refs.filter((r) => {
    if (r.blockOwnerDeletion !== true) return false;
    const old = oldRefs.find((o) => o.uid === r.uid);
    return !old || old.blockOwnerDeletion !== true;
  });
}

// ------------------------------------------------------------------ Pod Security

function enforceLevel(store: Store, namespace: string, profile: ClusterProfile): PodSecurityLevel {
  const ns = store.get({ group: '', version: 'v1', resource: 'namespaces' }, { name: namespace });
  const label = ns?.metadata.labels?.[POD_SECURITY_ENFORCE_LABEL];
  if (label === 'privileged' || label === 'baseline' || label === 'restricted') return label;
  return profile === 'openshift' ? 'restricted' : 'privileged';
}

function podSecurityForbidden(name: string, level: PodSecurityLevel, detail: string): ApiError {
  // Only `latest` is emulated; a pinned `pod-security.kubernetes.io/enforce-version` is read as latest (docs/openshift.md).
  return forbidden(`pods "${name}" is forbidden: violates PodSecurity "${level}:latest": ${detail}`, { name, group: '', kind: 'pods' });
}

interface SecurityContext {
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  runAsNonRoot?: boolean;
  runAsUser?: number;
  capabilities?: { add?: string[]; drop?: string[] };
  seccompProfile?: { type?: string };
}
interface ContainerLike {
  name?: string;
  securityContext?: SecurityContext;
  ports?: Array<{ hostPort?: number }>;
}
interface PodSpecLike {
  os?: { name?: string };
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  securityContext?: SecurityContext;
  initContainers?: ContainerLike[];
  containers?: ContainerLike[];
  ephemeralContainers?: ContainerLike[];
  volumes?: Array<Record<string, unknown> & { name?: string }>;
}

type Check = (spec: PodSpecLike) => { reason: string; detail: string } | undefined;

const pluralize = (one: string, many: string, n: number): string => (n === 1 ? one : many);
const joinQuote = (items: string[]): string => (items.length === 0 ? '' : `"${items.join('", "')}"`);
const containersOf = (spec: PodSpecLike): ContainerLike[] => [...(spec.initContainers ?? []), ...(spec.containers ?? []), ...(spec.ephemeralContainers ?? [])];
const names = (cs: ContainerLike[]): string[] => cs.map((c) => c.name ?? '');
const isWindows = (spec: PodSpecLike): boolean => spec.os?.name === 'windows';
const sorted = (s: Set<string>): string[] => [...s].sort();

/** policy/check_allowPrivilegeEscalation.go */
const allowPrivilegeEscalation: Check = (spec) => {
  if (isWindows(spec)) return undefined;
  const bad = containersOf(spec).filter((c) => c.securityContext?.allowPrivilegeEscalation !== false);
  if (bad.length === 0) return undefined;
  return { reason: 'allowPrivilegeEscalation != false', detail: `${pluralize('container', 'containers', bad.length)} ${joinQuote(names(bad))} must set securityContext.allowPrivilegeEscalation=false` };
};

/** policy/check_capabilities_restricted.go */
const capabilitiesRestricted: Check = (spec) => {
  if (isWindows(spec)) return undefined;
  const missingDrop: string[] = [];
  const adding: string[] = [];
  const forbiddenCaps = new Set<string>();
  for (const c of containersOf(spec)) {
    const caps = c.securityContext?.capabilities;
    if (!caps) {
      missingDrop.push(c.name ?? '');
      continue;
    }
    if (!(caps.drop ?? []).includes('ALL')) missingDrop.push(c.name ?? '');
    const bad = (caps.add ?? []).filter((a) => a !== 'NET_BIND_SERVICE');
    if (bad.length > 0) {
      adding.push(c.name ?? '');
      for (const b of bad) forbiddenCaps.add(b);
    }
  }
  const details: string[] = [];
  if (missingDrop.length > 0) details.push(`${pluralize('container', 'containers', missingDrop.length)} ${joinQuote(missingDrop)} must set securityContext.capabilities.drop=["ALL"]`);
  if (adding.length > 0) details.push(`${pluralize('container', 'containers', adding.length)} ${joinQuote(adding)} must not include ${joinQuote(sorted(forbiddenCaps))} in securityContext.capabilities.add`);
  return details.length > 0 ? { reason: 'unrestricted capabilities', detail: details.join('; ') } : undefined;
};

/** policy/check_hostNamespaces.go */
const hostNamespaces: Check = (spec) => {
  const ns = [spec.hostNetwork ? 'hostNetwork=true' : '', spec.hostPID ? 'hostPID=true' : '', spec.hostIPC ? 'hostIPC=true' : ''].filter(Boolean);
  return ns.length > 0 ? { reason: 'host namespaces', detail: ns.join(', ') } : undefined;
};

/** policy/check_hostPorts.go */
const hostPorts: Check = (spec) => {
  const bad: string[] = [];
  const ports = new Set<string>();
  for (const c of containersOf(spec)) {
    const hp = (c.ports ?? []).map((p) => p.hostPort ?? 0).filter((p) => p !== 0);
    if (hp.length > 0) bad.push(c.name ?? '');
    for (const p of hp) ports.add(String(p));
  }
  if (bad.length === 0) return undefined;
  return { reason: 'hostPort', detail: `${pluralize('container', 'containers', bad.length)} ${joinQuote(bad)} ${pluralize('uses', 'use', bad.length)} ${pluralize('hostPort', 'hostPorts', ports.size)} ${sorted(ports).join(', ')}` };
};

/** policy/check_privileged.go */
const privileged: Check = (spec) => {
  const bad = containersOf(spec).filter((c) => c.securityContext?.privileged === true);
  if (bad.length === 0) return undefined;
  return { reason: 'privileged', detail: `${pluralize('container', 'containers', bad.length)} ${joinQuote(names(bad))} must not set securityContext.privileged=true` };
};

/** policy/check_hostPathVolumes.go (baseline). */
const hostPathVolumes: Check = (spec) => {
  const bad = (spec.volumes ?? []).filter((v) => v.hostPath !== undefined).map((v) => v.name ?? '');
  if (bad.length === 0) return undefined;
  return { reason: 'hostPath volumes', detail: `${pluralize('volume', 'volumes', bad.length)} ${joinQuote(bad)}` };
};

const ALLOWED_VOLUME_TYPES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'image', 'persistentVolumeClaim', 'projected', 'secret'];

/** policy/check_restrictedVolumes.go */
const restrictedVolumes: Check = (spec) => {
  const bad: string[] = [];
  const types = new Set<string>();
  for (const v of spec.volumes ?? []) {
    const kinds = Object.keys(v).filter((k) => k !== 'name');
    if (kinds.some((k) => ALLOWED_VOLUME_TYPES.includes(k))) continue;
    bad.push(v.name ?? '');
    types.add(kinds[0] ?? 'unknown');
  }
  if (bad.length === 0) return undefined;
  return {
    reason: 'restricted volume types',
    detail: `${pluralize('volume', 'volumes', bad.length)} ${joinQuote(bad)} ${pluralize('uses', 'use', bad.length)} ${pluralize('restricted volume type', 'restricted volume types', types.size)} ${joinQuote(sorted(types))}`,
  };
};

/** policy/check_runAsNonRoot.go (runAsNonRoot1_0) */
const runAsNonRoot: Check = (spec) => {
  const badSetters: string[] = [];
  let podNonRoot = false;
  if (spec.securityContext?.runAsNonRoot !== undefined) {
    if (!spec.securityContext.runAsNonRoot) badSetters.push('pod');
    else podNonRoot = true;
  }
  const explicit: string[] = [];
  const implicit: string[] = [];
  for (const c of containersOf(spec)) {
    const v = c.securityContext?.runAsNonRoot;
    if (v !== undefined) {
      if (!v) explicit.push(c.name ?? '');
    } else if (!podNonRoot) implicit.push(c.name ?? '');
  }
  if (explicit.length > 0) badSetters.push(`${pluralize('container', 'containers', explicit.length)} ${joinQuote(explicit)}`);
  if (badSetters.length > 0) return { reason: 'runAsNonRoot != true', detail: `${badSetters.join(' and ')} must not set securityContext.runAsNonRoot=false` };
  if (implicit.length > 0) return { reason: 'runAsNonRoot != true', detail: `pod or ${pluralize('container', 'containers', implicit.length)} ${joinQuote(implicit)} must set securityContext.runAsNonRoot=true` };
  return undefined;
};

/** policy/check_runAsUser.go (runAsUser1_23) */
const runAsUser: Check = (spec) => {
  const badSetters: string[] = [];
  if (spec.securityContext?.runAsUser === 0) badSetters.push('pod');
  const bad = containersOf(spec).filter((c) => c.securityContext?.runAsUser === 0);
  if (bad.length > 0) badSetters.push(`${pluralize('container', 'containers', bad.length)} ${joinQuote(names(bad))}`);
  return badSetters.length > 0 ? { reason: 'runAsUser=0', detail: `${badSetters.join(' and ')} must not set runAsUser=0` } : undefined;
};

const validSeccomp = (t: string | undefined): boolean => t === 'RuntimeDefault' || t === 'Localhost';

/** policy/check_seccompProfile_restricted.go */
const seccompProfileRestricted: Check = (spec) => {
  if (isWindows(spec)) return undefined;
  const badSetters: string[] = [];
  const badValues = new Set<string>();
  let podSet = false;
  const podProfile = spec.securityContext?.seccompProfile;
  if (podProfile) {
    if (!validSeccomp(podProfile.type)) {
      badSetters.push('pod');
      badValues.add(podProfile.type ?? '');
    } else podSet = true;
  }
  const explicit: string[] = [];
  const implicit: string[] = [];
  for (const c of containersOf(spec)) {
    const p = c.securityContext?.seccompProfile;
    if (p) {
      if (!validSeccomp(p.type)) {
        explicit.push(c.name ?? '');
        badValues.add(p.type ?? '');
      }
    } else if (!podSet) implicit.push(c.name ?? '');
  }
  if (explicit.length > 0) badSetters.push(`${pluralize('container', 'containers', explicit.length)} ${joinQuote(explicit)}`);
  if (badSetters.length > 0) return { reason: 'seccompProfile', detail: `${badSetters.join(' and ')} must not set securityContext.seccompProfile.type to ${joinQuote(sorted(badValues))}` };
  if (implicit.length > 0) {
    return { reason: 'seccompProfile', detail: `pod or ${pluralize('container', 'containers', implicit.length)} ${joinQuote(implicit)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"` };
  }
  return undefined;
};

// Upstream evaluates checks in registration order (Go init order = file name order); a restricted check
// replaces the baseline check it overrides (capabilities, hostPath → restricted volumes).
const BASELINE: Check[] = [hostNamespaces, hostPathVolumes, hostPorts, privileged];
const RESTRICTED: Check[] = [allowPrivilegeEscalation, capabilitiesRestricted, hostNamespaces, hostPorts, privileged, restrictedVolumes, runAsNonRoot, runAsUser, seccompProfileRestricted];

/** The aggregated violation text (policy/checks.go ForbiddenDetail), '' when the pod meets the level. */
export function podSecurityViolations(level: PodSecurityLevel, pod: KubeObject): string {
  if (level === 'privileged') return '';
  const spec = (pod.spec ?? {}) as PodSpecLike;
  const results = (level === 'restricted' ? RESTRICTED : BASELINE).map((c) => c(spec)).filter((r) => r !== undefined);
  return results.map((r) => (r.detail ? `${r.reason} (${r.detail})` : r.reason)).join(', ');
}
