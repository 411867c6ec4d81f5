// RBAC authorizer: Roles/ClusterRoles bound by RoleBindings/ClusterRoleBindings, as the real RBAC module reads them.
import { forbidden, qualifiedResource } from './errors.ts';
import type { ApiError } from './errors.ts';
import type { Store } from './store.ts';

export interface UserInfo {
  name: string;
  groups: string[];
}

export interface RequestAttributes {
  /** A REST verb (see `Verb`) or any custom verb a rule may name. */
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs?: string[];
  nonResourceURLs?: string[];
}

interface Subject {
  kind: string;
  name: string;
  namespace?: string;
}

interface Binding {
  metadata: { namespace?: string };
  roleRef?: { kind: string; name: string };
  subjects?: Subject[];
}

export const ADMIN_GROUP = 'system:masters';

export function serviceAccountUser(namespace: string, name: string): UserInfo {
  return {
    name: `system:serviceaccount:${namespace}:${name}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
  };
}

function subjectMatches(s: Subject, user: UserInfo, bindingNamespace: string | undefined): boolean {
  if (s.kind === 'User') return s.name === user.name;
  if (s.kind === 'Group') return user.groups.includes(s.name);
  if (s.kind === 'ServiceAccount') {
    const ns = s.namespace ?? bindingNamespace;
    return user.name === `system:serviceaccount:${ns}:${s.name}`;
  }
  return false;
}

function ruleAllows(rule: PolicyRule, a: RequestAttributes): boolean {
  const verbs = rule.verbs ?? [];
  if (!verbs.includes('*') && !verbs.includes(a.verb)) return false;
  const groups = rule.apiGroups ?? [];
  if (!groups.includes('*') && !groups.includes(a.group)) return false;
  const resources = rule.resources ?? [];
  const combined = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const resourceOk =
    resources.includes('*') || resources.includes(combined) || (a.subresource !== undefined && resources.includes(`*/${a.subresource}`));
  if (!resourceOk) return false;
  const names = rule.resourceNames ?? [];
  if (names.length > 0) return a.name !== undefined && names.includes(a.name);
  return true;
}

export class Authorizer {
  private readonly store: Store;

  constructor(store: Store) {
    this.store = store;
  }

  allowed(user: UserInfo, a: RequestAttributes): boolean {
    if (user.groups.includes(ADMIN_GROUP)) return true;
    for (const rule of this.rulesFor(user, a.namespace)) if (ruleAllows(rule, a)) return true;
    return false;
  }

  /**
   * Which binding allows the request, worded like the RBAC authorizer's SubjectAccessReview reason
   * (kubernetes plugin/pkg/auth/authorizer/rbac: `RBAC: allowed by RoleBinding "name/ns" of Role "r" to ServiceAccount "sa/ns"`).
   */
  allowedBy(user: UserInfo, a: RequestAttributes): string | undefined {
    if (user.groups.includes(ADMIN_GROUP)) return '';
    const roleRules = (kind: string, name: string, namespace: string | undefined): PolicyRule[] => {
      const found = kind === 'ClusterRole'
        ? this.store.rawAll('rbac.authorization.k8s.io', 'clusterroles').find((r) => r.metadata.name === name)
        : this.store.rawAll('rbac.authorization.k8s.io', 'roles').find((r) => r.metadata.namespace === namespace && r.metadata.name === name);
      return (found?.rules as PolicyRule[] | undefined) ?? [];
    };
    const describe = (s: Subject, ns: string | undefined): string =>
      s.kind === 'ServiceAccount' ? `${s.kind} "${s.name}/${s.namespace ?? ns ?? ''}"` : `${s.kind} "${s.name}"`;
    for (const b of this.store.rawAll('rbac.authorization.k8s.io', 'clusterrolebindings') as unknown as (Binding & { metadata: { name: string } })[]) {
      if (b.roleRef?.kind !== 'ClusterRole') continue;
      const s = (b.subjects ?? []).find((x) => subjectMatches(x, user, undefined));
      if (s && roleRules('ClusterRole', b.roleRef.name, undefined).some((r) => ruleAllows(r, a))) {
        return `RBAC: allowed by ClusterRoleBinding "${b.metadata.name}" of ClusterRole "${b.roleRef.name}" to ${describe(s, undefined)}`;
      }
    }
    if (a.namespace === undefined) return undefined;
    for (const b of this.store.rawAll('rbac.authorization.k8s.io', 'rolebindings') as unknown as (Binding & { metadata: { name: string } })[]) {
      if (b.metadata.namespace !== a.namespace || !b.roleRef) continue;
      const s = (b.subjects ?? []).find((x) => subjectMatches(x, user, a.namespace));
      if (s && roleRules(b.roleRef.kind, b.roleRef.name, a.namespace).some((r) => ruleAllows(r, a))) {
        return `RBAC: allowed by RoleBinding "${b.metadata.name}/${a.namespace}" of ${b.roleRef.kind} "${b.roleRef.name}" to ${describe(s, a.namespace)}`;
      }
    }
    return undefined;
  }

  /** The rules that apply to a user in a namespace (cluster-wide rules always apply). */
  rulesFor(user: UserInfo, namespace: string | undefined): PolicyRule[] {
    const rules: PolicyRule[] = [];
    const clusterRole = (name: string): PolicyRule[] =>
      (this.store.rawAll('rbac.authorization.k8s.io', 'clusterroles').find((r) => r.metadata.name === name)?.rules as PolicyRule[] | undefined) ?? [];
    for (const b of this.store.rawAll('rbac.authorization.k8s.io', 'clusterrolebindings') as unknown as Binding[]) {
      if (b.roleRef?.kind !== 'ClusterRole') continue;
      if ((b.subjects ?? []).some((s) => subjectMatches(s, user, undefined))) rules.push(...clusterRole(b.roleRef.name));
    }
    if (namespace !== undefined) {
      for (const b of this.store.rawAll('rbac.authorization.k8s.io', 'rolebindings') as unknown as Binding[]) {
        if (b.metadata.namespace !== namespace || !b.roleRef) continue;
        if (!(b.subjects ?? []).some((s) => subjectMatches(s, user, namespace))) continue;
        if (b.roleRef.kind === 'ClusterRole') rules.push(...clusterRole(b.roleRef.name));
        else {
          const role = this.store
            .rawAll('rbac.authorization.k8s.io', 'roles')
            .find((r) => r.metadata.namespace === namespace && r.metadata.name === b.roleRef?.name);
          rules.push(...((role?.rules as PolicyRule[] | undefined) ?? []));
        }
      }
    }
    return rules;
  }
}

/** The 403 the real API server answers, word for word. */
export function forbiddenFor(user: UserInfo, a: RequestAttributes): ApiError {
  const gr = qualifiedResource(a.group, a.resource);
  const subject = a.name ? `${gr} "${a.name}"` : gr;
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace !== undefined ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  const message = `${subject} is forbidden: User "${user.name}" cannot ${a.verb} resource "${resource}" in API group "${a.group}" ${scope}`;
  const details: { name?: string; group: string; kind: string } = { group: a.group, kind: a.resource };
  if (a.name) details.name = a.name;
  return forbidden(message, details);
}
