// End to end through the real functions, the local broker (every event delivered three times), the emulator
// enforcing the rendered Roles, and the simulated operator / Job runner / KServe predictor running the real
// copy, gate and promote scripts on real sklearn models.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudEvent } from 'cloudevents';
import { DEV_NAMESPACE, startLocal, type Local, type LocalOptions } from '../dev/local.ts';
import { BROKER_NAME, StepRules, renderManifests } from '../config/render.ts';
import { startSubscriber, type Subscriber } from '../dev/broker/testkit.ts';
import { EventTypes } from '../events/index.ts';
import { loadCatalog } from '../runtime/catalog.ts';
import type { ModelRun } from '../runtime/resources.ts';
import { isTerminalPhase } from '../runtime/resources.ts';
import { ManualClock } from './kit.ts';

const catalog = loadCatalog('config/models.yaml');
const MODELS = catalog.models.map((m) => m.name);
const SA_PREFIX = `system:serviceaccount:${DEV_NAMESPACE}:mlops-`;
const used = new Set<string>();
const seenEvents = new Map<Local, Subscriber>();

const sha256 = (path: string): string | undefined => (existsSync(path) ? createHash('sha256').update(readFileSync(path)).digest('hex') : undefined);
const servedFile = (local: Local, model: string): string => join(local.stateDir, 'pvc', 'model-storage-pvc', model, 'model.pkl');
const runs = (local: Local): ModelRun[] => local.emulator.store.list({ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun' }, { namespace: DEV_NAMESPACE }) as unknown as ModelRun[];

async function until(what: string, cond: () => boolean, ms = 90_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

function request(model: string, id: string): CloudEvent<unknown> {
  return new CloudEvent({ type: EventTypes.trainingRequested, source: '/e2e', id, datacontenttype: 'application/json', traceparent: TRACEPARENT, data: { model, trigger: 'manual', requestedBy: 'e2e' } });
}

interface Outcome { local: Local; before: Record<string, string | undefined>; rollouts: string[] }

async function runScenario(scenario: string, drive?: (local: Local, clock: ManualClock) => Promise<void>, cluster: Pick<LocalOptions, 'profile' | 'kubeVersion'> = {}): Promise<Outcome> {
  const clock = new ManualClock(new Date().toISOString());
  const local = await startLocal({ catalog, scenario, env: {}, deliveries: 3, simulatorMode: 'test', clock, ...cluster });
  // A catch-all subscriber sees every event with its extensions (trace context checks).
  const everything = await startSubscriber();
  local.broker.setTriggers([...renderManifests(catalog, { namespace: DEV_NAMESPACE, image: 'local' })['knative/triggers.yaml'] ?? [], {
    apiVersion: 'eventing.knative.dev/v1', kind: 'Trigger', metadata: { name: 'e2e-everything', namespace: DEV_NAMESPACE },
    spec: { broker: BROKER_NAME, filter: { attributes: {} }, subscriber: { uri: everything.url } },
  }]);
  seenEvents.set(local, everything);
  const before = Object.fromEntries(MODELS.map((m) => [m, sha256(servedFile(local, m))]));
  // A rollout is a change of the release annotation on an InferenceService (what makes KServe roll pods).
  const rollouts: string[] = [];
  local.emulator.store.onEvent((e) => {
    if (e.storageKey !== 'serving.kserve.io/inferenceservices' || e.type !== 'MODIFIED') return;
    const release = (o: unknown): string | undefined => (o as { spec?: { predictor?: { annotations?: Record<string, string> } } } | undefined)?.spec?.predictor?.annotations?.['mlops.dev/model-release'];
    if (release(e.object) !== release(e.oldObject)) rollouts.push(`${e.object.metadata.name} ${release(e.object) ?? ''}`);
  });
  for (const model of MODELS) await local.broker.send(request(model, `${scenario}-${model}`));
  if (drive) await drive(local, clock);
  await until(`${scenario}: every run terminal`, () => MODELS.every((m) => runs(local).some((r) => r.spec.model === m && isTerminalPhase(r.status?.phase))));
  await local.broker.idle(30_000);
  for (const r of local.emulator.requests) {
    if (!r.user.startsWith(SA_PREFIX)) continue;
    used.add(`${r.user.slice(SA_PREFIX.length)} ${r.group}/${r.resource}${r.subresource ? `/${r.subresource}` : ''} ${r.verb}`);
  }
  return { local, before, rollouts };
}

async function closeScenario(o: Outcome): Promise<void> {
  await o.local.close();
  await seenEvents.get(o.local)?.close();
}

function checkCommon(o: Outcome, scenario: string): void {
  const { local } = o;
  const expected = local.expected;
  // RBAC: the rendered Roles were enough for everything the functions did.
  const denied = local.emulator.requests.filter((r) => r.user.startsWith(SA_PREFIX) && r.status === 403);
  expect(denied).toEqual([]);
  // Every Job pod passed the profile's admission (Pod Security "restricted" on openshift).
  expect(local.emulator.store.list({ apiVersion: 'v1', kind: 'Event' }, { namespace: DEV_NAMESPACE, fieldSelector: 'reason=FailedCreate' })).toEqual([]);
  for (const model of MODELS) {
    const mine = runs(local).filter((r) => r.spec.model === model);
    expect(mine).toHaveLength(1); // three deliveries of the request, one run
    const run = mine[0] as ModelRun;
    expect({ model, phase: run.status?.phase }).toEqual({ model, phase: expected[model]?.phase });
    // Our events of this run, in order of first appearance, are the scenario's.
    const seen: string[] = [];
    for (const rec of local.broker.records) {
      const belongs = rec.eventType.startsWith('dev.mlops.') && (rec.eventId.startsWith(`${run.metadata.name}.`) || rec.eventId === `${scenario}-${model}`);
      if (belongs && !seen.includes(rec.eventType)) seen.push(rec.eventType);
      // Replies nobody subscribes to (training.started) appear only as replies.
      if (rec.reply?.id.startsWith(`${run.metadata.name}.`) && !seen.includes(rec.reply.type)) seen.push(rec.reply.type);
    }
    expect({ model, events: seen }).toEqual({ model, events: expected[model]?.events.filter((t) => t !== EventTypes.trainingSkipped) });
    // One Job per step and at most one rollout per release, however often events were delivered.
    const jobCreates = local.emulator.requests.filter((r) => r.resource === 'jobs' && r.verb === 'create' && r.status === 201 && r.name?.startsWith(run.metadata.name ?? '-'));
    expect(new Set(jobCreates.map((r) => r.name)).size).toBe(jobCreates.length);
    // The lock is free at the end.
    expect(local.emulator.store.get({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease' }, { name: `model-lock-${model}`, namespace: DEV_NAMESPACE })).toBeUndefined();
  }
  // At most one rollout to the new release and one back per model, however often events were delivered.
  expect(new Set(o.rollouts).size).toBe(o.rollouts.length);
}

describe('end-to-end scenarios (every event delivered three times, RBAC enforced)', () => {
  test('happy: both models (CPU and GPU) are trained, gated, promoted and verified; the new model is served', async () => {
    const o = await runScenario('happy');
    try {
      checkCommon(o, 'happy');
      for (const run of runs(o.local)) {
        expect(run.status?.gate?.simulated).not.toBe(true);
        expect(sha256(servedFile(o.local, run.spec.model))).toBe(run.status?.artifact?.sha256);
        expect(run.status?.release?.promoted).toBe(run.metadata.name);
      }
      expect(o.rollouts.sort()).toEqual(runs(o.local).map((r) => `${catalog.models.find((m) => m.name === r.spec.model)?.inferenceService ?? ''} ${r.metadata.name ?? ''}`).sort());
      // The trace context of the request reaches every event the run caused, across Job- and Pod-woken steps.
      // storage.* belong to no run (storage-bootstrap starts when the storage Secret appears), so they carry no run's trace.
      const ours = (seenEvents.get(o.local)?.received ?? []).map((r) => r.event)
        .filter((e) => e.type.startsWith('dev.mlops.') && e.type !== EventTypes.trainingRequested && !e.type.startsWith('dev.mlops.storage.'));
      expect(ours.length).toBeGreaterThanOrEqual(10);
      expect(ours.filter((e) => (e as unknown as { traceparent?: string }).traceparent !== TRACEPARENT).map((e) => e.type)).toEqual([]);
    } finally { await closeScenario(o); }
  });

  // The other scenarios run on the default openshift profile, Kubernetes 1.32; this one on the other profile and the
  // pre-1.27 pod labels (the labels do not depend on the profile).
  for (const [profile, kubeVersion] of [['kubernetes', '1.26']] as const) {
    test(`happy-gpu on the ${profile} profile, Kubernetes ${kubeVersion}: Job pods labelled job-name/controller-uid only, every step still finds them`, async () => {
      const o = await runScenario('happy-gpu', undefined, { profile, kubeVersion });
      try {
        expect([o.local.emulator.profile, o.local.emulator.kubeVersion]).toEqual([profile, kubeVersion]);
        checkCommon(o, 'happy-gpu');
        const jobPods = o.local.emulator.store.list({ apiVersion: 'v1', kind: 'Pod' }, { namespace: DEV_NAMESPACE, labelSelector: 'job-name' });
        expect(jobPods.length).toBeGreaterThanOrEqual(3 * MODELS.length);
        for (const pod of jobPods) expect(Object.keys(pod.metadata.labels ?? {}).filter((k) => k.startsWith('batch.kubernetes.io/'))).toEqual([]);
      } finally { await closeScenario(o); }
    });
  }

  test('happy-gpu: every model goes through the copy Job', async () => {
    const o = await runScenario('happy-gpu');
    try {
      checkCommon(o, 'happy-gpu');
      for (const run of runs(o.local)) expect(run.status?.steps?.copy?.outcome).toBeDefined();
    } finally { await closeScenario(o); }
  });

  test('gate-reject: the bad model is rejected with named checks and never served', async () => {
    const o = await runScenario('gate-reject');
    try {
      checkCommon(o, 'gate-reject');
      for (const run of runs(o.local)) {
        expect(run.status?.gate?.verdict).toBe('rejected');
        expect(run.status?.gate?.checks?.filter((c) => !c.ok).map((c) => c.name)).toEqual(expect.arrayContaining(['has-predict']));
        expect(sha256(servedFile(o.local, run.spec.model))).toBe(o.before[run.spec.model]);
      }
    } finally { await closeScenario(o); }
  });

  test('baseline-regression: a clearly worse model that loads and predicts is rejected by the baseline checks; the good release stays served', async () => {
    const o = await runScenario('baseline-regression');
    try {
      checkCommon(o, 'baseline-regression');
      for (const run of runs(o.local)) {
        expect(run.status?.gate?.verdict).toBe('rejected');
        const checks = run.status?.gate?.checks ?? [];
        // The model itself is fine: it loads and predicts the declared shape and values.
        for (const name of ['load', 'predict', 'output-shape', 'output-values', 'reference-data']) expect(checks.find((c) => c.name === name)?.ok).toBe(true);
        const failed = checks.filter((c) => !c.ok).map((c) => c.name);
        expect(failed).toEqual(run.spec.model === 'anomaly-detector' ? ['baseline-agreement', 'baseline-rate', 'baseline-metrics'] : ['baseline-change', 'baseline-metrics']);
        const baseline = (run.status?.gate?.report as { baseline?: { served?: unknown } } | undefined)?.baseline;
        expect(baseline?.served).toEqual({ state: 'release', release: `${run.spec.model}-seed` });
        expect(run.status?.message ?? run.status?.steps?.gate?.message).toMatch(/baseline vs served release .*-seed on 400 reference rows with targets/);
        expect(sha256(servedFile(o.local, run.spec.model))).toBe(o.before[run.spec.model]);
        expect(o.before[run.spec.model]).toBeDefined();
      }
      expect(o.rollouts).toEqual([]);
    } finally { await closeScenario(o); }
  });

  test('verify-fail-rollback: the new pods answer wrong, the previous release is served again', async () => {
    const o = await runScenario('verify-fail-rollback');
    try {
      checkCommon(o, 'verify-fail-rollback');
      for (const run of runs(o.local)) {
        expect(run.status?.release?.restored).toBe(`${run.spec.model}-seed`);
        expect(sha256(servedFile(o.local, run.spec.model))).toBe(o.before[run.spec.model]);
        expect(o.before[run.spec.model]).toBeDefined();
        // The rollback was verified like a promotion, on the rollback rollout's new pods (the seed has no gate
        // record of ours, so its answers are checked for form: docs/run-lifecycle.md).
        expect(run.status?.rollback).toMatchObject({ release: `${run.spec.model}-seed`, verified: true, check: 'answers' });
        expect(run.status?.rollback?.message).toMatch(/^verified on \d+ new pod\(s\) /);
        expect(run.status?.message).toMatch(new RegExp(`rolled back to ${run.spec.model}-seed, verified on`));
      }
    } finally { await closeScenario(o); }
  });

  test('rollback-fails: the restored release serves no model; the run ends Failed loudly and nothing else changes', async () => {
    const o = await runScenario('rollback-fails');
    try {
      checkCommon(o, 'rollback-fails');
      for (const run of runs(o.local)) {
        const seed = `${run.spec.model}-seed`;
        expect(run.status?.rollback).toMatchObject({ release: seed, verified: false });
        expect(run.status?.rollback?.message).toMatch(/does not exist/);
        expect(run.status?.message).toMatch(new RegExp(`^ROLLBACK UNVERIFIED: ${run.metadata.name ?? ''} failed verification and ${seed} was restored`));
        // Its own notice: run.failed, step rollback, reason rollback-unverified.
        const notice = o.local.broker.records.find((r) => r.eventType === EventTypes.runFailed && r.eventId === `${run.metadata.name ?? ''}.run.failed`);
        expect(notice).toBeDefined();
        // Nothing else was changed: the predictor stays on the restored release (one rollout there and one back).
        const isvc = catalog.models.find((m) => m.name === run.spec.model)?.inferenceService ?? '';
        expect(o.rollouts.filter((r) => r.startsWith(`${isvc} `))).toEqual([`${isvc} ${run.metadata.name ?? ''}`, `${isvc} ${seed}`]);
      }
    } finally { await closeScenario(o); }
  });

  test('training-fail: the run fails with the operator message, nothing is served', async () => {
    const o = await runScenario('training-fail');
    try {
      checkCommon(o, 'training-fail');
      for (const run of runs(o.local)) expect(run.status?.message).toContain('cell 7 raised ValueError');
    } finally { await closeScenario(o); }
  });

  test('deadline: the watchdog kills the hanging notebook and fails the run', async () => {
    const o = await runScenario('deadline', async (local, clock) => {
      await until('both runs training', () => runs(local).filter((r) => r.status?.phase === 'Training').length === MODELS.length);
      clock.advance(9 * 60 * 60_000);
      await local.pings.fireNow(`${DEV_NAMESPACE}/watchdog-tick`);
    });
    try {
      checkCommon(o, 'deadline');
      for (const run of runs(o.local)) expect(run.status?.message).toMatch(/deadline/);
      const nvjs = o.local.emulator.store.list({ apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob' }, { namespace: DEV_NAMESPACE });
      expect(nvjs).toHaveLength(0); // deleted so the pod stops
    } finally { await closeScenario(o); }
  });

  test('argocd: a validated notebook with on-success triggers restarts the predictor only through the gate, restarts a Deployment, syncs its Application and reports status', async () => {
    const clock = new ManualClock(new Date().toISOString());
    const local = await startLocal({ catalog, scenario: 'happy', env: {}, deliveries: 3, simulatorMode: 'test', clock });
    try {
      const store = local.emulator.store;
      store.create({ apiVersion: 'argoproj.io/v1alpha1', kind: 'Application' }, {
        apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', metadata: { name: 'model-serving', namespace: 'argocd' },
        spec: { project: 'default', source: { repoURL: 'https://example.com/serving.git', targetRevision: 'main', path: 'deploy' }, destination: { server: 'https://kubernetes.default.svc', namespace: DEV_NAMESPACE } },
      });
      store.create({ apiVersion: 'apps/v1', kind: 'Deployment' }, {
        apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'dashboard', namespace: DEV_NAMESPACE },
        spec: { selector: { matchLabels: { app: 'dashboard' } }, template: { metadata: { labels: { app: 'dashboard' } }, spec: { containers: [{ name: 'web', image: 'dashboard:1' }] } } },
      });
      const triggers = [
        { apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService', name: 'anomaly-detector', action: 'restart' },
        { apiVersion: 'apps/v1', kind: 'Deployment', name: 'dashboard', action: 'restart' },
        { apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', name: 'model-serving', namespace: 'argocd', action: 'sync' },
      ];
      store.create({ apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob' }, {
        apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob',
        metadata: { name: 'nightly-anomaly', namespace: DEV_NAMESPACE, labels: { 'app.kubernetes.io/part-of': 'model-serving', 'mlops.dev/model': 'anomaly-detector' },
          annotations: { 'mlops.dev/on-success-trigger': JSON.stringify(triggers), 'argocd.argoproj.io/sync-wave': '2' } },
        spec: { notebook: { git: { url: 'https://github.com/tosin2013/openshift-aiops-platform.git', ref: 'main' }, path: 'notebooks/02-anomaly-detection/01-isolation-forest-implementation.ipynb' },
          podConfig: { containerImage: 'quay.io/jupyter/scipy-notebook:2024-10-07', env: [{ name: 'MODEL_NAME', value: 'anomaly-detector' }],
            volumes: [{ name: 'model-storage', persistentVolumeClaim: { claimName: 'model-storage-pvc' } }],
            volumeMounts: [{ name: 'model-storage', mountPath: '/mnt/models', subPath: '.runs/nightly-anomaly' }] } },
      });
      await until('the gated restart to finish', () => runs(local).some((r) => r.spec.model === 'anomaly-detector' && isTerminalPhase(r.status?.phase)));
      await local.broker.idle(30_000);
      const run = runs(local).find((r) => r.spec.model === 'anomaly-detector') as ModelRun;
      expect(run.status?.phase).toBe('Succeeded');
      expect(run.status?.gate?.verdict).toBe('approved'); // the predictor was rolled only after the gate approved
      expect(sha256(servedFile(local, 'anomaly-detector'))).toBe(run.status?.artifact?.sha256);
      const nvj = store.get({ apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob' }, { name: 'nightly-anomaly', namespace: DEV_NAMESPACE });
      expect(nvj?.metadata.annotations?.['mlops.dev/wave-complete']).toBe('true');
      expect(nvj?.metadata.annotations?.['mlops.dev/completion-time']).toBeDefined();
      expect(JSON.parse(nvj?.metadata.annotations?.['mlops.dev/trigger-status'] ?? '{}')).toBeDefined();
      const dashboard = store.get({ apiVersion: 'apps/v1', kind: 'Deployment' }, { name: 'dashboard', namespace: DEV_NAMESPACE }) as unknown as { spec: { template: { metadata: { annotations?: Record<string, string> } } } };
      expect(dashboard.spec.template.metadata.annotations?.['mlops.dev/restartedAt']).toBeDefined();
      const app = store.get({ apiVersion: 'argoproj.io/v1alpha1', kind: 'Application' }, { name: 'model-serving', namespace: 'argocd' }) as unknown as { operation?: { sync?: { revision?: string } }; metadata: { annotations?: Record<string, string> } };
      expect(app.operation?.sync?.revision).toBe('main');
      expect(JSON.parse(app.metadata.annotations?.['mlops.dev/notebook-status'] ?? '{}')).toMatchObject({ total: 1, succeeded: 1, failed: 0 });
      const denied = local.emulator.requests.filter((r) => r.user.startsWith(SA_PREFIX) && r.status === 403);
      expect(denied).toEqual([]);
      for (const r of local.emulator.requests) {
        if (r.user.startsWith(SA_PREFIX)) used.add(`${r.user.slice(SA_PREFIX.length)} ${r.group}/${r.resource}${r.subresource ? `/${r.subresource}` : ''} ${r.verb}`);
      }
    } finally { await local.close(); }
  });

  test('every rendered RBAC rule is used by some scenario (no unused grants)', () => {
    const granted: string[] = [];
    for (const [step, rules] of Object.entries(StepRules)) {
      for (const rule of rules) for (const group of rule.apiGroups) for (const resource of rule.resources) for (const verb of rule.verbs) {
        granted.push(`${step} ${group === '' ? '' : group}/${resource} ${verb}`);
      }
    }
    const normalised = new Set([...used].map((u) => u.replace(/^(\S+) \//, '$1 /')));
    const unused = granted.filter((g) => !normalised.has(g));
    // Rules exercised only by paths these scenarios do not reach; each is covered by the step's own tests.
    const onlyElsewhere = [
      'start-training coordination.k8s.io/leases update', // queue-latest
      'start-training lifecycle.mlops.dev/modelruns list', // drift cooldown
      'watchdog lifecycle.mlops.dev/modelruns delete', // pruning
      'watchdog coordination.k8s.io/leases delete', // orphan or expired lock
      'watchdog batch/jobs delete', // a step Job past its deadline
      'watchdog /configmaps create', // catch-up memory
      'watchdog /configmaps update',
      'notify /events get',
      'argocd-sync coordination.k8s.io/leases delete', // a refused ModelRun frees the lock
      'copy-gpu-model coordination.k8s.io/leases get', // a failed copy ends the run
      'copy-gpu-model coordination.k8s.io/leases delete',
      'start-training coordination.k8s.io/leases delete', // a 403 creating the NVJ ends the run
      // restart-predictor ends a run (and frees the lock) only on a failed promotion, "nothing to roll back to", a pinned
      // model or a refused manual rollback (test/day2.test.ts, its own tests); verify-endpoint ends rollbacks now.
      'restart-predictor coordination.k8s.io/leases get', 'restart-predictor coordination.k8s.io/leases delete',
      // Never called: OwnerReferencesPermissionEnforcement authorizes them when an owned object is created (openshift profile).
      ...['start-training mlops.mlops.dev/notebookvalidationjobs delete', 'start-training lifecycle.mlops.dev/modelruns/finalizers update'],
      ...['copy-gpu-model', 'gate-health', 'restart-predictor'].flatMap((s) => [`${s} batch/jobs delete`, `${s} lifecycle.mlops.dev/modelruns/finalizers update`]),
      // Read only when a Job update shows a started Job without a pod (FailedCreate).
      ...['copy-gpu-model', 'gate-health', 'restart-predictor'].map((s) => `${s} /events list`),
      // The reconcile's reads and the steps it wakes reading their own Job/NVJ (test/chaos.test.ts, functions/watchdog tests).
      ...['mlops.mlops.dev/notebookvalidationjobs list', 'batch/jobs list', '/pods list', 'serving.kserve.io/inferenceservices list'].map((r) => `watchdog ${r}`),
      ...['copy-gpu-model', 'gate-health', 'restart-predictor'].map((s) => `${s} batch/jobs get`),
      'track-training mlops.mlops.dev/notebookvalidationjobs get',
      // The catalog here has no S3 model: placeholders, predictor rolls and serving probes run in
      // test/bootstrap.test.ts (mlops dev, RBAC enforced) and functions/storage-bootstrap/index.test.ts.
      ...['batch/jobs get', 'batch/jobs create', '/pods list', 'serving.kserve.io/inferenceservices get', 'serving.kserve.io/inferenceservices patch'].map((r) => `storage-bootstrap ${r}`),
    ];
    expect(unused.filter((u) => !onlyElsewhere.includes(u))).toEqual([]);
  });
});
