// The deployment examples in config/examples and the README's install section: every YAML parses to the kinds we
// intend, core kinds validate against the Kubernetes schemas, and every name, URL and key in them agrees with what
// `mlops render` deploys (config/knative) and what the catalog and the functions expect.
import { s3ConfigFromSecret } from '../runtime/s3.ts';
import { STORAGE_CONFIG_LABEL } from '../runtime/storage-config.ts';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { crdValidator, loadCrd } from '../config/crds/crd-schema.ts';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, PersistentVolumeClaim, Secret, ServiceAccount } from 'kubernetes-models/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { BROKER_NAME, SECRETS_NAME, triggerSpecs } from '../config/render.ts';
import { loadCatalog } from '../runtime/catalog.ts';
import { Annotations, Labels } from '../runtime/labels.ts';
import { parseAlertmanagerWebhook, TektonPipelineRunEventTypes } from '../events/index.ts';
import { decide as decideDrift } from '../functions/drift-intake/decide.ts';

type Obj = Record<string, unknown> & { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string; labels?: Record<string, string> } };

const DIR = 'config/examples';

function loadDocs(path: string): Obj[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS() as Obj;
  });
}

const examples: Record<string, Obj[]> = Object.fromEntries(
  readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => [f, loadDocs(`${DIR}/${f}`)]),
);
const kindOf = (o: Obj): string => `${o.apiVersion ?? '-'}/${o.kind ?? '-'}`;
const find = (file: string, kind: string, name: string): Obj => {
  const hit = (examples[file] ?? []).find((o) => o.kind === kind && o.metadata?.name === name);
  if (!hit) throw new Error(`${file} has no ${kind} ${name}`);
  return hit;
};
const get = (o: unknown, ...path: Array<string | number>): unknown =>
  path.reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[k] : undefined), o);

const catalog = loadCatalog('config/models.yaml');
const services = loadDocs('config/knative/services.yaml');
const [broker] = loadDocs('config/knative/broker.yaml');

const validators: Record<string, (o: Obj) => void> = {
  'v1/Secret': (o) => new Secret(o).validate(),
  'v1/ConfigMap': (o) => new ConfigMap(o).validate(),
  'v1/PersistentVolumeClaim': (o) => new PersistentVolumeClaim(o).validate(),
  'v1/ServiceAccount': (o) => new ServiceAccount(o).validate(),
  'rbac.authorization.k8s.io/v1/Role': (o) => new Role(o).validate(),
  'rbac.authorization.k8s.io/v1/RoleBinding': (o) => new RoleBinding(o as never).validate(),
};

describe('config/examples', () => {
  test('every YAML file holds exactly the objects we intend, in order', () => {
    expect(Object.fromEntries(Object.entries(examples).map(([f, docs]) => [f, docs.map(kindOf)]))).toEqual({
      // The first document of the Alertmanager file is a config fragment (route + receivers), not an object.
      'alertmanager-receiver.yaml': ['-/-', 'v1/Secret', 'monitoring.coreos.com/v1/PrometheusRule'],
      'external-secrets.yaml': [
        'external-secrets.io/v1beta1/SecretStore', 'external-secrets.io/v1beta1/ExternalSecret',
        'external-secrets.io/v1beta1/SecretStore', 'external-secrets.io/v1beta1/ExternalSecret',
        'v1/ServiceAccount', 'rbac.authorization.k8s.io/v1/Role', 'rbac.authorization.k8s.io/v1/RoleBinding',
      ],
      'inferenceservices.yaml': ['serving.kserve.io/v1beta1/InferenceService', 'serving.kserve.io/v1beta1/InferenceService'],
      // The day-2 Roles (docs/day2.md); test/oncall-roles.test.ts shows the API server enforcing them.
      'oncall-roles.yaml': ['rbac.authorization.k8s.io/v1/Role', 'rbac.authorization.k8s.io/v1/Role', 'rbac.authorization.k8s.io/v1/RoleBinding', 'rbac.authorization.k8s.io/v1/RoleBinding'],
      'predictor-s3.yaml': ['external-secrets.io/v1beta1/ExternalSecret', 'v1/ServiceAccount', 'serving.kserve.io/v1beta1/InferenceService'],
      'pvcs.yaml': ['v1/PersistentVolumeClaim', 'v1/PersistentVolumeClaim'],
      'secrets-example.yaml': ['v1/Secret', 'v1/Secret'],
      'tekton-config-events.yaml': ['v1/ConfigMap', 'tekton.dev/v1/PipelineRun'],
    });
    expect(readdirSync(DIR).sort()).toEqual([
      'alertmanager-receiver.yaml', 'external-secrets.yaml', 'github-webhook.md', 'inferenceservices.yaml', 'oncall-roles.yaml', 'predictor-s3.yaml', 'pvcs.yaml', 'secrets-example.yaml', 'tekton-config-events.yaml',
    ]);
  });

  test('core kinds validate against the Kubernetes schemas', () => {
    let validated = 0;
    for (const [file, docs] of Object.entries(examples)) {
      for (const doc of docs) {
        const validate = validators[kindOf(doc)];
        if (!validate) continue;
        expect(() => validate(doc)).not.toThrow();
        expect({ file, name: doc.metadata?.name, namespace: typeof doc.metadata?.namespace }).toEqual({ file, name: expect.any(String), namespace: 'string' });
        validated += 1;
      }
    }
    // 1 token Secret + 2 Secrets + 2 PVCs + the Tekton ConfigMap + ESO's ServiceAccount, Role, RoleBinding
    // + the on-call example's 2 Roles and 2 RoleBindings + the S3 predictor's ServiceAccount.
    expect(validated).toBe(14);
  });

  test('the Alertmanager receiver posts to the rendered drift-intake Service with a mounted bearer token', () => {
    const drift = services.find((s) => s.metadata?.name === 'drift-intake');
    expect(drift?.kind).toBe('Service');
    const fragment = examples['alertmanager-receiver.yaml']?.[0];
    const receivers = get(fragment, 'receivers') as Array<{ name: string; webhook_configs: Array<Record<string, unknown>> }>;
    expect(receivers).toHaveLength(1);
    const [receiver] = receivers;
    const [hook] = receiver?.webhook_configs ?? [];
    const url = new URL(String(hook?.url));
    expect(url.protocol).toBe('http:');
    expect(url.host).toBe(`${drift?.metadata?.name}.${drift?.metadata?.namespace}.svc.cluster.local`);
    expect(hook?.send_resolved).toBe(true);
    expect(hook?.max_alerts).toBe(100);

    // credentials_file is where prometheus-operator mounts the token Secret of this same file.
    const auth = get(hook, 'http_config', 'authorization') as { type: string; credentials_file: string };
    expect(auth.type).toBe('Bearer');
    const tokenSecret = find('alertmanager-receiver.yaml', 'Secret', 'drift-intake-token');
    const key = Object.keys(get(tokenSecret, 'stringData') as object);
    expect(key).toEqual(['token']);
    expect(auth.credentials_file).toBe(`/etc/alertmanager/secrets/${tokenSecret.metadata?.name}/token`);

    const [route] = get(fragment, 'route', 'routes') as Array<Record<string, unknown>>;
    expect(route?.receiver).toBe(receiver?.name);
    expect(route?.group_by).toEqual(['alertname', 'model']);
    expect(route?.matchers).toEqual(['alertname = "ModelDriftDetected"']);
  });

  test('the PrometheusRule alert is one drift-intake turns into a training request for anomaly-detector', () => {
    const rule = find('alertmanager-receiver.yaml', 'PrometheusRule', 'model-drift');
    const [alertRule] = get(rule, 'spec', 'groups', 0, 'rules') as Array<{ alert: string; labels: Record<string, string> }>;
    expect(alertRule?.alert).toBe('ModelDriftDetected');
    expect(alertRule?.labels.model).toBe('anomaly-detector');

    // What Alertmanager would send for it, through drift-intake's own decision.
    const webhook = parseAlertmanagerWebhook({
      version: '4', groupKey: '{}:{alertname="ModelDriftDetected", model="anomaly-detector"}', status: 'firing',
      receiver: 'model-lifecycle-drift',
      alerts: [{ status: 'firing', labels: { alertname: alertRule?.alert, ...alertRule?.labels }, startsAt: '2026-11-22T10:00:00Z', fingerprint: 'a1b2c3d4e5f60718' }],
    });
    expect(webhook.ok).toBe(true);
    if (!webhook.ok) return;
    const actions = decideDrift(webhook.value, catalog);
    expect(actions.map((a) => (a.kind === 'request-training' ? [a.kind, a.data.model, a.data.trigger] : [a.kind]))).toEqual([
      ['request-training', 'anomaly-detector', 'drift'],
    ]);
  });

  test('Tekton sends to the rendered Broker, and the example PipelineRun names a catalog model', () => {
    const cm = find('tekton-config-events.yaml', 'ConfigMap', 'config-events');
    expect(cm.metadata?.namespace).toBe('tekton-pipelines');
    expect(get(cm, 'data', 'formats')).toBe('tektonv1');
    const sink = new URL(String(get(cm, 'data', 'sink')));
    expect(broker?.kind).toBe('Broker');
    expect(broker?.metadata?.name).toBe(BROKER_NAME);
    expect(sink.host).toBe('broker-ingress.knative-eventing.svc.cluster.local');
    expect(sink.pathname).toBe(`/${broker?.metadata?.namespace}/${BROKER_NAME}`);

    // `tektonv1` events are the ones start-training's Trigger filters on.
    expect(triggerSpecs().filter((t) => t.filter.type === TektonPipelineRunEventTypes.successful).map((t) => t.subscriber)).toEqual(['start-training']);

    const run = examples['tekton-config-events.yaml']?.find((o) => o.kind === 'PipelineRun');
    const model = run?.metadata?.labels?.[Labels.retrainModel];
    expect(model).toBe('anomaly-detector');
    expect(catalog.models.some((m) => m.name === model && m.enabled)).toBe(true);
    expect(get(run, 'spec', 'pipelineRef', 'name')).toBe('refresh-features');
  });

  test('the function secrets carry exactly the keys the rendered Services reference', () => {
    const referenced = new Set<string>();
    for (const svc of services) {
      for (const container of get(svc, 'spec', 'template', 'spec', 'containers') as Array<{ env?: Array<{ valueFrom?: { secretKeyRef?: { name: string; key: string } } }> }>) {
        for (const env of container.env ?? []) {
          const ref = env.valueFrom?.secretKeyRef;
          if (ref) {
            expect(ref.name).toBe(SECRETS_NAME);
            referenced.add(ref.key);
          }
        }
      }
    }
    const expected = ['DRIFT_INTAKE_TOKEN', 'GITHUB_WEBHOOK_SECRET', 'SLACK_WEBHOOK_URL', 'SMTP_FROM', 'SMTP_URL'];
    expect([...referenced].sort()).toEqual(expected);

    const plain = find('secrets-example.yaml', 'Secret', SECRETS_NAME);
    expect(plain.metadata?.namespace).toBe(broker?.metadata?.namespace);
    expect(Object.keys(get(plain, 'stringData') as object).sort()).toEqual(expected);
    expect(String(get(plain, 'stringData', 'SMTP_URL'))).toMatch(/^smtps?:\/\/[^:]+:[^@]+@[^:]+:\d+$/);

    const external = find('external-secrets.yaml', 'ExternalSecret', SECRETS_NAME);
    expect(get(external, 'spec', 'target', 'name')).toBe(SECRETS_NAME);
    expect((get(external, 'spec', 'data') as Array<{ secretKey: string }>).map((d) => d.secretKey).sort()).toEqual(expected);
    const storeName = get(external, 'spec', 'secretStoreRef', 'name');
    expect(find('external-secrets.yaml', 'SecretStore', String(storeName)).metadata?.namespace).toBe(external.metadata?.namespace);
  });

  test('the S3 predictor: KServe s3-* annotations on the Secret its ServiceAccount carries, credentials from the same OBC Secret, TLS verified', () => {
    const es = find('predictor-s3.yaml', 'ExternalSecret', 'model-storage-kserve');
    const annotations = get(es, 'spec', 'target', 'template', 'metadata', 'annotations') as Record<string, string>;
    expect(Object.keys(annotations).sort()).toEqual(['serving.kserve.io/s3-cabundle', 'serving.kserve.io/s3-endpoint', 'serving.kserve.io/s3-region',
      'serving.kserve.io/s3-useanoncredential', 'serving.kserve.io/s3-usehttps', 'serving.kserve.io/s3-verifyssl']);
    expect(annotations['serving.kserve.io/s3-verifyssl']).toBe('1');
    expect(Object.keys(get(es, 'spec', 'target', 'template', 'data') as object).sort()).toEqual(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);
    const storage = find('external-secrets.yaml', 'ExternalSecret', 'model-storage-config');
    expect(get(es, 'spec', 'data')).toEqual(get(storage, 'spec', 'data'));
    expect(get(es, 'spec', 'secretStoreRef')).toEqual(get(storage, 'spec', 'secretStoreRef'));
    const sa = find('predictor-s3.yaml', 'ServiceAccount', 'model-predictor');
    expect(get(sa, 'secrets')).toEqual([{ name: get(es, 'spec', 'target', 'name') }]);
    const isvc = find('predictor-s3.yaml', 'InferenceService', 'anomaly-detector');
    expect(get(isvc, 'spec', 'predictor', 'serviceAccountName')).toBe('model-predictor');
    expect(String(get(isvc, 'spec', 'predictor', 'model', 'storageUri'))).toBe('s3://model-storage/models/anomaly-detector/releases/placeholder/');
  });

  test('the model-storage Secret and the PVCs are the ones the catalog mounts', () => {
    const names = new Set(catalog.models.map((m) => JSON.stringify({ pvc: m.storage.pvc, gpuPvc: m.storage.gpuPvc, configSecret: m.storage.configSecret })));
    expect([...names]).toEqual([JSON.stringify({ pvc: 'model-storage-pvc', gpuPvc: 'model-storage-gpu-pvc', configSecret: 'model-storage-config' })]);
    const storage = catalog.models[0]?.storage;

    const plain = find('secrets-example.yaml', 'Secret', String(storage?.configSecret));
    const external = find('external-secrets.yaml', 'ExternalSecret', String(storage?.configSecret));
    expect(get(external, 'spec', 'target', 'name')).toBe(storage?.configSecret);
    const keys = ['AWS_ACCESS_KEY_ID', 'AWS_DEFAULT_REGION', 'AWS_S3_BUCKET', 'AWS_S3_ENDPOINT', 'AWS_SECRET_ACCESS_KEY', 'MODEL_STORAGE_PATH'];
    expect(Object.keys(get(plain, 'stringData') as object).sort()).toEqual(keys);
    // storage-bootstrap reads exactly these names (runtime/s3.ts) and finds the Secret by its label.
    expect(s3ConfigFromSecret({ stringData: get(plain, 'stringData') as Record<string, string> }, 'x')).toMatchObject({ ok: true, config: { bucket: 'model-storage' } });
    expect(plain.metadata?.labels?.[STORAGE_CONFIG_LABEL]).toBe('true');
    expect(get(external, 'spec', 'target', 'template', 'metadata', 'labels', STORAGE_CONFIG_LABEL)).toBe('true');
    expect(Object.keys(get(external, 'spec', 'target', 'template', 'data') as object).sort()).toEqual(keys);
    // Every template variable is fetched by the same ExternalSecret.
    const fetched = (get(external, 'spec', 'data') as Array<{ secretKey: string }>).map((d) => d.secretKey).sort();
    const used = Object.values(get(external, 'spec', 'target', 'template', 'data') as Record<string, string>)
      .flatMap((v) => [...v.matchAll(/\{\{\s*\.(\w+)\s*\}\}/g)].map((m) => m[1])).sort();
    expect(used).toEqual(fetched);
    // The ESO reader Role names exactly the remote Secret the store reads.
    const remote = [...new Set((get(external, 'spec', 'data') as Array<{ remoteRef: { key: string } }>).map((d) => d.remoteRef.key))];
    const role = find('external-secrets.yaml', 'Role', 'external-secrets-reader');
    expect(get(role, 'rules', 0, 'resourceNames')).toEqual(remote);
    expect(role.metadata?.namespace).toBe(get(find('external-secrets.yaml', 'SecretStore', 'kubernetes-secret-store'), 'spec', 'provider', 'kubernetes', 'remoteNamespace'));

    const shared = find('pvcs.yaml', 'PersistentVolumeClaim', String(storage?.pvc));
    const gpu = find('pvcs.yaml', 'PersistentVolumeClaim', String(storage?.gpuPvc));
    expect(get(shared, 'spec', 'accessModes')).toEqual(['ReadWriteMany']);
    expect(get(gpu, 'spec', 'accessModes')).toEqual(['ReadWriteOnce']);
    for (const o of [shared, gpu, plain]) expect(o.metadata?.namespace).toBe(broker?.metadata?.namespace);
  });
});

describe('README: Install on a cluster', () => {
  const readme = readFileSync('README.md', 'utf8');
  const start = readme.indexOf('\n## Install on a cluster\n');
  const section = readme.slice(start);
  const cli = readFileSync('cli/mlops.ts', 'utf8');

  test('is the last section and links only files that exist', () => {
    expect(start).toBeGreaterThan(0);
    expect(section.slice(1).includes('\n## ')).toBe(false);
    const links = [...section.matchAll(/\]\(([^)#]+)\)/g)].map((m) => m[1] ?? '');
    expect(links.length).toBeGreaterThanOrEqual(6);
    for (const link of links) expect(() => readFileSync(link)).not.toThrow();
  });

  test('every `npx mlops` command line uses options the CLI parses', () => {
    const lines = section.split('\n').filter((l) => l.includes('npx mlops '));
    expect(lines.length).toBeGreaterThanOrEqual(4);
    for (const line of lines) {
      const command = /npx mlops (\w+)/.exec(line)?.[1] ?? '';
      const block = new RegExp(`case '${command}':[\\s\\S]*?parseArgs\\(\\{[^\\n]*?options: \\{([\\s\\S]*?)\\} \\}\\);`).exec(cli)?.[1];
      expect({ command, parsed: block !== undefined }).toEqual({ command, parsed: true });
      const flags = [...line.replace(/#.*$/, '').matchAll(/\s--([a-z-]+)/g)].map((m) => m[1] ?? '');
      for (const flag of flags) expect({ command, flag, known: new RegExp(`'?${flag}'?: \\{ type`).test(block ?? '') }).toEqual({ command, flag, known: true });
    }
  });
});

describe('inferenceservices.yaml: per-release model folders', () => {
  const isvcCrd = loadCrd('config/crds/inferenceservices.serving.kserve.io.yaml');
  const validate = crdValidator(isvcCrd);
  const docs = examples['inferenceservices.yaml'] ?? [];

  test('one InferenceService per catalog model, valid against the InferenceService CRD', () => {
    expect(docs.map((d) => d.metadata?.name).sort()).toEqual(catalog.models.map((m) => m.inferenceService).sort());
    for (const d of docs) expect({ name: d.metadata?.name, errors: validate(d).errors }).toEqual({ name: d.metadata?.name, errors: [] });
  });

  test.each(catalog.models.map((m) => [m.name, m] as const))('%s loads the release its own pod annotation names, the legacy path without one', (name, model) => {
    const isvc = find('inferenceservices.yaml', 'InferenceService', model.inferenceService);
    const container = get(isvc, 'spec', 'predictor', 'containers', 0) as { args?: string[]; env?: Array<{ name: string; value?: string; valueFrom?: unknown }> };
    const env = new Map((container.env ?? []).map((e) => [e.name, e]));
    expect(env.get('MODEL_NAME')?.value).toBe(name);
    expect(env.get('MODEL_RELEASE')?.valueFrom).toEqual({ fieldRef: { fieldPath: `metadata.annotations['${Annotations.modelRelease}']` } });
    const script = (container.args ?? []).join(' ');
    // The per-release folder promote.py writes, and the legacy served folder when no release is annotated yet.
    expect(script).toContain('DIR="/mnt/models/.releases/$MODEL_NAME/$MODEL_RELEASE"');
    expect(script).toContain('DIR="/mnt/models/$MODEL_NAME"');
    expect(get(isvc, 'spec', 'predictor', 'volumes', 0, 'persistentVolumeClaim', 'claimName')).toBe(model.storage.pvc);
    // The script really picks those folders (run by /bin/sh as the container would).
    const run = (release: string): string => execFileSync('/bin/sh', ['-c', script.replace(/exec python -m sklearnserver.*$/, 'echo "$DIR"')], { env: { MODEL_NAME: name, MODEL_RELEASE: release } }).toString().trim();
    expect(run('anomaly-run-1')).toBe(`/mnt/models/.releases/${name}/anomaly-run-1`);
    expect(run('')).toBe(`/mnt/models/${name}`);
  });
});
