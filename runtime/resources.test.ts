import { dirname, join } from 'node:path';
import { z } from 'zod';
import type { SchemaNode } from '../config/crds/crd-schema.ts';
import { fileURLToPath } from 'node:url';
import { crdValidator, crdVersion, loadCrd, schemaAt } from '../config/crds/crd-schema.ts';
import { exampleInferenceService, exampleModelRunMinimal, exampleModelRunSucceeded, exampleNvjCpu, exampleNvjGpu } from '../config/crds/examples.ts';
import {
  InferenceService,
  Job,
  Lease,
  ModelRun,
  ModelRunPhase,
  ModelRunPhases,
  ModelRunSpec,
  ModelRunStatus,
  NotebookValidationJob,
  NvjPhases,
  ObjectMeta,
  Pod,
  Resources,
  StepName,
  StepNames,
  TerminalPhases,
  isNvjTerminalPhase,
  isPodReady,
  isTerminalPhase,
  jobOutcome,
  resourcePath,
  terminationMessage,
} from './resources.ts';

const crdDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'config', 'crds');
const modelRunCrd = loadCrd(join(crdDir, 'modelrun.yaml'));
const modelRunSchema = crdVersion(modelRunCrd).schema!.openAPIV3Schema!;
const nvjCrd = loadCrd(join(crdDir, 'notebookvalidationjobs.mlops.mlops.dev.yaml'));

describe('Resources descriptors', () => {
  it('name group/version/kind/plural consistently', () => {
    for (const [name, r] of Object.entries(Resources)) {
      expect([name, r.apiVersion]).toEqual([name, r.group === '' ? r.version : `${r.group}/${r.version}`]);
      expect(r.plural).toBe(r.plural.toLowerCase());
      expect(r.namespaced).toBe(true);
    }
    expect(Object.keys(Resources)).toEqual([
      'modelRun', 'notebookValidationJob', 'inferenceService', 'application', 'pipelineRun', 'lease', 'job', 'pod', 'event',
      'configMap', 'secret', 'deployment', 'persistentVolumeClaim',
    ]);
  });

  it('match our CRD files', () => {
    const files: [keyof typeof Resources, string][] = [
      ['modelRun', 'modelrun.yaml'],
      ['notebookValidationJob', 'notebookvalidationjobs.mlops.mlops.dev.yaml'],
      ['inferenceService', 'inferenceservices.serving.kserve.io.yaml'],
      ['application', 'applications.argoproj.io.yaml'],
      ['pipelineRun', 'pipelineruns.tekton.dev.yaml'],
    ];
    for (const [name, file] of files) {
      const crd = loadCrd(join(crdDir, file));
      const r = Resources[name];
      expect([name, crd.spec.group, crd.spec.names.kind, crd.spec.names.plural, crd.spec.scope === 'Namespaced', crd.spec.versions.some((v) => v.name === r.version && v.served)]).toEqual([
        name, r.group, r.kind, r.plural, r.namespaced, true,
      ]);
    }
  });

  it('build REST paths for core and group resources', () => {
    expect(resourcePath(Resources.pod, 'mlops')).toBe('/api/v1/namespaces/mlops/pods');
    expect(resourcePath(Resources.job, 'mlops', 'r-gate')).toBe('/apis/batch/v1/namespaces/mlops/jobs/r-gate');
    expect(resourcePath(Resources.modelRun, 'mlops', 'r', 'status')).toBe('/apis/lifecycle.mlops.dev/v1alpha1/namespaces/mlops/modelruns/r/status');
    expect(resourcePath(Resources.lease)).toBe('/apis/coordination.k8s.io/v1/leases');
    expect(resourcePath(Resources.configMap, 'a b', 'x/y')).toBe('/api/v1/namespaces/a%20b/configmaps/x%2Fy');
  });
});

describe('phase and step constants', () => {
  it('mirror the CRD enums', () => {
    expect(ModelRunPhase.options).toEqual(schemaAt(modelRunSchema, '.status.phase')?.enum);
    expect(StepName.options).toEqual(Object.keys(schemaAt(modelRunSchema, '.status.steps')?.properties ?? {}));
    expect([...NvjPhases].sort()).toEqual([...(schemaAt(crdVersion(nvjCrd).schema!.openAPIV3Schema!, '.status.phase')?.enum as string[])].sort());
    expect(ModelRunPhases.RolledBack).toBe('RolledBack');
    expect(StepNames.rollback).toBe('rollback');
  });

  it('classify terminal phases', () => {
    expect(TerminalPhases).toEqual(['Succeeded', 'Failed', 'Rejected', 'RolledBack']);
    expect(ModelRunPhase.options.filter((p) => isTerminalPhase(p))).toEqual(['Succeeded', 'Failed', 'Rejected', 'RolledBack']);
    expect(isTerminalPhase(undefined)).toBe(false);
    expect(NvjPhases.filter((p) => isNvjTerminalPhase(p))).toEqual(['Succeeded', 'Failed']);
    expect(isNvjTerminalPhase('ValidationRunning')).toBe(false);
  });
});

describe('ModelRun schema', () => {
  const validate = crdValidator(modelRunCrd, { rejectUnknownFields: true });

  it('accepts the same examples as the CRD and returns them unchanged', () => {
    for (const example of [exampleModelRunMinimal(), exampleModelRunSucceeded()]) {
      expect(validate(example).ok).toBe(true);
      expect(ModelRun.parse(example)).toEqual(example);
    }
  });

  it('rejects what the CRD rejects', () => {
    const cases: ((mr: ReturnType<typeof exampleModelRunSucceeded>) => void)[] = [
      (mr) => { mr.status.phase = 'Done'; },
      (mr) => { mr.spec.trigger = 'cron'; },
      (mr) => { mr.spec.model = 'Anomaly-Detector'; },
      (mr) => { mr.spec.model = 'a'.repeat(41); },
      (mr) => { mr.spec.profile = 'tpu'; },
      (mr) => { mr.spec.training.trainingHours = 1.5; },
      (mr) => { mr.status.steps.training.started = 'yesterday'; },
      (mr) => { mr.status.gate.verdict = 'maybe'; },
      (mr) => { mr.status.artifact.sha256 = 'XYZ'; },
      (mr) => { mr.status.conditions[0]!.reason = 'has space'; },
      (mr) => { delete (mr.spec as Partial<typeof mr.spec>).idempotencyKey; },
    ];
    for (const mutate of cases) {
      const mr = exampleModelRunSucceeded();
      mutate(mr);
      expect([mutate.toString(), validate(mr).ok, ModelRun.safeParse(mr).success]).toEqual([mutate.toString(), false, false]);
    }
  });

  it('strips unknown spec/status keys as the API server prunes them, keeps unknown probe keys', () => {
    const mr = exampleModelRunSucceeded();
    (mr.spec as Record<string, unknown>).extra = 1;
    (mr.status as Record<string, unknown>).extra = 2;
    const parsed = ModelRun.parse(mr);
    expect(parsed.spec).not.toHaveProperty('extra');
    expect(parsed.status).not.toHaveProperty('extra');
    expect(parsed.status?.probe).toEqual({ rows: [[0.1, 0.2, 0.3]], expected: [1], seed: 42 });
  });

  it('declares exactly the CRD fields and required keys at every level of spec and status', () => {
    type JsonNode = { properties?: Record<string, JsonNode>; required?: string[]; items?: JsonNode; anyOf?: JsonNode[] };
    const differences: string[] = [];
    const unwrap = (n: JsonNode): JsonNode => n.anyOf?.find((a) => a.properties || a.items) ?? n;
    const compare = (crd: SchemaNode, json: JsonNode, path: string): void => {
      json = unwrap(json);
      if (crd.properties) {
        const crdKeys = Object.keys(crd.properties).sort();
        const zodKeys = Object.keys(json.properties ?? {}).sort();
        if (JSON.stringify(crdKeys) !== JSON.stringify(zodKeys)) differences.push(`${path}: CRD ${crdKeys.join(',')} / zod ${zodKeys.join(',')}`);
        if (JSON.stringify([...(crd.required ?? [])].sort()) !== JSON.stringify([...(json.required ?? [])].sort())) differences.push(`${path}: required differs`);
        for (const [k, child] of Object.entries(crd.properties)) if (json.properties?.[k]) compare(child, json.properties[k], `${path}.${k}`);
      }
      if (crd.items && json.items) compare(crd.items, json.items, `${path}[]`);
    };
    const json = z.toJSONSchema(ModelRun, { io: 'input', unrepresentable: 'any' }) as JsonNode;
    compare(modelRunSchema.properties!.spec!, json.properties!.spec!, '.spec');
    compare(modelRunSchema.properties!.status!, json.properties!.status!, '.status');
    expect(differences).toEqual([]);
  });

  it('parses spec and status on their own, with null replaced/restored', () => {
    expect(ModelRunSpec.parse(exampleModelRunMinimal().spec)).toEqual(exampleModelRunMinimal().spec);
    expect(ModelRunStatus.parse({ phase: 'RolledBack', release: { promoted: 'a', replaced: null, restored: 'b' } })).toEqual({ phase: 'RolledBack', release: { promoted: 'a', replaced: null, restored: 'b' } });
    expect(ModelRunStatus.parse({})).toEqual({});
  });
});

describe('NotebookValidationJob and InferenceService schemas', () => {
  it('accept the CPU and GPU NVJs the CRD accepts, keeping every field', () => {
    const validate = crdValidator(nvjCrd, { rejectUnknownFields: true });
    for (const nvj of [exampleNvjCpu(), exampleNvjGpu()]) {
      expect(validate(nvj).ok).toBe(true);
      expect(NotebookValidationJob.parse(nvj)).toEqual(nvj);
    }
  });

  it('keep unknown upstream fields and accept an unknown future phase', () => {
    const nvj = exampleNvjGpu() as ReturnType<typeof exampleNvjGpu> & { status: Record<string, unknown> };
    nvj.status.results = [{ cellIndex: 0, status: 'Success' }];
    nvj.status.phase = 'Archived';
    const parsed = NotebookValidationJob.parse(nvj);
    expect(parsed.status?.results).toEqual([{ cellIndex: 0, status: 'Success' }]);
    expect(parsed.status?.phase).toBe('Archived');
  });

  it('reject an NVJ missing its notebook git ref or with a numeric GPU quantity', () => {
    const noRef = exampleNvjCpu();
    delete (noRef.spec.notebook.git as Partial<typeof noRef.spec.notebook.git>).ref;
    expect(NotebookValidationJob.safeParse(noRef).success).toBe(false);
    const numeric = exampleNvjGpu();
    (numeric.spec.podConfig.resources.limits as Record<string, unknown>)['nvidia.com/gpu'] = 1;
    expect(NotebookValidationJob.safeParse(numeric).success).toBe(false);
  });

  it('InferenceService keeps predictor fields we do not model', () => {
    const isvc = exampleInferenceService();
    const parsed = InferenceService.parse(isvc);
    expect(parsed).toEqual(isvc);
    expect(parsed.spec.predictor.annotations?.['mlops.dev/model-release']).toBe('anomaly-detector-5f2c9a71d3');
  });
});

describe('core kinds', () => {
  it('ObjectMeta accepts Date timestamps from the typed client and string ones from raw JSON', () => {
    expect(ObjectMeta.parse({ name: 'a', creationTimestamp: new Date(0) }).creationTimestamp).toEqual(new Date(0));
    expect(ObjectMeta.parse({ name: 'a', creationTimestamp: '2025-06-01T00:00:00Z' }).creationTimestamp).toBe('2025-06-01T00:00:00Z');
    expect(ObjectMeta.safeParse({ labels: { a: 1 } }).success).toBe(false);
  });

  it('Lease: the per-model lock', () => {
    const lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'model-lock-anomaly-detector', namespace: 'mlops' },
      spec: { holderIdentity: 'anomaly-detector-5f2c9a71d3', leaseDurationSeconds: 14400, acquireTime: '2025-06-01T02:00:03.000000Z', renewTime: '2025-06-01T02:00:03.000000Z' },
    };
    expect(Lease.parse(lease)).toEqual(lease);
    expect(Lease.safeParse({ ...lease, spec: { leaseDurationSeconds: '1h' } }).success).toBe(false);
  });

  it('Job: outcome from conditions', () => {
    const job = (conditions: { type: string; status: string }[], extra = {}) =>
      Job.parse({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'r-gate' }, status: { conditions, ...extra } });
    expect(jobOutcome(job([{ type: 'Complete', status: 'True' }], { succeeded: 1 }))).toBe('succeeded');
    expect(jobOutcome(job([{ type: 'FailureTarget', status: 'True' }, { type: 'Failed', status: 'True' }], { failed: 1 }))).toBe('failed');
    expect(jobOutcome(job([{ type: 'Complete', status: 'False' }]))).toBe('running');
    expect(jobOutcome(Job.parse({ metadata: { name: 'x' } }))).toBe('running');
  });

  it('Pod: readiness and the termination message that carries a Job result', () => {
    const pod = Pod.parse({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'r-gate-abcde', labels: { 'batch.kubernetes.io/job-name': 'r-gate' }, annotations: {} },
      status: {
        phase: 'Succeeded',
        podIP: '10.0.0.7',
        conditions: [{ type: 'Ready', status: 'False' }],
        containerStatuses: [
          { name: 'sidecar', state: { running: { startedAt: '2025-06-01T02:41:12Z' } } },
          { name: 'gate', state: { terminated: { exitCode: 0, reason: 'Completed', message: '{"verdict":"approved"}' } } },
        ],
      },
    });
    expect(isPodReady(pod)).toBe(false);
    expect(terminationMessage(pod)).toBe('{"verdict":"approved"}');
    expect(terminationMessage(pod, 'gate')).toBe('{"verdict":"approved"}');
    expect(terminationMessage(pod, 'sidecar')).toBeUndefined();
    const ready = Pod.parse({ metadata: { name: 'p' }, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } });
    expect(isPodReady(ready)).toBe(true);
    expect(Pod.safeParse({ metadata: { name: 'p' }, status: { containerStatuses: [{ name: 'c', state: { terminated: { message: 'no exit code' } } }] } }).success).toBe(false);
  });
});
