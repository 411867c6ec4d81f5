// What `mlops doctor` and `kubectl auth can-i --as` need from the API server: impersonation, access reviews
// (authorization.k8s.io/v1 SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectAccessReview), metadata-only
// reads (PartialObjectMetadata, so a Secret's existence can be checked without its data leaving the server) and
// OpenShift's PodSecurityPolicySubjectReview (security.openshift.io/v1). `?dryRun=All` needs nothing here: the
// store validates and admits a dry-run write exactly like a real one and skips only the storing.
//
// Upstream behaviour followed (read from source):
// - impersonation: kubernetes staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go — each
//   `Impersonate-User` / `Impersonate-Group` / `Impersonate-Extra-*` value is authorised as verb `impersonate` on
//   `users`, `groups`, `serviceaccounts` (namespace + name from `system:serviceaccount:<ns>:<name>`) or
//   `userextras/<key>`; a service account without explicit groups gets `system:serviceaccounts` and
//   `system:serviceaccounts:<ns>`; without explicit groups `system:authenticated` is added; groups or extras without
//   a user are refused.
// - access reviews: kubernetes pkg/apis/authorization/validation (exactly one of resourceAttributes /
//   nonResourceAttributes; a SubjectAccessReview names a user or a group; a LocalSubjectAccessReview's
//   resourceAttributes.namespace matches the URL's); the allow reason is the RBAC authorizer's wording
//   (plugin/pkg/auth/authorizer/rbac, roleBindingDescriber / clusterRoleBindingDescriber).
// - PodSecurityPolicySubjectReview: openshift/api security/v1/types.go (spec.template, spec.user, spec.groups;
//   status.allowedBy ObjectReference, status.reason, status.template) and openshift/openshift-apiserver
//   pkg/security/apiserver/registry/podsecuritypolicysubjectreview/rest.go (users = spec user/groups plus the
//   template's serviceAccountName; the first SCC that can be assigned wins; otherwise allowedBy stays empty with
//   reason `CantAssignSecurityContextConstraintProvider`). The only SCC here is `restricted-v2` as shipped in
//   openshift/cluster-kube-apiserver-operator bindata/bootkube/scc-manifests/0000_20_kube-apiserver-operator_00_scc-restricted-v2.yaml,
//   granted to `system:authenticated` (…_00_crb-systemauthenticated-scc-restricted-v2.yaml). Not emulated: other
//   SCCs, the namespace's UID/SELinux ranges (status.template is the template as sent).
import type { IncomingMessage } from 'node:http';
import { ApiError, badRequest, invalid } from './errors.ts';
import type { FieldCause } from './errors.ts';
import { forbiddenFor, serviceAccountUser } from './rbac.ts';
import type { Authorizer, RequestAttributes, UserInfo } from './rbac.ts';
import type { ResourceDef } from './registry.ts';
import type { KubeObject, StoredObject } from './types.ts';

const SA_PREFIX = 'system:serviceaccount:';
const AUTHENTICATED = 'system:authenticated';
const UNAUTHENTICATED = 'system:unauthenticated';
const ANONYMOUS = 'system:anonymous';

function virtual(group: string, resource: string, kind: string, namespaced: boolean): ResourceDef {
  return {
    group, versions: ['v1'], resource, singular: kind.toLowerCase(), kind, listKind: `${kind}List`, namespaced,
    shortNames: [], categories: [], verbs: ['create'], subresources: [], virtual: true,
  };
}

/** The review kinds this file answers, plus CronJobs (which the doctor inspects for leftovers of the old platform). */
export function reviewResources(opts: { openshift: boolean }): ResourceDef[] {
  const defs = [
    virtual('authorization.k8s.io', 'subjectaccessreviews', 'SubjectAccessReview', false),
    virtual('authorization.k8s.io', 'localsubjectaccessreviews', 'LocalSubjectAccessReview', true),
    virtual('authorization.k8s.io', 'selfsubjectrulesreviews', 'SelfSubjectRulesReview', false),
    // `kubectl auth whoami` (GA in Kubernetes 1.28): who the API server thinks the caller is.
    virtual('authentication.k8s.io', 'selfsubjectreviews', 'SelfSubjectReview', false),
    {
      group: 'batch', versions: ['v1'], resource: 'cronjobs', singular: 'cronjob', kind: 'CronJob', listKind: 'CronJobList', namespaced: true,
      shortNames: ['cj'], categories: ['all'], verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'], subresources: ['status'],
    },
  ];
  if (opts.openshift) defs.push(virtual('security.openshift.io', 'podsecuritypolicysubjectreviews', 'PodSecurityPolicySubjectReview', true));
  return defs;
}

// ---------------------------------------------------------------- impersonation

function headerValues(req: IncomingMessage, name: string): string[] {
  return (req.headersDistinct[name] ?? []).map((v) => v.trim()).filter((v) => v !== '');
}

/**
 * The user a request acts as: the authenticated one, or whom it impersonates once each impersonation is authorised
 * (403 worded like the real server otherwise).
 */
export function impersonate(req: IncomingMessage, requestor: UserInfo, authorizer: Authorizer, rbac: boolean): UserInfo {
  const users = headerValues(req, 'impersonate-user');
  const groups = headerValues(req, 'impersonate-group');
  const extras = Object.keys(req.headersDistinct).filter((h) => h.startsWith('impersonate-extra-'));
  if (users.length === 0 && groups.length === 0 && extras.length === 0) return requestor;
  if (users.length === 0) throw new ApiError(500, 'InternalError', 'Internal error occurred: requested groups or user extras without impersonating a user');
  const name = users[0] ?? '';
  const checks: RequestAttributes[] = [];
  let impersonated: UserInfo;
  if (name.startsWith(SA_PREFIX) && name.slice(SA_PREFIX.length).split(':').length === 2) {
    const [ns = '', sa = ''] = name.slice(SA_PREFIX.length).split(':');
    checks.push({ verb: 'impersonate', group: '', resource: 'serviceaccounts', namespace: ns, name: sa });
    impersonated = groups.length > 0 ? { name, groups: [] } : { name, groups: serviceAccountUser(ns, sa).groups.filter((g) => g !== AUTHENTICATED) };
  } else {
    checks.push({ verb: 'impersonate', group: '', resource: 'users', name });
    impersonated = { name, groups: [] };
  }
  for (const g of groups) {
    checks.push({ verb: 'impersonate', group: '', resource: 'groups', name: g });
    impersonated.groups.push(g);
  }
  for (const h of extras) {
    for (const v of headerValues(req, h)) checks.push({ verb: 'impersonate', group: 'authentication.k8s.io', resource: 'userextras', subresource: h.slice('impersonate-extra-'.length), name: v });
  }
  if (rbac) for (const c of checks) if (!authorizer.allowed(requestor, c)) throw forbiddenFor(requestor, c);
  if (groups.length === 0 && name !== ANONYMOUS && !impersonated.groups.some((g) => g === AUTHENTICATED || g === UNAUTHENTICATED)) {
    impersonated.groups.push(AUTHENTICATED);
  }
  return impersonated;
}

// ---------------------------------------------------------------- metadata-only reads

/** `Accept: application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1`: what to answer with, if asked. */
export function wantsMetadata(accept: string | undefined): 'object' | 'list' | undefined {
  if (!accept || !/g=meta\.k8s\.io/.test(accept)) return undefined;
  if (/as=PartialObjectMetadataList\b/.test(accept)) return 'list';
  if (/as=PartialObjectMetadata\b/.test(accept)) return 'object';
  return undefined;
}

export function partialObject(obj: StoredObject): object {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

export function partialList(items: StoredObject[], metadata: object): object {
  return { kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata, items: items.map(partialObject) };
}

// ---------------------------------------------------------------- access reviews

interface ResourceAttributes { namespace?: string; verb?: string; group?: string; version?: string; resource?: string; subresource?: string; name?: string }
interface NonResourceAttributes { path?: string; verb?: string }
interface ReviewSpec {
  resourceAttributes?: ResourceAttributes;
  nonResourceAttributes?: NonResourceAttributes;
  user?: string;
  groups?: string[];
  uid?: string;
  extra?: Record<string, string[]>;
}

/** Discovery and health endpoints: open to every authenticated user (the real system:discovery / system:public-info-viewer roles). */
const PUBLIC_PATHS = [/^\/api(\/.*)?$/, /^\/apis(\/.*)?$/, /^\/version\/?$/, /^\/healthz\/?$/, /^\/livez\/?$/, /^\/readyz\/?$/, /^\/openapi(\/.*)?$/];

function decide(authorizer: Authorizer, rbac: boolean, user: UserInfo, spec: ReviewSpec): { allowed: boolean; reason?: string } {
  if (spec.resourceAttributes) {
    const ra = spec.resourceAttributes;
    const attrs: RequestAttributes = { verb: ra.verb ?? '', group: ra.group ?? '', resource: ra.resource ?? '' };
    if (ra.subresource) attrs.subresource = ra.subresource;
    if (ra.namespace) attrs.namespace = ra.namespace;
    if (ra.name) attrs.name = ra.name;
    if (!rbac) return { allowed: true };
    const reason = authorizer.allowedBy(user, attrs);
    return reason === undefined ? { allowed: false } : reason === '' ? { allowed: true } : { allowed: true, reason };
  }
  const path = spec.nonResourceAttributes?.path ?? '';
  const verb = spec.nonResourceAttributes?.verb ?? '';
  const open = verb === 'get' && PUBLIC_PATHS.some((p) => p.test(path));
  return { allowed: open || !rbac || authorizer.allowed(user, { verb, group: '', resource: '' }) };
}

function validateSpec(kind: string, spec: ReviewSpec, opts: { needsSubject: boolean; namespace?: string }): void {
  const causes: FieldCause[] = [];
  if (spec.resourceAttributes && spec.nonResourceAttributes) {
    causes.push({ field: 'spec.nonResourceAttributes', message: `Invalid value: ${JSON.stringify(spec.nonResourceAttributes)}: cannot be specified in combination with resourceAttributes` });
  } else if (!spec.resourceAttributes && !spec.nonResourceAttributes) {
    causes.push({ field: 'spec.resourceAttributes', message: 'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified' });
  }
  if (opts.needsSubject && !spec.user && (spec.groups ?? []).length === 0) {
    causes.push({ field: 'spec.user', message: 'Invalid value: "": at least one of user or group must be specified' });
  }
  if (opts.namespace !== undefined && spec.resourceAttributes && spec.resourceAttributes.namespace && spec.resourceAttributes.namespace !== opts.namespace) {
    causes.push({ field: 'spec.resourceAttributes.namespace', message: `Invalid value: "${spec.resourceAttributes.namespace}": must match metadata.namespace` });
  }
  if (causes.length > 0) throw invalid('authorization.k8s.io', kind, '', causes);
}

function specOf(body: KubeObject | undefined): ReviewSpec {
  if (!body || typeof body !== 'object') throw badRequest('the request body must be an object');
  const spec = body.spec;
  if (spec !== undefined && (spec === null || typeof spec !== 'object' || Array.isArray(spec))) throw badRequest('spec must be an object');
  return (spec ?? {});
}

/**
 * Answers a create on one of the review kinds (the object comes back with its status filled in; nothing is stored),
 * or undefined when `def` is not a review this file knows.
 */
export function answerReview(def: ResourceDef, namespace: string | undefined, user: UserInfo, body: KubeObject | undefined, authorizer: Authorizer, rbac: boolean): object | undefined {
  const echo = (kind: string, apiVersion: string, spec: unknown, status: object, ns?: string): object => ({
    kind, apiVersion, metadata: { ...(ns !== undefined ? { namespace: ns } : {}), creationTimestamp: null }, spec, status,
  });
  switch (`${def.group}/${def.resource}`) {
    case 'authorization.k8s.io/selfsubjectaccessreviews': {
      const spec = specOf(body);
      validateSpec('SelfSubjectAccessReview', spec, { needsSubject: false });
      return echo('SelfSubjectAccessReview', 'authorization.k8s.io/v1', spec, decide(authorizer, rbac, user, spec));
    }
    case 'authorization.k8s.io/subjectaccessreviews': {
      const spec = specOf(body);
      validateSpec('SubjectAccessReview', spec, { needsSubject: true });
      // Exactly the user and groups named: a service account name alone gets no groups (as upstream).
      const subject: UserInfo = { name: spec.user ?? '', groups: [...(spec.groups ?? [])] };
      return echo('SubjectAccessReview', 'authorization.k8s.io/v1', spec, decide(authorizer, rbac, subject, spec));
    }
    case 'authorization.k8s.io/localsubjectaccessreviews': {
      const spec = specOf(body);
      validateSpec('LocalSubjectAccessReview', spec, { needsSubject: true, ...(namespace !== undefined ? { namespace } : {}) });
      if (spec.resourceAttributes) spec.resourceAttributes.namespace = namespace;
      const subject: UserInfo = { name: spec.user ?? '', groups: [...(spec.groups ?? [])] };
      return echo('LocalSubjectAccessReview', 'authorization.k8s.io/v1', spec, decide(authorizer, rbac, subject, spec), namespace);
    }
    case 'authorization.k8s.io/selfsubjectrulesreviews': {
      // `kubectl auth can-i --list`: the rules that apply in a namespace (kubernetes pkg/registry/authorization/selfsubjectrulesreview).
      const spec = specOf(body) as { namespace?: string };
      if (!spec.namespace) throw invalid('authorization.k8s.io', 'SelfSubjectRulesReview', '', [{ field: 'spec.namespace', message: 'Required value', reason: 'FieldValueRequired' }]);
      const rules = user.groups.includes('system:masters') || !rbac
        ? [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }, { verbs: ['*'], nonResourceURLs: ['*'] }]
        : authorizer.rulesFor(user, spec.namespace);
      const resourceRules = rules.filter((r) => !r.nonResourceURLs).map((r) => ({ verbs: r.verbs ?? [], apiGroups: r.apiGroups ?? [], resources: r.resources ?? [], ...(r.resourceNames?.length ? { resourceNames: r.resourceNames } : {}) }));
      const nonResourceRules = [
        ...rules.filter((r) => r.nonResourceURLs).map((r) => ({ verbs: r.verbs ?? [], nonResourceURLs: r.nonResourceURLs ?? [] })),
        { verbs: ['get'], nonResourceURLs: ['/api', '/api/*', '/apis', '/apis/*', '/healthz', '/livez', '/openapi', '/openapi/*', '/readyz', '/version', '/version/'] },
      ];
      return echo('SelfSubjectRulesReview', 'authorization.k8s.io/v1', spec, { resourceRules: [{ verbs: ['create'], apiGroups: ['authorization.k8s.io'], resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'] }, ...resourceRules], nonResourceRules, incomplete: false });
    }
    case 'authentication.k8s.io/selfsubjectreviews':
      // kubernetes pkg/registry/authentication/selfsubjectreview/rest.go: status.userInfo from the request's user.
      return { kind: 'SelfSubjectReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null }, status: { userInfo: { username: user.name, groups: [...user.groups] } } };
    case 'security.openshift.io/podsecuritypolicysubjectreviews':
      return podSecurityReview(namespace ?? 'default', body);
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------- PodSecurityPolicySubjectReview

interface Container {
  name?: string;
  ports?: Array<{ hostPort?: number }>;
  securityContext?: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    runAsUser?: number;
    capabilities?: { add?: string[] };
    seccompProfile?: { type?: string };
  };
}
interface PodSpec {
  serviceAccountName?: string;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  securityContext?: { runAsUser?: number; seccompProfile?: { type?: string } };
  volumes?: Array<Record<string, unknown>>;
  containers?: Container[];
  initContainers?: Container[];
}

/** restricted-v2 (upstream manifest cited at the top): what it allows; anything unset is defaulted, not refused. */
const RESTRICTED_V2 = {
  volumes: ['configMap', 'downwardAPI', 'emptyDir', 'persistentVolumeClaim', 'projected', 'secret'],
  allowedCapabilities: ['NET_BIND_SERVICE'],
  seccomp: ['RuntimeDefault'],
} as const;

/** Why restricted-v2 cannot be assigned to a pod spec (empty: it can). */
export function restrictedV2Violations(spec: PodSpec): string[] {
  const out: string[] = [];
  if (spec.hostNetwork) out.push('spec.hostNetwork: Invalid value: true: Host network is not allowed to be used');
  if (spec.hostPID) out.push('spec.hostPID: Invalid value: true: Host PID is not allowed to be used');
  if (spec.hostIPC) out.push('spec.hostIPC: Invalid value: true: Host IPC is not allowed to be used');
  for (const [i, v] of (spec.volumes ?? []).entries()) {
    const type = Object.keys(v).find((k) => k !== 'name');
    if (type && !(RESTRICTED_V2.volumes as readonly string[]).includes(type)) out.push(`spec.volumes[${i}]: Invalid value: "${type}": ${type} volumes are not allowed to be used`);
  }
  const podSeccomp = spec.securityContext?.seccompProfile?.type;
  if (podSeccomp && !(RESTRICTED_V2.seccomp as readonly string[]).includes(podSeccomp)) out.push(`spec.securityContext.seccompProfile.type: Invalid value: "${podSeccomp}": ${RESTRICTED_V2.seccomp.join(', ')} is allowed`);
  if (spec.securityContext?.runAsUser === 0) out.push('spec.securityContext.runAsUser: Invalid value: 0: must be in the ranges of the namespace');
  const containers = [...(spec.initContainers ?? []).map((c) => ['initContainers', c] as const), ...(spec.containers ?? []).map((c) => ['containers', c] as const)];
  for (const [field, c] of containers) {
    const sc = c.securityContext ?? {};
    const at = `spec.${field}[${c.name ?? ''}].securityContext`;
    if (sc.privileged) out.push(`${at}.privileged: Invalid value: true: Privileged containers are not allowed`);
    if (sc.allowPrivilegeEscalation === true) out.push(`${at}.allowPrivilegeEscalation: Invalid value: true: Allowing privilege escalation for containers is not allowed`);
    for (const cap of sc.capabilities?.add ?? []) {
      if (!(RESTRICTED_V2.allowedCapabilities as readonly string[]).includes(cap)) out.push(`${at}.capabilities.add: Invalid value: "${cap}": capability may not be added`);
    }
    if (sc.runAsUser === 0) out.push(`${at}.runAsUser: Invalid value: 0: must be in the ranges of the namespace`);
    const seccomp = sc.seccompProfile?.type;
    if (seccomp && !(RESTRICTED_V2.seccomp as readonly string[]).includes(seccomp)) out.push(`${at}.seccompProfile.type: Invalid value: "${seccomp}": ${RESTRICTED_V2.seccomp.join(', ')} is allowed`);
    for (const p of c.ports ?? []) if (p.hostPort) out.push(`spec.${field}[${c.name ?? ''}].ports.hostPort: Invalid value: ${p.hostPort}: Host ports are not allowed to be used`);
  }
  return out;
}

function podSecurityReview(namespace: string, body: KubeObject | undefined): object {
  if (!body || typeof body !== 'object') throw badRequest('the request body must be an object');
  const spec = (body.spec ?? {}) as { template?: { metadata?: object; spec?: PodSpec }; user?: string; groups?: string[] };
  const podSpec = spec.template?.spec;
  if (!podSpec || !Array.isArray(podSpec.containers) || podSpec.containers.length === 0) {
    throw invalid('security.openshift.io', 'PodSecurityPolicySubjectReview', '', [{ field: 'spec.template.spec.containers', message: 'Required value', reason: 'FieldValueRequired' }]);
  }
  // Whose SCCs count: the named user/groups and the template's service account; restricted-v2 is granted to every
  // authenticated user, which every service account token is.
  const subjects = (spec.user || (spec.groups ?? []).length > 0 ? 1 : 0) + (podSpec.serviceAccountName ? 1 : 0);
  const status: Record<string, unknown> = {};
  if (subjects > 0) {
    if (restrictedV2Violations(podSpec).length === 0) {
      status.allowedBy = { kind: 'SecurityContextConstraints', apiVersion: 'security.openshift.io/v1', name: 'restricted-v2' };
      if (podSpec.serviceAccountName) status.template = spec.template;
    } else {
      status.reason = 'CantAssignSecurityContextConstraintProvider';
    }
  }
  return {
    kind: 'PodSecurityPolicySubjectReview', apiVersion: 'security.openshift.io/v1',
    metadata: { namespace, creationTimestamp: null }, spec, status,
  };
}
