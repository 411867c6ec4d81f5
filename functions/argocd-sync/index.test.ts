import { CloudEvent } from 'cloudevents';
import { EventTypes } from '../../events/index.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import { runNameFor } from '../../runtime/labels.ts';
import { Resources, type ModelRun } from '../../runtime/resources.ts';
import { ManualClock, NAMESPACE, postEvent, serveForTest, startRecordingSink, startTestCluster, type RecordingSink, type ServedStep, type TestCluster } from '../../test/kit.ts';
import { step } from './index.ts';
import type { TriggerStatus } from './triggers.ts';

const NVJ = { group: 'mlops.mlops.dev', version: 'v1alpha1', resource: 'notebookvalidationjobs' };
const APP = { group: 'argoproj.io', version: 'v1alpha1', resource: 'applications' };
const MRUN = { group: 'lifecycle.mlops.dev', version: 'v1alpha1', resource: 'modelruns' };
const DONE_AT = '2026-11-22T09:58:00Z';

describe('argocd-sync over HTTP against the emulator', () => {
  let cluster: TestCluster;
  let sink: RecordingSink;
  let fn: ServedStep;
  const clock = new ManualClock('2026-11-22T10:00:00.000Z');

  beforeAll(async () => {
    cluster = await startTestCluster();
    await cluster.emulator.applyManifests([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'argocd' } }]);
    sink = await startRecordingSink();
    fn = await serveForTest(step, { cluster, sinkUrl: sink.url, clock });
  });
  afterAll(async () => { await fn.close(); await sink.close(); await cluster.close(); });

  const store = () => cluster.emulator.store;
  const patches = () => cluster.emulator.requests.filter((r) => r.verb === 'patch');
  const writes = () => cluster.emulator.requests.filter((r) => ['patch', 'create', 'update', 'delete'].includes(r.verb));

  function createNvj(name: string, o: { annotations?: Record<string, string>; labels?: Record<string, string> } = {}): void {
    store().create(NVJ, {
      apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob',
      metadata: { name, namespace: NAMESPACE, labels: o.labels ?? {}, annotations: o.annotations ?? {} },
      spec: {
        notebook: { git: { url: 'https://github.com/example/notebooks.git', ref: 'main' }, path: 'notebooks/train.ipynb' },
        podConfig: {
          containerImage: 'quay.io/example/notebook:latest',
          volumes: [{ name: 'model-storage', persistentVolumeClaim: { claimName: 'model-storage-pvc' } }],
          volumeMounts: [{ name: 'model-storage', mountPath: '/mnt/models', subPath: `.runs/${name}` }],
        },
      },
    });
  }
  function setPhase(name: string, phase: string): KubeObject {
    const current = store().read(NVJ, { name, namespace: NAMESPACE });
    const terminal = phase === 'Succeeded' || phase === 'Failed';
    return store().updateStatus(NVJ, { ...current, status: { phase, message: `notebook ${phase}`, ...(terminal ? { completionTime: DONE_AT } : {}) } });
  }
  const current = (name: string): KubeObject => store().read(NVJ, { name, namespace: NAMESPACE });
  const annotationsOf = (name: string) => current(name).metadata?.annotations ?? {};
  const triggerStatus = (name: string) => JSON.parse(annotationsOf(name)['mlops.dev/trigger-status'] ?? 'null') as TriggerStatus | null;
  const update = (obj: KubeObject, id: string) => new CloudEvent({ type: 'dev.knative.apiserver.resource.update', source: 'https://kubernetes.default.svc', id, mlopsroute: 'argocd', data: obj });
  const send = async (obj: KubeObject, id: string) => {
    const res = await postEvent(fn.url, update(obj, id));
    expect(res.status).toBe(204);
  };
  const event = (name: string) => store().get({ group: '', version: 'v1', resource: 'events' }, { name, namespace: NAMESPACE }) as (KubeObject & { reason: string; type: string; message: string; involvedObject: { name: string } }) | undefined;

  function createApp(name: string, extra: Record<string, unknown> = {}): void {
    store().create(APP, {
      apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', metadata: { name, namespace: 'argocd' },
      spec: { project: 'default', source: { repoURL: 'https://github.com/example/serving.git', targetRevision: 'main', path: 'serving' }, destination: { server: 'https://kubernetes.default.svc', namespace: NAMESPACE } },
      ...extra,
    });
  }
  const app = (name: string) => store().read(APP, { name, namespace: 'argocd' }) as KubeObject & { operation?: unknown };

  test('every trigger action fires once, through the gate for an InferenceService; redeliveries change nothing', async () => {
    createApp('serving');
    store().create({ group: 'apps', version: 'v1', resource: 'deployments' }, {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'dashboard', namespace: NAMESPACE },
      spec: { selector: { matchLabels: { app: 'dashboard' } }, template: { metadata: { labels: { app: 'dashboard' } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } } },
    });
    createNvj('nb-all', { annotations: { 'mlops.dev/on-success-trigger': [
      '- apiVersion: serving.kserve.io/v1beta1', '  kind: InferenceService', '  name: anomaly-detector', '  action: restart',
      '- {apiVersion: apps/v1, kind: Deployment, name: dashboard, action: restart}',
      '- {apiVersion: argoproj.io/v1alpha1, kind: Application, name: serving, action: refresh}',
      '- {apiVersion: argoproj.io/v1alpha1, kind: Application, name: serving, namespace: argocd, action: sync}',
    ].join('\n') } });
    // In-progress updates of an NVJ outside any Application cost nothing.
    cluster.emulator.resetRequests();
    await send(setPhase('nb-all', 'Running'), 'all-0');
    expect(cluster.emulator.requests).toHaveLength(0);

    const done = setPhase('nb-all', 'Succeeded');
    const uid = done.metadata?.uid ?? '';
    await send(done, 'all-1');
    const run = runNameFor('anomaly-detector', `argocd-sync/${NAMESPACE}/nb-all/${uid}/0`);

    // restart InferenceService → ModelRun at the gate under the lock, and training.succeeded to the broker.
    const mr = store().read(MRUN, { name: run, namespace: NAMESPACE }) as unknown as ModelRun;
    expect(mr.spec).toMatchObject({ model: 'anomaly-detector', trigger: 'manual', requestedBy: 'argocd-sync', profile: 'cpu', provenance: { eventSource: 'nb-all' } });
    expect(mr.status).toMatchObject({ phase: 'Gating', step: 'gate', artifact: { path: '.runs/nb-all/anomaly-detector/model.pkl' }, steps: { training: { outcome: 'Succeeded', job: 'nb-all', finished: '2026-11-22T09:58:00.000Z' } } });
    expect((await cluster.kube.get<KubeObject & { spec: { holderIdentity: string } }>(Resources.lease, 'model-lock-anomaly-detector'))?.spec.holderIdentity).toBe(run);
    expect(sink.events.map((e) => [e.type, e.id, e.data])).toEqual([[EventTypes.trainingSucceeded, `${run}.training.succeeded`,
      { model: 'anomaly-detector', run, profile: 'cpu', completedAt: '2026-11-22T09:58:00.000Z', artifactPath: '.runs/nb-all/anomaly-detector/model.pkl' }]]);
    // restart Deployment → pod template annotation.
    const deploy = store().read({ group: 'apps', version: 'v1', resource: 'deployments' }, { name: 'dashboard', namespace: NAMESPACE }) as KubeObject & { spec: { template: { metadata: { annotations: Record<string, string> } } } };
    expect(deploy.spec.template.metadata.annotations['mlops.dev/restartedAt']).toBe('2026-11-22T10:00:00.000Z');
    // refresh and a real sync operation on the Application.
    expect(app('serving').metadata?.annotations?.['argocd.argoproj.io/refresh']).toBe('normal');
    expect(app('serving').operation).toEqual({ sync: { revision: 'main', syncStrategy: { hook: {} } }, initiatedBy: { username: 'model-lifecycle' } });

    const status = triggerStatus('nb-all');
    expect(status?.state).toBe('done');
    expect(status?.targets.map((t) => [t.index, t.kind, t.action, t.outcome])).toEqual([
      [0, 'InferenceService', 'restart', 'succeeded'], [1, 'Deployment', 'restart', 'succeeded'], [2, 'Application', 'refresh', 'succeeded'], [3, 'Application', 'sync', 'succeeded']]);
    expect(status?.targets[0]?.run).toBe(run);
    expect(annotationsOf('nb-all')['mlops.dev/recorded-phase']).toBe('Succeeded');
    expect(event('nb-all.validation-success')).toMatchObject({ reason: 'ValidationSucceeded', type: 'Normal', involvedObject: { name: 'nb-all', kind: 'NotebookValidationJob' }, metadata: { labels: { 'mlops.dev/notification-type': 'validation-success' } } });
    for (const i of [0, 1, 2, 3]) expect(event(`nb-all.trigger-${i}`)).toMatchObject({ reason: 'TriggerSucceeded', metadata: { labels: { 'mlops.dev/notification-type': 'validation-success' } } });

    // One PATCH per target (the sync is a test-guarded JSON patch) plus one record on the NVJ; the ModelRun status write is a patch too.
    const firstPatches = patches().map((p) => `${p.resource}/${p.name ?? ''}${p.subresource ? `/${p.subresource}` : ''}`).sort();
    expect(firstPatches).toEqual(['applications/serving', 'applications/serving', 'deployments/dashboard', 'modelruns/' + run, 'modelruns/' + run + '/status', 'notebookvalidationjobs/nb-all']);

    // Redelivery of the stale event, and the update our own record caused: no writes at all.
    cluster.emulator.resetRequests();
    await send(done, 'all-1');
    await send(done, 'all-1');
    await send(current('nb-all'), 'all-2');
    expect(writes()).toEqual([]);
    expect(sink.events).toHaveLength(1);
  });

  test('a sync while an operation runs is deferred and retried on the next update; a held lock skips the restart', async () => {
    createApp('busy', { status: { operationState: { phase: 'Running' } } });
    await cluster.kube.create(Resources.lease, { metadata: { name: 'model-lock-predictive-analytics' }, spec: { holderIdentity: 'predictive-analytics-other', leaseDurationSeconds: 3600 } });
    createNvj('nb-busy', { annotations: { 'mlops.dev/on-success-trigger': [
      '- {apiVersion: argoproj.io/v1alpha1, kind: Application, name: busy, action: sync}',
      '- {apiVersion: serving.kserve.io/v1beta1, kind: InferenceService, name: predictive-analytics, action: restart}',
      '- {apiVersion: serving.kserve.io/v1beta1, kind: InferenceService, name: not-in-catalog, action: restart}',
      '- {apiVersion: apps/v1, kind: Deployment, name: missing, action: restart}',
    ].join('\n') } });
    const before = sink.events.length;
    await send(setPhase('nb-busy', 'Succeeded'), 'busy-1');
    let status = triggerStatus('nb-busy');
    expect(status?.state).toBe('pending');
    expect(status?.targets.map((t) => [t.outcome, t.message])).toEqual([
      ['deferred', 'an operation is running; retried on the next update'],
      ['skipped', 'skipped: run predictive-analytics-other holds the lock'],
      ['failed', 'no catalog model is served by InferenceService not-in-catalog'],
      ['failed', `Deployment ${NAMESPACE}/missing not found`],
    ]);
    expect(app('busy').operation).toBeUndefined();
    expect(sink.events).toHaveLength(before);
    expect(store().list(MRUN, { namespace: NAMESPACE, labelSelector: 'mlops.dev/model=predictive-analytics' })).toEqual([]);
    expect(event('nb-busy.trigger-0')).toBeUndefined(); // no outcome yet
    for (const i of [1, 2, 3]) expect(event(`nb-busy.trigger-${i}`)).toMatchObject({ reason: 'TriggerFailed', type: 'Warning', metadata: { labels: { 'mlops.dev/notification-type': 'trigger-failure' } } });

    // Still running: the retry writes nothing (no loop through our own updates).
    cluster.emulator.resetRequests();
    clock.advance(1000);
    await send(current('nb-busy'), 'busy-2');
    expect(writes()).toEqual([]);

    // The operation finished: the next update syncs, once.
    store().update(APP, { ...store().read(APP, { name: 'busy', namespace: 'argocd' }), status: { operationState: { phase: 'Succeeded' } } });
    await send(current('nb-busy'), 'busy-3');
    status = triggerStatus('nb-busy');
    expect(status?.state).toBe('done');
    expect(status?.targets[0]).toMatchObject({ outcome: 'succeeded', message: 'sync of revision main requested' });
    expect(app('busy').operation).toMatchObject({ sync: { revision: 'main' } });
    expect(event('nb-busy.trigger-0')).toMatchObject({ reason: 'TriggerSucceeded' });
    cluster.emulator.resetRequests();
    await send(current('nb-busy'), 'busy-4');
    expect(writes()).toEqual([]);
  });

  test.each([
    ['bad YAML', '- {name: [', 'not valid YAML'],
    ['not a list', 'apiVersion: apps/v1', 'must be a YAML list'],
    ['unknown action', '- {apiVersion: apps/v1, kind: Deployment, name: d, action: explode}', 'unknown action "explode"'],
    ['missing name', '- {apiVersion: apps/v1, kind: Deployment, action: restart}', 'entry 0: missing name'],
    ['kind/action mismatch', '- {apiVersion: argoproj.io/v1alpha1, kind: Application, name: serving, action: restart}', 'action restart does not apply to Application'],
    ['more than 20 entries', Array(21).fill('- {apiVersion: apps/v1, kind: Deployment, name: d, action: restart}').join('\n'), '21 entries; at most 20'],
  ])('malformed trigger (%s): one Warning Event, recorded, nothing else', async (label, yaml, problem) => {
    const name = `nb-bad-${label.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/-+$/, '')}`;
    createNvj(name, { annotations: { 'mlops.dev/on-success-trigger': yaml } });
    const done = setPhase(name, 'Succeeded');
    cluster.emulator.resetRequests();
    await send(done, `${name}-1`);
    expect(writes().map((w) => `${w.verb} ${w.resource}/${w.name ?? ''}`).sort()).toEqual([`create events/`, `create events/`, `patch notebookvalidationjobs/${name}`]);
    const ev = event(`${name}.trigger-invalid`);
    expect(ev).toMatchObject({ type: 'Warning', reason: 'TriggerFailed', metadata: { labels: { 'mlops.dev/notification-type': 'trigger-failure' } } });
    expect(ev?.message).toContain(problem);
    expect(triggerStatus(name)).toMatchObject({ state: 'invalid', targets: [] });
    expect(triggerStatus(name)?.error).toContain(problem);
    cluster.emulator.resetRequests();
    await send(done, `${name}-1`);
    expect(writes()).toEqual([]);
  });

  test('sync waves: complete with the completion time, failed with the failure time, once', async () => {
    createNvj('wave-ok', { annotations: { 'argocd.argoproj.io/sync-wave': '1' } });
    createNvj('wave-bad', { annotations: { 'argocd.argoproj.io/sync-wave': '1' } });
    const ok = setPhase('wave-ok', 'Succeeded');
    const bad = setPhase('wave-bad', 'Failed');
    await send(ok, 'w-1');
    await send(bad, 'w-2');
    expect(annotationsOf('wave-ok')).toMatchObject({ 'mlops.dev/wave-complete': 'true', 'mlops.dev/completion-time': '2026-11-22T09:58:00.000Z' });
    expect(annotationsOf('wave-ok')['mlops.dev/wave-failed']).toBeUndefined();
    expect(annotationsOf('wave-bad')).toMatchObject({ 'mlops.dev/wave-failed': 'true', 'mlops.dev/failure-time': '2026-11-22T09:58:00.000Z' });
    expect(annotationsOf('wave-bad')['mlops.dev/wave-complete']).toBeUndefined();
    expect(event('wave-bad.validation-failure')).toMatchObject({ type: 'Warning', reason: 'ValidationFailed', metadata: { labels: { 'mlops.dev/notification-type': 'validation-failure' } } });
    cluster.emulator.resetRequests();
    await send(ok, 'w-1');
    await send(bad, 'w-2');
    expect(writes()).toEqual([]);
  });

  test('Application status over 1,200 NVJs: paginated (3 list calls), debounced except on terminal transitions', async () => {
    createApp('big');
    const labels = { 'app.kubernetes.io/part-of': 'big' };
    for (let i = 0; i < 1200; i++) {
      const name = `big-${String(i).padStart(4, '0')}`;
      createNvj(name, { labels });
      if (i < 1000) setPhase(name, 'Succeeded');
      else if (i < 1030) setPhase(name, 'Failed');
      else if (i < 1100) setPhase(name, 'Running');
    }
    store().create(MRUN, {
      apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', metadata: { name: 'anomaly-detector-served', namespace: NAMESPACE },
      spec: { model: 'anomaly-detector', trigger: 'schedule', idempotencyKey: 'served', profile: 'cpu' },
    });
    const served = store().read(MRUN, { name: 'anomaly-detector-served', namespace: NAMESPACE });
    store().updateStatus(MRUN, { ...served, status: { phase: 'Succeeded', finishedAt: '2026-11-22T08:00:00Z', steps: { training: { finished: '2026-11-22T07:00:00Z' } }, gate: { verdict: 'approved' }, release: { promoted: 'anomaly-detector-served' } } });

    const nvjLists = () => cluster.emulator.requests.filter((r) => r.verb === 'list' && r.resource === 'notebookvalidationjobs').length;
    const appStatus = () => {
      const ann = app('big').metadata?.annotations ?? {};
      return { notebooks: JSON.parse(ann['mlops.dev/notebook-status'] ?? 'null') as Record<string, unknown>, models: JSON.parse(ann['mlops.dev/model-status'] ?? 'null') as Record<string, unknown>, at: ann['mlops.dev/status-updated-at'] };
    };
    cluster.emulator.resetRequests();
    clock.set('2026-11-22T11:00:00.000Z');
    await send(setPhase('big-1199', 'Failed'), 'big-1');
    expect(nvjLists()).toBe(3);
    const failedJobs = [...Array.from({ length: 20 }, (_, i) => `big-${1000 + i}`)];
    expect(appStatus().notebooks).toEqual({ total: 1200, succeeded: 1000, failed: 31, running: 169, lastUpdate: '2026-11-22T11:00:00.000Z', failedJobs });
    expect(appStatus().models['anomaly-detector']).toMatchObject({ servedRelease: 'anomaly-detector-served', trainedAt: '2026-11-22T07:00:00.000Z', deployedAt: '2026-11-22T08:00:00.000Z', ageSeconds: 4 * 3600, lastVerdict: 'approved' });
    expect(appStatus().models['predictive-analytics']).toEqual({ servedRelease: null, trainedAt: null, deployedAt: null, ageSeconds: null, lastVerdict: null, lastRun: null, paused: null, pinned: null });

    // A non-terminal update 5 s later is debounced: one read of the Application, no list.
    cluster.emulator.resetRequests();
    clock.advance(5000);
    await send(setPhase('big-1100', 'Running'), 'big-2');
    expect(cluster.emulator.requests.map((r) => `${r.verb} ${r.resource}`)).toEqual(['get applications']);
    // A terminal transition is never debounced.
    await send(setPhase('big-1101', 'Succeeded'), 'big-3');
    expect(nvjLists()).toBe(3);
    expect(appStatus().notebooks).toMatchObject({ succeeded: 1001, running: 168, lastUpdate: '2026-11-22T11:00:05.000Z' });
    // 10 s after the last write a non-terminal update recomputes again.
    clock.advance(10_000);
    cluster.emulator.resetRequests();
    await send(setPhase('big-1102', 'ValidationRunning'), 'big-4');
    expect(nvjLists()).toBe(3);
    expect(appStatus().at).toBe('2026-11-22T11:00:15.000Z');
  });

  test('inputs that are not NVJ resource events', async () => {
    const other = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j', namespace: NAMESPACE } };
    expect((await postEvent(fn.url, update(other as KubeObject, 'x-1'))).status).toBe(204);
    const bad = new CloudEvent({ type: 'dev.knative.apiserver.resource.update', source: 'https://kubernetes.default.svc', id: 'x-2', data: { kind: 7 } });
    expect((await postEvent(fn.url, bad)).status).toBe(400);
    const res = await fetch(fn.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(400);
  });
});
