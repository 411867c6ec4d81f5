// Example objects shaped like the ones model-lifecycle writes, for the CRD and schema tests (and any
// test that needs a realistic ModelRun or NVJ). Each call returns a fresh copy the caller may mutate.

const run = 'anomaly-detector-5f2c9a71d3';
const gpuRun = 'predictive-analytics-0b7e4d19aa';
const namespace = 'mlops';

const labels = (model: string, runName: string, step: string): Record<string, string> => ({
  'app.kubernetes.io/managed-by': 'model-lifecycle',
  'mlops.dev/model': model,
  'mlops.dev/run': runName,
  'mlops.dev/step': step,
});

const ownerRef = (runName: string) => [
  { apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', name: runName, uid: '0c9d6a52-4b7e-4a8f-9f0e-2d6f3c1b7a10', controller: true, blockOwnerDeletion: true },
];

/** A ModelRun just created by start-training (no status yet). */
export function exampleModelRunMinimal() {
  return {
    apiVersion: 'lifecycle.mlops.dev/v1alpha1',
    kind: 'ModelRun',
    metadata: { name: run, namespace, labels: labels('anomaly-detector', run, 'start-training') },
    spec: { model: 'anomaly-detector', trigger: 'schedule', idempotencyKey: 'schedule:anomaly-detector:2025-06-01T02:00:00Z', profile: 'cpu' },
  };
}

/** A ModelRun that went all the way: trained, gated, promoted, verified. Every status field is set. */
export function exampleModelRunSucceeded() {
  return {
    apiVersion: 'lifecycle.mlops.dev/v1alpha1',
    kind: 'ModelRun',
    metadata: {
      name: run,
      namespace,
      uid: '0c9d6a52-4b7e-4a8f-9f0e-2d6f3c1b7a10',
      resourceVersion: '4812',
      generation: 1,
      creationTimestamp: '2025-06-01T02:00:03Z',
      labels: labels('anomaly-detector', run, 'start-training'),
    },
    spec: {
      model: 'anomaly-detector',
      trigger: 'drift',
      idempotencyKey: 'drift:anomaly-detector:3f1e9b0c2a7d4e58',
      profile: 'cpu',
      provenance: {
        alertFingerprint: '3f1e9b0c2a7d4e58',
        alertName: 'ModelDriftDetected',
        groupKey: '{}/{alertname="ModelDriftDetected"}:{model="anomaly-detector"}',
        startsAt: '2025-06-01T01:58:00Z',
        generatorURL: 'http://prometheus:9090/graph?g0.expr=drift',
        eventSource: '/model-lifecycle/drift-intake',
        eventId: '6c1f0b1e-8f5a-4d8e-9a55-1f3e0e6b2c11',
      },
      training: {
        dataSource: 'prometheus',
        trainingHours: 168,
        trainingDays: 7,
        gitUrl: 'https://github.com/example/ml-notebooks.git',
        gitRef: 'main',
        notebookPath: 'notebooks/anomaly-detector.ipynb',
        image: 'quay.io/example/notebook-sklearn:1.4',
        serviceAccountName: 'model-training',
        prometheusUrl: 'http://prometheus-k8s.openshift-monitoring.svc:9090',
      },
      requestedBy: 'alertmanager',
      reason: 'drift alert ModelDriftDetected fired',
    },
    status: {
      phase: 'Succeeded',
      step: 'verify',
      message: 'release anomaly-detector-5f2c9a71d3 verified on 2 new pods',
      observedGeneration: 1,
      warnings: ['training took 71% of its deadline'],
      steps: {
        training: { started: '2025-06-01T02:00:04Z', finished: '2025-06-01T02:41:10Z', outcome: 'succeeded', message: 'NVJ Succeeded', job: run },
        gate: { started: '2025-06-01T02:41:11Z', finished: '2025-06-01T02:41:40Z', outcome: 'approved', job: `${run}-gate` },
        promote: { started: '2025-06-01T02:41:41Z', finished: '2025-06-01T02:41:52Z', outcome: 'promoted', job: `${run}-promote` },
        verify: { started: '2025-06-01T02:41:53Z', finished: '2025-06-01T02:43:02.125Z', outcome: 'verified' },
      },
      artifact: { path: `.runs/${run}/anomaly-detector/model.pkl`, bytes: 1843221, sha256: 'a3f5c0e1b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a6' },
      gate: {
        verdict: 'approved',
        simulated: false,
        checks: [
          { name: 'exists', ok: true },
          { name: 'minBytes', ok: true, message: '1843221 >= 1024' },
          { name: 'predictWidth', ok: true, message: '45 features in, label out' },
        ],
        report: { loadSeconds: 0.41, width: 45, outputKind: 'label', values: [1, -1] },
      },
      probe: { rows: [[0.1, 0.2, 0.3]], expected: [1], seed: 42 },
      release: { promoted: run, replaced: 'anomaly-detector-1a2b3c4d5e', restored: null },
      deadlines: { step: '2025-06-01T02:53:00Z', run: '2025-06-01T06:00:03+00:00' },
      startedAt: '2025-06-01T02:00:04Z',
      finishedAt: '2025-06-01T02:43:02.125Z',
      conditions: [
        { type: 'Ready', status: 'True', reason: 'Verified', message: 'new pods answered the probe', lastTransitionTime: '2025-06-01T02:43:02Z', observedGeneration: 1 },
      ],
    },
  };
}

const notebookGit = { url: 'https://github.com/example/ml-notebooks.git', ref: 'main' };

function trainingEnv(model: string, hours: number) {
  return [
    { name: 'DATA_SOURCE', value: 'prometheus' },
    { name: 'TRAINING_HOURS', value: String(hours) },
    { name: 'TRAINING_DAYS', value: String(Math.ceil(hours / 24)) },
    { name: 'PROMETHEUS_URL', value: 'http://prometheus-k8s.openshift-monitoring.svc:9090' },
    { name: 'MODEL_NAME', value: model },
  ];
}

/** The NVJ start-training creates for a CPU model (docs/design.md, Kubernetes contract). */
export function exampleNvjCpu() {
  return {
    apiVersion: 'mlops.mlops.dev/v1alpha1',
    kind: 'NotebookValidationJob',
    metadata: { name: run, namespace, labels: labels('anomaly-detector', run, 'training'), ownerReferences: ownerRef(run) },
    spec: {
      notebook: { git: notebookGit, path: 'notebooks/anomaly-detector.ipynb' },
      podConfig: {
        containerImage: 'quay.io/example/notebook-sklearn:1.4',
        serviceAccountName: 'model-training',
        env: trainingEnv('anomaly-detector', 168),
        envFrom: [{ configMapRef: { name: 'model-storage-config' } }],
        resources: { requests: { cpu: '1', memory: '2Gi' }, limits: { cpu: '2', memory: '4Gi' } },
        volumes: [{ name: 'model-storage', persistentVolumeClaim: { claimName: 'model-storage-pvc' } }],
        // The unchanged notebook writes /mnt/models/<model>/model.pkl, which lands in the run's staging folder.
        volumeMounts: [{ name: 'model-storage', mountPath: '/mnt/models', subPath: `.runs/${run}` }],
      },
      timeout: '2h',
    },
  };
}

/** The NVJ for a GPU model: GPU limit, toleration, node selector and the GPU PVC. */
export function exampleNvjGpu() {
  return {
    apiVersion: 'mlops.mlops.dev/v1alpha1',
    kind: 'NotebookValidationJob',
    metadata: { name: gpuRun, namespace, labels: labels('predictive-analytics', gpuRun, 'training'), ownerReferences: ownerRef(gpuRun) },
    spec: {
      notebook: { git: { ...notebookGit, credentialsSecret: 'git-credentials' }, path: 'notebooks/predictive-analytics.ipynb' },
      podConfig: {
        containerImage: 'quay.io/example/notebook-pytorch:2.3',
        serviceAccountName: 'model-training',
        env: trainingEnv('predictive-analytics', 720),
        envFrom: [{ configMapRef: { name: 'model-storage-config' } }],
        resources: { requests: { cpu: '2', memory: '8Gi', 'nvidia.com/gpu': '1' }, limits: { memory: '16Gi', 'nvidia.com/gpu': '1' } },
        volumes: [{ name: 'model-storage', persistentVolumeClaim: { claimName: 'model-storage-gpu-pvc' } }],
        volumeMounts: [{ name: 'model-storage', mountPath: '/mnt/models', subPath: `.runs/${gpuRun}` }],
        tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
        nodeSelector: { 'nvidia.com/gpu.present': 'true' },
      },
      timeout: '6h',
    },
    status: {
      phase: 'Succeeded',
      message: 'notebook executed',
      startTime: '2025-06-01T03:00:05Z',
      completionTime: '2025-06-01T04:12:40Z',
      retryCount: 0,
      validationPodName: `${gpuRun}-validation`,
      conditions: [{ type: 'Ready', status: 'True', reason: 'ValidationSucceeded', message: 'done', lastTransitionTime: '2025-06-01T04:12:40Z' }],
    },
  };
}

/** An InferenceService after a restart patch. */
export function exampleInferenceService() {
  return {
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: { name: 'anomaly-detector', namespace },
    spec: {
      predictor: {
        minReplicas: 1,
        annotations: { 'mlops.dev/model-release': run },
        model: {
          modelFormat: { name: 'sklearn' },
          protocolVersion: 'v1',
          runtime: 'sklearn-runtime',
          storageUri: 'pvc://model-storage-pvc/anomaly-detector',
        },
      },
    },
    status: { url: 'http://anomaly-detector.mlops.svc.cluster.local', conditions: [{ type: 'Ready', status: 'True' }] },
  };
}
