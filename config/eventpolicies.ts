// `mlops render --sender-auth`: Knative EventPolicies (eventing.knative.dev/v1alpha1; Knative's sender-identity
// feature, docs/security.md). Derived from the objects render produced, so a new step, Trigger or source is
// covered without touching this file. Field names follow knative/eventing
// config/core/resources/eventpolicy.yaml; semantics from knative/docs docs/versioned/eventing/features/authorization.md.
import { Labels, MANAGER } from '../runtime/labels.ts';

type Obj = Record<string, unknown>;
interface Meta { name: string; namespace?: string; labels?: Record<string, string> }

export const EVENT_POLICY_API = 'eventing.knative.dev/v1alpha1';
const metaOf = (o: Obj): Meta => o.metadata as Meta;
/** `from.ref` names a namespace; `to.ref` has none (targets share the policy's namespace; the CRD has no field for it). */
const refFrom = (o: Obj, namespace: string): Obj => ({ ref: { apiVersion: o.apiVersion, kind: o.kind, name: metaOf(o).name, namespace } });
const refTo = (o: Obj): Obj => ({ ref: { apiVersion: o.apiVersion, kind: o.kind, name: metaOf(o).name } });

/**
 * One policy on the Broker (only our sources, the SinkBinding that gives our functions K_SINK and their OIDC
 * token, the functions' own ServiceAccounts, and the Triggers may post to it), and one per function
 * Service (only the Triggers that deliver to it may call it).
 */
export function renderEventPolicies(files: Record<string, Obj[]>, namespace: string): Obj[] {
  const all = Object.values(files).flat();
  const ofKind = (kind: string): Obj[] => all.filter((o) => o.kind === kind);
  const broker = ofKind('Broker')[0];
  if (!broker) throw new Error('no Broker rendered: nothing to protect');
  const triggers = ofKind('Trigger');
  const services = ofKind('Service').filter((s) => String(s.apiVersion).startsWith('serving.knative.dev/'));
  // Steps that take webhooks from outside the cluster (the Services not marked cluster-local) authenticate their
  // callers themselves (HMAC, token). The Broker's dead-letter sink (notify) gets dead letters from the Broker's
  // backing channel under identities Knative generates per Subscription, which no policy can name ahead of
  // time; a forged event to it only produces a notification, never a change to what is served.
  const deadLetterSink = (broker.spec as { delivery?: { deadLetterSink?: { ref?: { name?: string } } } } | undefined)?.delivery?.deadLetterSink?.ref?.name;
  const noFunctionPolicy = new Set([...services.filter(isPublic).map((s) => metaOf(s).name), ...(deadLetterSink ? [deadLetterSink] : [])]);
  const labels = (extra: Record<string, string> = {}): Record<string, string> => ({ [Labels.managedBy]: MANAGER, [Labels.partOf]: 'model-lifecycle', ...extra });
  const policy = (name: string, to: Obj[], from: Obj[], extra: Record<string, string> = {}): Obj => ({
    apiVersion: EVENT_POLICY_API, kind: 'EventPolicy', metadata: { name, namespace, labels: labels(extra) }, spec: { to, from },
  });

  const senders: Obj[] = [
    ...['PingSource', 'ApiServerSource', 'SinkBinding'].flatMap((k) => ofKind(k).map((o) => refFrom(o, namespace))),
    ...triggers.map((t) => refFrom(t, namespace)),
    ...services.map((s) => ({ sub: `system:serviceaccount:${namespace}:${serviceAccountOf(s)}` })),
  ];
  const out: Obj[] = [policy(`${metaOf(broker).name}-senders`, [refTo(broker)], senders)];

  for (const service of services) {
    const name = metaOf(service).name;
    if (noFunctionPolicy.has(name)) continue;
    const mine = triggers.filter((t) => ((t.spec as { subscriber?: { ref?: { name?: string } } }).subscriber?.ref?.name) === name);
    if (mine.length === 0) continue;
    out.push(policy(`${name}-from-broker`, [refTo(service)], mine.map((t) => refFrom(t, namespace)), { [Labels.step]: name }));
  }
  return out;
}

function isPublic(service: Obj): boolean {
  return metaOf(service).labels?.['networking.knative.dev/visibility'] !== 'cluster-local';
}

function serviceAccountOf(service: Obj): string {
  const spec = service.spec as { template?: { spec?: { serviceAccountName?: string } } } | undefined;
  return spec?.template?.spec?.serviceAccountName ?? 'default';
}
