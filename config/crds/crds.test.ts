import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { crdProblems, crdValidator, crdVersion, loadCrd, schemaAt, structuralProblems } from './crd-schema.ts';
import type { Crd, SchemaNode } from './crd-schema.ts';
import { exampleInferenceService, exampleModelRunMinimal, exampleModelRunSucceeded, exampleNvjCpu, exampleNvjGpu } from './examples.ts';

const dir = dirname(fileURLToPath(import.meta.url));
const crdFiles = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
const load = (file: string): Crd => loadCrd(join(dir, file));

describe('every CRD file', () => {
  it('is the expected set of files', () => {
    expect(crdFiles).toEqual([
      'applications.argoproj.io.yaml',
      'inferenceservices.serving.kserve.io.yaml',
      'modelrun.yaml',
      'notebookvalidationjobs.mlops.mlops.dev.yaml',
      'pipelineruns.tekton.dev.yaml',
    ]);
  });

  it.each(crdFiles)('%s is one YAML document without anchors, a valid structural v1 CRD', (file) => {
    const text = readFileSync(join(dir, file), 'utf8');
    const docs = parseAllDocuments(text);
    expect(Array.isArray(docs) && docs.length).toBe(1);
    // Anchors/aliases are legal YAML but not every Kubernetes tool expands them; keep the files plain.
    expect(text).not.toMatch(/:\s+[&*][A-Za-z]/);
    const crd = load(file);
    expect(crdProblems(crd)).toEqual([]);
    for (const v of crd.spec.versions) expect(v.served).toBe(true);
  });

  it.each(crdFiles)('%s names its file after <plural>.<group> (modelrun.yaml excepted)', (file) => {
    const crd = load(file);
    expect(file === 'modelrun.yaml' ? crd.metadata.name === 'modelruns.lifecycle.mlops.dev' : file === `${crd.metadata.name}.yaml`).toBe(true);
  });
});

describe('the CRD checker', () => {
  it('reports nodes without a type, properties on non-objects and bad CRD shape', () => {
    const schema: SchemaNode = {
      type: 'object',
      properties: {
        metadata: { type: 'object', properties: { name: { type: 'string' } } },
        spec: { properties: { a: { type: 'string' } } },
        list: { type: 'array' },
        free: { 'x-kubernetes-preserve-unknown-fields': true },
        both: { type: 'object', properties: { x: { type: 'string' } }, additionalProperties: { type: 'string' } },
        off: { type: 'object', 'x-kubernetes-preserve-unknown-fields': false },
      },
    };
    expect(structuralProblems(schema)).toEqual([
      'metadata: only type is allowed at the root, found properties',
      '.spec: no type',
      '.list: array without items',
      '.both: properties and additionalProperties together',
      '.off: x-kubernetes-preserve-unknown-fields: false is not allowed',
    ]);
    const crd = load('modelrun.yaml');
    crd.metadata.name = 'modelruns.example.com';
    crd.spec.versions[0]!.storage = false;
    crd.spec.versions[0]!.additionalPrinterColumns![0]!.type = 'text';
    expect(crdProblems(crd)).toEqual([
      'metadata.name must be modelruns.lifecycle.mlops.dev',
      'exactly one version must have storage: true',
      'v1alpha1: printer column MODEL has type text',
    ]);
  });
});

describe('ModelRun CRD', () => {
  const crd = load('modelrun.yaml');
  const version = crdVersion(crd);
  const validate = crdValidator(crd, { rejectUnknownFields: true });

  it('has the names, scope, version, subresource and printer columns of the contract', () => {
    expect(crd.metadata.name).toBe('modelruns.lifecycle.mlops.dev');
    expect(crd.spec.group).toBe('lifecycle.mlops.dev');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toEqual({
      kind: 'ModelRun',
      listKind: 'ModelRunList',
      plural: 'modelruns',
      singular: 'modelrun',
      shortNames: ['mrun'],
      categories: ['mlops'],
    });
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([['v1alpha1', true, true]]);
    expect(version.subresources).toEqual({ status: {} });
    expect(version.additionalPrinterColumns).toEqual([
      { name: 'MODEL', type: 'string', jsonPath: '.spec.model' },
      { name: 'TRIGGER', type: 'string', jsonPath: '.spec.trigger' },
      { name: 'PHASE', type: 'string', jsonPath: '.status.phase' },
      { name: 'AGE', type: 'date', jsonPath: '.metadata.creationTimestamp' },
      { name: 'RELEASE', type: 'string', jsonPath: '.status.release.promoted', priority: 1 },
      { name: 'STEP', type: 'string', jsonPath: '.status.step', priority: 1 },
    ]);
  });

  it('declares every printer column path in its schema', () => {
    const schema = version.schema!.openAPIV3Schema!;
    for (const col of version.additionalPrinterColumns ?? []) {
      if (col.jsonPath.startsWith('.metadata.')) continue;
      expect([col.jsonPath, schemaAt(schema, col.jsonPath)?.type]).toEqual([col.jsonPath, 'string']);
    }
  });

  it('has the enums of the contract', () => {
    const schema = version.schema!.openAPIV3Schema!;
    expect(schemaAt(schema, '.spec.trigger')?.enum).toEqual(['schedule', 'drift', 'git', 'manual', 'pipeline', 'retry', 'catchup', 'manual-rollback']);
    expect(schemaAt(schema, '.spec.profile')?.enum).toEqual(['cpu', 'gpu']);
    expect(schemaAt(schema, '.spec.training.dataSource')?.enum).toEqual(['synthetic', 'prometheus', 'hybrid']);
    expect(schemaAt(schema, '.status.phase')?.enum).toEqual(['Pending', 'Training', 'Copying', 'Gating', 'Promoting', 'Verifying', 'Succeeded', 'Failed', 'Rejected', 'RolledBack']);
    expect(schemaAt(schema, '.status.gate.verdict')?.enum).toEqual(['approved', 'rejected']);
    expect(schemaAt(schema, '.spec')?.required).toEqual(['model', 'trigger', 'idempotencyKey', 'profile']);
    expect(Object.keys(schemaAt(schema, '.status.steps')?.properties ?? {})).toEqual(['training', 'copy', 'gate', 'promote', 'verify', 'rollback']);
    expect(schemaAt(schema, '.status.gate.report')?.['x-kubernetes-preserve-unknown-fields']).toBe(true);
    expect(schemaAt(schema, '.status.probe')?.['x-kubernetes-preserve-unknown-fields']).toBe(true);
    expect(schemaAt(schema, '.status.release.replaced')?.nullable).toBe(true);
    expect(schemaAt(schema, '.status.artifact.bytes')?.format).toBe('int64');
  });

  it('accepts a minimal and a complete ModelRun', () => {
    expect(validate(exampleModelRunMinimal())).toEqual({ ok: true, errors: [] });
    expect(validate(exampleModelRunSucceeded())).toEqual({ ok: true, errors: [] });
  });

  it('accepts every trigger and phase and a run with no status yet', () => {
    for (const trigger of ['schedule', 'drift', 'git', 'manual', 'pipeline', 'retry', 'catchup']) {
      const mr = exampleModelRunMinimal();
      mr.spec.trigger = trigger;
      expect(validate(mr).ok).toBe(true);
    }
    for (const phase of ['Pending', 'Training', 'Copying', 'Gating', 'Promoting', 'Verifying', 'Failed', 'Rejected', 'RolledBack']) {
      const mr = exampleModelRunSucceeded();
      mr.status.phase = phase;
      expect(validate(mr).ok).toBe(true);
    }
  });

  const rejects: [string, (mr: ReturnType<typeof exampleModelRunSucceeded>) => void, string][] = [
    ['an unknown phase', (mr) => { mr.status.phase = 'Done'; }, '/status/phase: must be equal to one of the allowed values (Pending|Training|Copying|Gating|Promoting|Verifying|Succeeded|Failed|Rejected|RolledBack)'],
    ['an unknown trigger', (mr) => { mr.spec.trigger = 'cron'; }, '/spec/trigger: must be equal to one of the allowed values (schedule|drift|git|manual|pipeline|retry|catchup|manual-rollback)'],
    ['a model name with uppercase', (mr) => { mr.spec.model = 'Anomaly-Detector'; }, '/spec/model: must match pattern "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"'],
    ['a model name over 40 characters', (mr) => { mr.spec.model = 'a'.repeat(41); }, '/spec/model: must NOT have more than 40 characters'],
    ['a bad profile', (mr) => { mr.spec.profile = 'tpu'; }, '/spec/profile: must be equal to one of the allowed values (cpu|gpu)'],
    ['a fractional trainingHours', (mr) => { mr.spec.training.trainingHours = 1.5; }, '/spec/training/trainingHours: must be integer'],
    ['a bad dataSource', (mr) => { mr.spec.training.dataSource = 'csv'; }, '/spec/training/dataSource: must be equal to one of the allowed values (synthetic|prometheus|hybrid)'],
    ['a non-date step time', (mr) => { mr.status.steps.training.started = 'yesterday'; }, '/status/steps/training/started: must match format "date-time"'],
    ['a bad verdict', (mr) => { mr.status.gate.verdict = 'maybe'; }, '/status/gate/verdict: must be equal to one of the allowed values (approved|rejected)'],
    ['a bad sha256', (mr) => { mr.status.artifact.sha256 = 'XYZ'; }, '/status/artifact/sha256: must match pattern "^[a-f0-9]{64}$"'],
    ['a gate check without ok', (mr) => { mr.status.gate.checks.push({ name: 'x' } as never); }, "/status/gate/checks/3: must have required property 'ok'"],
    ['a misspelt spec field', (mr) => { (mr.spec as Record<string, unknown>).triger = 'git'; }, '/spec: unknown field triger'],
    ['an unknown step record', (mr) => { (mr.status.steps as Record<string, unknown>).deploy = {}; }, '/status/steps: unknown field deploy'],
    ['a condition with a bad status', (mr) => { mr.status.conditions[0]!.status = 'yes'; }, "/status/conditions/0/status: must be equal to one of the allowed values (True|False|Unknown)"],
  ];
  it.each(rejects)('rejects %s', (_name, mutate, error) => {
    const mr = exampleModelRunSucceeded();
    mutate(mr);
    expect(validate(mr)).toEqual({ ok: false, errors: [error] });
  });

  it('rejects a spec without its required fields and the wrong apiVersion', () => {
    const mr = exampleModelRunMinimal() as Record<string, unknown>;
    mr.apiVersion = 'lifecycle.mlops.dev/v1';
    mr.spec = { model: 'x' };
    expect(validate(mr).errors).toEqual([
      'apiVersion must be lifecycle.mlops.dev/v1alpha1',
      "/spec: must have required property 'trigger'",
      "/spec: must have required property 'idempotencyKey'",
      "/spec: must have required property 'profile'",
    ]);
  });

  it('keeps anything in preserve-unknown nodes (gate report, probe) and allows null replaced/restored', () => {
    const mr = exampleModelRunSucceeded();
    (mr.status.gate.report as Record<string, unknown>).nested = { deep: [1, { x: null }] };
    (mr.status.probe as Record<string, unknown>).anything = 'goes';
    mr.status.release.replaced = null as unknown as string;
    expect(validate(mr)).toEqual({ ok: true, errors: [] });
  });
});

describe('NotebookValidationJob CRD', () => {
  const crd = load('notebookvalidationjobs.mlops.mlops.dev.yaml');
  const validate = crdValidator(crd, { rejectUnknownFields: true });

  it('has the upstream names and a status subresource', () => {
    expect(crd.spec.group).toBe('mlops.mlops.dev');
    expect(crd.spec.names.kind).toBe('NotebookValidationJob');
    expect(crd.spec.names.plural).toBe('notebookvalidationjobs');
    expect(crd.spec.names.shortNames).toEqual(['nvj', 'nvjob']);
    expect(crdVersion(crd).name).toBe('v1alpha1');
    expect(crdVersion(crd).subresources).toEqual({ status: {} });
    expect(schemaAt(crdVersion(crd).schema!.openAPIV3Schema!, '.status.phase')?.enum).toEqual([
      'Initializing', 'Building', 'BuildComplete', 'ValidationRunning', 'Succeeded', 'Failed', 'Pending', 'Running',
    ]);
  });

  it('accepts the CPU and GPU NVJs start-training creates', () => {
    expect(validate(exampleNvjCpu())).toEqual({ ok: true, errors: [] });
    expect(validate(exampleNvjGpu())).toEqual({ ok: true, errors: [] });
  });

  const rejects: [string, (nvj: ReturnType<typeof exampleNvjGpu>) => void, string][] = [
    ['a spec.retries field (upstream has none)', (n) => { (n.spec as Record<string, unknown>).retries = 2; }, '/spec: unknown field retries'],
    ['a GPU quantity as a number (upstream map is string-valued)', (n) => { (n.spec.podConfig.resources.limits as Record<string, unknown>)['nvidia.com/gpu'] = 1; }, '/spec/podConfig/resources/limits/nvidia.com~1gpu: must be string'],
    ['a notebook path that is not .ipynb', (n) => { n.spec.notebook.path = 'train.py'; }, '/spec/notebook/path: must match pattern "^.*\\.ipynb$"'],
    ['a relative mountPath', (n) => { n.spec.podConfig.volumeMounts[0]!.mountPath = 'mnt/models'; }, '/spec/podConfig/volumeMounts/0/mountPath: must match pattern "^/.*$"'],
    ['a git ref under a wrong key', (n) => { (n.spec.notebook.git as Record<string, unknown>).revision = 'main'; }, '/spec/notebook/git: unknown field revision'],
    ['a bad timeout', (n) => { n.spec.timeout = '2 hours'; }, '/spec/timeout: must match pattern "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"'],
    ['an unknown phase', (n) => { n.status.phase = 'Done'; }, '/status/phase: must be equal to one of the allowed values (Initializing|Building|BuildComplete|ValidationRunning|Succeeded|Failed|Pending|Running)'],
    ['a bad toleration operator', (n) => { n.spec.podConfig.tolerations[0]!.operator = 'In'; }, '/spec/podConfig/tolerations/0/operator: must be equal to one of the allowed values (Exists|Equal)'],
  ];
  it.each(rejects)('rejects %s', (_name, mutate, error) => {
    const nvj = exampleNvjGpu();
    mutate(nvj);
    expect(validate(nvj)).toEqual({ ok: false, errors: [error] });
  });

  it('keeps unknown status fields (the operator writes many we do not read)', () => {
    const nvj = exampleNvjGpu();
    (nvj.status as Record<string, unknown>).results = [{ cellIndex: 0, status: 'Success' }];
    expect(validate(nvj)).toEqual({ ok: true, errors: [] });
  });
});

describe('InferenceService, Application and PipelineRun CRDs', () => {
  it('InferenceService: v1beta1 with status subresource; accepts our patched predictor, rejects a non-string annotation', () => {
    const crd = load('inferenceservices.serving.kserve.io.yaml');
    expect([crd.spec.group, crdVersion(crd).name, crd.spec.names.kind, crd.spec.names.shortNames]).toEqual(['serving.kserve.io', 'v1beta1', 'InferenceService', ['isvc']]);
    expect(crdVersion(crd).subresources).toEqual({ status: {} });
    const validate = crdValidator(crd, { rejectUnknownFields: true });
    expect(validate(exampleInferenceService())).toEqual({ ok: true, errors: [] });
    const bad = exampleInferenceService();
    (bad.spec.predictor.annotations as Record<string, unknown>)['mlops.dev/model-release'] = 7;
    expect(validate(bad)).toEqual({ ok: false, errors: ['/spec/predictor/annotations/mlops.dev~1model-release: must be string'] });
  });

  it('Application: v1alpha1 with a top-level operation; accepts operation.sync and ignoreDifferences', () => {
    const crd = load('applications.argoproj.io.yaml');
    expect([crd.spec.group, crdVersion(crd).name, crd.spec.names.kind, crd.spec.names.plural]).toEqual(['argoproj.io', 'v1alpha1', 'Application', 'applications']);
    const validate = crdValidator(crd, { rejectUnknownFields: true });
    const app = {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name: 'model-serving', namespace: 'openshift-gitops', annotations: { 'mlops.dev/notebook-status': '{"total":1}' } },
      spec: {
        project: 'default',
        source: { repoURL: 'https://github.com/example/deploy.git', path: 'serving', targetRevision: 'main' },
        destination: { server: 'https://kubernetes.default.svc', namespace: 'mlops' },
        syncPolicy: { automated: { prune: true, selfHeal: true }, syncOptions: ['RespectIgnoreDifferences=true'] },
        ignoreDifferences: [{ group: 'serving.kserve.io', kind: 'InferenceService', jsonPointers: ['/spec/predictor/annotations/mlops.dev~1model-release'] }],
      },
      operation: { initiatedBy: { username: 'model-lifecycle' }, sync: { revision: 'main', prune: true } },
      status: { sync: { status: 'Synced' }, health: { status: 'Healthy' } },
    };
    expect(validate(app)).toEqual({ ok: true, errors: [] });
    const bad = structuredClone(app) as Record<string, unknown> & { spec: { ignoreDifferences: Record<string, unknown>[] } };
    delete bad.spec.ignoreDifferences[0]!.kind;
    expect(validate(bad)).toEqual({ ok: false, errors: ["/spec/ignoreDifferences/0: must have required property 'kind'"] });
  });

  it('PipelineRun: v1beta1 and v1 served, v1 stored, anything in spec/status', () => {
    const crd = load('pipelineruns.tekton.dev.yaml');
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([['v1beta1', true, false], ['v1', true, true]]);
    const pr = (apiVersion: string) => ({
      apiVersion,
      kind: 'PipelineRun',
      metadata: { name: 'train-abc', labels: { 'mlops.dev/retrain-model': 'anomaly-detector' } },
      spec: { pipelineRef: { name: 'train' }, params: [{ name: 'x', value: 'y' }] },
      status: { conditions: [{ type: 'Succeeded', status: 'True', reason: 'Succeeded' }] },
    });
    expect(crdValidator(crd)(pr('tekton.dev/v1'))).toEqual({ ok: true, errors: [] });
    expect(crdValidator(crd, { version: 'v1beta1' })(pr('tekton.dev/v1beta1'))).toEqual({ ok: true, errors: [] });
    expect(crdValidator(crd)(pr('tekton.dev/v1beta1')).errors).toEqual(['apiVersion must be tekton.dev/v1']);
  });
});
