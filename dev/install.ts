// What a real install has in the cluster that `mlops dev` otherwise keeps outside the emulator, so that
// `kubectl` and `mlops doctor` see the local cluster as an installed one: the Knative kinds `mlops render` renders
// (their CRDs and the rendered objects, the Broker Ready at the local broker's URL), the model volumes (Bound),
// and the secrets (names and values as `mlops dev` uses them).
import type { Catalog } from '../runtime/catalog.ts';
import { SECRETS_NAME } from '../config/render.ts';
import { STORAGE_CONFIG_LABEL } from '../runtime/storage-config.ts';

type Obj = Record<string, unknown>;

/**
 * Knative's CRDs as upstream ships them, trimmed to what the emulator serves: names, scope, versions, status
 * subresource, printer columns, and a schema that keeps unknown fields (upstream's own workaround in these files).
 * Source: knative/eventing config/core/resources/{broker,trigger,ping,apiserversource,sinkbindings}.yaml and
 * knative/serving config/core/300-resources/service.yaml (names, categories, short names, Ready/Reason columns).
 */
export function knativeCrds(): Obj[] {
  const crd = (group: string, kind: string, plural: string, categories: string[], shortNames: string[] = [], urlColumn = '.status.address.url'): Obj => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), categories, ...(shortNames.length ? { shortNames } : {}) },
      versions: [{
        name: 'v1', served: true, storage: true, subresources: { status: {} },
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        additionalPrinterColumns: [
          { name: 'URL', type: 'string', jsonPath: urlColumn },
          { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
          { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason' },
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
      }],
    },
  });
  return [
    crd('eventing.knative.dev', 'Broker', 'brokers', ['all', 'knative', 'eventing']),
    crd('eventing.knative.dev', 'Trigger', 'triggers', ['all', 'knative', 'eventing'], [], '.status.subscriberUri'),
    crd('sources.knative.dev', 'PingSource', 'pingsources', ['all', 'knative', 'sources'], [], '.status.sinkUri'),
    crd('sources.knative.dev', 'ApiServerSource', 'apiserversources', ['all', 'knative', 'sources'], [], '.status.sinkUri'),
    crd('sources.knative.dev', 'SinkBinding', 'sinkbindings', ['all', 'knative', 'sources', 'bindings'], [], '.status.sinkUri'),
    crd('serving.knative.dev', 'Service', 'services', ['all', 'knative', 'serving'], ['kservice', 'ksvc'], '.status.url'),
  ];
}

const ready = (now: string): object => ({ type: 'Ready', status: 'True', lastTransitionTime: now });

/** The objects of a local install: rendered Knative objects (Broker Ready at `brokerUrl`), volumes, secrets. */
export function localInstall(opts: { catalog: Catalog; namespace: string; rendered: Record<string, object[]>; brokerUrl: string; secrets: Record<string, string>; storageConfig?: Record<string, string> }): Obj[] {
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const knative = Object.entries(opts.rendered).filter(([file]) => file.startsWith('knative/')).flatMap(([, objs]) => objs as Obj[]);
  const withStatus = knative.map((o) => (o.kind === 'Broker'
    ? { ...o, status: { conditions: [ready(now)], address: { url: opts.brokerUrl } } }
    : o));
  const meta = (name: string): Obj => ({ name, namespace: opts.namespace });
  const claims = new Set<string>();
  for (const m of opts.catalog.models) {
    claims.add(m.storage.pvc);
    if (m.profile === 'gpu') claims.add(m.storage.gpuPvc);
  }
  const pvcs = [...claims].sort().map((name) => ({
    apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: meta(name),
    spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: '10Gi' } } },
    status: { phase: 'Bound', accessModes: ['ReadWriteMany'], capacity: { storage: '10Gi' } },
  }));
  const configSecrets = [...new Set(opts.catalog.models.map((m) => m.storage.configSecret))].sort();
  const secrets = [
    { apiVersion: 'v1', kind: 'Secret', metadata: meta(SECRETS_NAME), type: 'Opaque', stringData: opts.secrets },
    // The training pods' environment (envFrom): empty locally, the simulated operator needs nothing from it.
    // The S3 keys are the local S3 server's (`mlops dev`), labelled for storage-bootstrap's ApiServerSource.
    ...configSecrets.map((name) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { ...meta(name), labels: { [STORAGE_CONFIG_LABEL]: 'true' } }, type: 'Opaque',
      ...(opts.storageConfig ? { stringData: opts.storageConfig } : { data: {} }) })),
  ];
  return [...withStatus, ...pvcs, ...secrets];
}

/** The rendered Knative Services, Ready at the URL each local function serves on (what Knative Serving reports). */
export function readyServices(rendered: Record<string, object[]>, urls: ReadonlyMap<string, string>): Obj[] {
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  return ((rendered['knative/services.yaml'] ?? []) as Obj[]).flatMap((svc) => {
    const url = urls.get((svc.metadata as { name: string }).name);
    return url ? [{ ...svc, status: { conditions: [ready(now)], url, address: { url } } }] : [];
  });
}
