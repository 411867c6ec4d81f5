import { execFile } from 'node:child_process';
import path from 'node:path';
import { CloudEvent } from 'cloudevents';
import { EventTypes, buildEvent } from '../../events/index.ts';
import { loadCatalog, type Catalog } from '../../runtime/catalog.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import { Resources, type ModelRun, type ModelRunStatus } from '../../runtime/resources.ts';
import { NAMESPACE, ManualClock, postEvent, serveForTest, startRecordingSink, startTestCluster, type RecordingSink, type ServedStep, type TestCluster } from '../../test/kit.ts';
import { PYTHON, TEST_JOBS_DIR, removeDir, runScript, tempDir } from '../../test/jobs/run-script.ts';
import { EXPECTED_CHECKS } from './report.ts';
import { step } from './index.ts';

const MODELRUNS = { group: 'lifecycle.mlops.dev', version: 'v1alpha1', resource: 'modelruns' };
const JOBS = { group: 'batch', version: 'v1', resource: 'jobs' };
const PODS = { group: '', version: 'v1', resource: 'pods' };
const TRACE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

type JobObject = KubeObject & { spec: { activeDeadlineSeconds: number; backoffLimit: number; template: { metadata: unknown; spec: Record<string, unknown> } } };

// The core checks, on the shipped catalog without the comparison with the served release (that one is covered by
// test/jobs/gate.test.ts, the decide tests and the baseline-regression scenario, which need a served release).
const shipped = loadCatalog('config/models.yaml');
const catalog: Catalog = { ...shipped, models: shipped.models.map((m) => ({ ...m, gate: { ...m.gate, baseline: undefined }, referenceData: undefined })) };

function train(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [path.join(TEST_JOBS_DIR, 'train_fixture.py'), dir], { env: { PATH: process.env['PATH'] ?? '/usr/bin', PYTHONDONTWRITEBYTECODE: '1', PYTHONPATH: TEST_JOBS_DIR }, timeout: 120_000 },
      (err, _out, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve()));
  });
}

describe('gate-health over HTTP against the emulator', () => {
  let cluster: TestCluster;
  let sink: RecordingSink;
  let served: ServedStep;
  let fixtures: string;
  const clock = new ManualClock('2026-11-22T10:00:00.000Z');

  beforeAll(async () => {
    fixtures = tempDir('gate-health-fixtures-');
    [cluster, sink] = await Promise.all([startTestCluster(), startRecordingSink(), train(fixtures)]).then(([c, s]) => [c, s] as const);
    served = await serveForTest(step, { cluster, sinkUrl: sink.url, clock, catalog });
  }, 120_000);
  afterAll(async () => { await served.close(); await sink.close(); await cluster.close(); removeDir(fixtures); });
  beforeEach(() => {
    for (const sel of [MODELRUNS, JOBS, PODS]) cluster.emulator.store.deleteCollection(sel, { namespace: NAMESPACE });
    sink.events.length = 0;
  });

  const store = () => cluster.emulator.store;

  function createRun(name: string, model: string, profile: 'cpu' | 'gpu', status: ModelRunStatus): ModelRun {
    store().create(MODELRUNS, {
      apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun',
      metadata: { name, namespace: NAMESPACE, labels: { 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': model, 'mlops.dev/run': name, 'mlops.dev/phase': status.phase ?? 'Pending' } },
      spec: { model, trigger: 'schedule', idempotencyKey: `key-${name}`, profile },
    });
    const stored = store().read(MODELRUNS, { name, namespace: NAMESPACE });
    return store().updateStatus(MODELRUNS, { ...stored, status }) as unknown as ModelRun;
  }

  const gatingStatus = (run: string, model: string): ModelRunStatus => ({
    phase: 'Gating', step: 'gate', startedAt: '2026-11-22T09:00:00.000Z',
    steps: { training: { started: '2026-11-22T09:00:00.000Z', finished: '2026-11-22T09:50:00.000Z', outcome: 'Succeeded', job: run } },
    artifact: { path: `.runs/${run}/${model}/model.pkl` },
    deadlines: { run: '2026-11-22T15:00:00.000Z' },
  });

  const trainingSucceeded = (run: string, model: string, profile: 'cpu' | 'gpu' = 'cpu') => buildEvent(EventTypes.trainingSucceeded, {
    step: 'track-training', traceparent: TRACE,
    data: { model, run, profile, completedAt: '2026-11-22T09:50:00.000Z', artifactPath: `.runs/${run}/${model}/model.pkl` },
  });

  const getRun = async (name: string) => (await cluster.kube.get<ModelRun & KubeObject>(Resources.modelRun, name)) as ModelRun;
  const jobs = async () => cluster.kube.listAll<JobObject>(Resources.job);

  /** The Job ends in the emulator: its Pod terminated with `message`, then the Job's Complete/Failed condition. */
  function finishJob(name: string, message: string | undefined, outcome: 'Complete' | 'Failed', reason?: string): KubeObject {
    if (message !== undefined) {
      const pod = store().create(PODS, {
        apiVersion: 'v1', kind: 'Pod',
        metadata: { name: `${name}-abcde`, namespace: NAMESPACE, labels: { 'batch.kubernetes.io/job-name': name, 'job-name': name } },
        spec: { restartPolicy: 'Never', containers: [{ name: 'step', image: 'x' }] },
      });
      store().updateStatus(PODS, { ...pod, status: { phase: outcome === 'Complete' ? 'Succeeded' : 'Failed', containerStatuses: [{ name: 'step', ready: false, restartCount: 0, image: 'x', imageID: '', state: { terminated: { exitCode: 0, reason: 'Completed', message } } }] } });
    }
    const job = store().read(JOBS, { name, namespace: NAMESPACE });
    const condition = { type: outcome, status: 'True', lastTransitionTime: '2026-11-22T10:01:00Z', ...(reason ? { reason, message: `${reason} happened` } : {}) };
    return store().updateStatus(JOBS, { ...job, status: { startTime: '2026-11-22T10:00:01Z', ...(outcome === 'Complete' ? { succeeded: 1, completionTime: '2026-11-22T10:01:00Z' } : { failed: 1 }), conditions: [condition] } });
  }

  const jobUpdate = (job: KubeObject, id: string) => new CloudEvent({
    type: 'dev.knative.apiserver.resource.update', source: 'https://kubernetes.default.svc', id,
    subject: `/apis/batch/v1/namespaces/${NAMESPACE}/jobs/${job.metadata?.name ?? ''}`, datacontenttype: 'application/json', data: job, mlopsroute: 'gate',
  });

  /** The real gate.py, run with the env of the Job the function created (MODEL_DIR pointed at a local model). */
  async function runRealGate(job: JobObject, modelDir: string): Promise<string> {
    const container = (job.spec.template.spec.containers as Array<{ env: Array<{ name: string; value: string }> }>)[0]!;
    const env = Object.fromEntries(container.env.filter((e) => e.name !== 'TERMINATION_LOG').map((e) => [e.name, e.value]));
    const result = await runScript('gate', { ...env, MODEL_DIR: modelDir });
    return JSON.stringify(result.result);
  }

  async function startGate(run: string, model: string): Promise<JobObject> {
    createRun(run, model, 'cpu', gatingStatus(run, model));
    const res = await postEvent(served.url, trainingSucceeded(run, model));
    expect(res.status).toBe(204);
    const all = await jobs();
    expect(all).toHaveLength(1);
    return all[0]!;
  }

  test('training.succeeded (cpu) creates exactly one gate Job matching the catalog; redelivery 3× → still one, 204', async () => {
    const run = 'anomaly-detector-aaaaaaaaaa';
    const mr = createRun(run, 'anomaly-detector', 'cpu', gatingStatus(run, 'anomaly-detector'));
    for (let i = 0; i < 4; i++) {
      const res = await postEvent(served.url, trainingSucceeded(run, 'anomaly-detector'));
      expect(res.status).toBe(204);
      expect(res.body).toBe('');
      clock.advance(1000);
    }
    clock.set('2026-11-22T10:00:00.000Z');
    const all = await jobs();
    expect(all).toHaveLength(1);
    const job = all[0]!;
    const labels = { 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': 'anomaly-detector', 'mlops.dev/run': run, 'mlops.dev/step': 'gate' };
    expect(job.metadata?.name).toBe(`${run}-gate`);
    expect(job.metadata?.labels).toEqual(labels);
    expect(job.metadata?.ownerReferences).toEqual([{ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', name: run, uid: mr.metadata.uid, controller: true, blockOwnerDeletion: true }]);
    expect(job.spec).toMatchObject({ backoffLimit: 0, activeDeadlineSeconds: 15 * 60, ttlSecondsAfterFinished: 7 * 24 * 3600 });
    expect(job.spec.template.metadata).toEqual({ labels });
    expect(job.spec.template.spec).toEqual({
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{
        name: 'step', image: 'quay.io/jupyter/scipy-notebook:2024-10-07', command: ['python3', '/opt/mlops/gate.py'],
        env: [
          { name: 'MODEL_DIR', value: `/mnt/shared/.runs/${run}/anomaly-detector` }, { name: 'FEATURES', value: '45' }, { name: 'OUTPUT_KIND', value: 'label' },
          { name: 'LABELS', value: '[1,-1]' }, { name: 'MIN_BYTES', value: '1000' }, { name: 'PROBE_ROWS', value: '8' }, { name: 'SEED', value: '42' },
          { name: 'MAX_LOAD_SECONDS', value: '60' }, { name: 'TERMINATION_LOG', value: '/dev/termination-log' },
        ],
        terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File',
        volumeMounts: [{ name: 'scripts', mountPath: '/opt/mlops', readOnly: true }, { name: 'data-0', mountPath: '/mnt/shared', readOnly: true }],
        resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '2Gi' } },
        securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
      }],
      volumes: [
        { name: 'scripts', configMap: { name: 'model-lifecycle-scripts', defaultMode: 0o555 } },
        { name: 'data-0', persistentVolumeClaim: { claimName: 'model-storage-pvc', readOnly: true } },
      ],
    });
    const status = (await getRun(run)).status;
    expect(status?.phase).toBe('Gating');
    expect(status?.steps?.gate).toEqual({ started: '2026-11-22T10:00:00.000Z', job: `${run}-gate` });
    expect(status?.deadlines).toEqual({ run: '2026-11-22T15:00:00.000Z', step: '2026-11-22T10:15:00.000Z' });
  });

  test('the REAL gate.py on a real trained model → model.approved with the probe; redelivery → same id, no second transition', async () => {
    const run = 'anomaly-detector-bbbbbbbbbb';
    const job = await startGate(run, 'anomaly-detector');
    const message = await runRealGate(job, path.join(fixtures, 'anomaly-detector'));
    const report = JSON.parse(message) as { ok: boolean; checks: unknown[]; sha256: string; bytes: number; loadSeconds: number; probe: { rows: number[][]; expected: number[] } };
    expect(report.ok).toBe(true);
    clock.set('2026-11-22T10:02:00.000Z');
    const update = jobUpdate(finishJob(`${run}-gate`, message, 'Complete'), 'job-update-1');
    const res = await postEvent(served.url, update);
    expect(res.status).toBe(200);
    expect(res.event?.type).toBe(EventTypes.modelApproved);
    expect(res.event).toMatchObject({ id: `${run}.model.approved`, source: '/model-lifecycle/gate-health', subject: run, model: 'anomaly-detector', run, profile: 'cpu' });
    expect(res.event?.data).toEqual({
      model: 'anomaly-detector', run, path: `.runs/${run}/anomaly-detector/model.pkl`, bytes: report.bytes, sha256: report.sha256,
      checks: report.checks, probe: report.probe,
    });
    expect(report.probe.rows.length).toBeGreaterThanOrEqual(1);
    expect(report.probe.rows[0]).toHaveLength(45);

    const after = await getRun(run);
    const reportWithoutProbe = Object.fromEntries(Object.entries(report).filter(([k]) => k !== 'probe'));
    expect(after.status).toMatchObject({
      phase: 'Promoting', step: 'promote',
      steps: { gate: { started: '2026-11-22T10:00:00.000Z', finished: '2026-11-22T10:02:00.000Z', outcome: 'approved', job: `${run}-gate`, message: `all 8 checks passed; ${report.probe.rows.length} probe rows recorded` } },
      gate: { verdict: 'approved', report: reportWithoutProbe },
      probe: report.probe,
      artifact: { path: `.runs/${run}/anomaly-detector/model.pkl`, bytes: report.bytes, sha256: report.sha256 },
    });
    expect(after.status?.gate?.checks?.map((c) => [c.name, c.ok])).toEqual(EXPECTED_CHECKS.map((n) => [n, true]));
    expect(after.metadata.labels?.['mlops.dev/phase']).toBe('Promoting');
    const version = after.metadata.resourceVersion;

    clock.set('2026-11-22T10:03:00.000Z');
    for (let i = 0; i < 2; i++) {
      const again = await postEvent(served.url, jobUpdate(store().read(JOBS, { name: `${run}-gate`, namespace: NAMESPACE }), `job-update-again-${i}`));
      expect(again.status).toBe(200);
      expect(again.event?.id).toBe(res.event?.id);
      expect(again.event?.type).toBe(EventTypes.modelApproved);
    }
    expect((await getRun(run)).metadata.resourceVersion).toBe(version);
    // Once promotion started, a late Job update is silent.
    const current = await getRun(run);
    store().updateStatus(MODELRUNS, { ...store().read(MODELRUNS, { name: run, namespace: NAMESPACE }), status: { ...current.status, steps: { ...current.status?.steps, promote: { started: '2026-11-22T10:03:30.000Z' } } } });
    const late = await postEvent(served.url, jobUpdate(store().read(JOBS, { name: `${run}-gate`, namespace: NAMESPACE }), 'job-update-late'));
    expect(late.status).toBe(204);
    expect(await jobs()).toHaveLength(1);
  }, 60_000);

  test('the REAL gate.py on a corrupt model → model.rejected naming the failed checks; run Rejected; redelivery → same id', async () => {
    const run = 'anomaly-detector-cccccccccc';
    const job = await startGate(run, 'anomaly-detector');
    const message = await runRealGate(job, path.join(fixtures, 'truncated'));
    const report = JSON.parse(message) as { ok: boolean; checks: Array<{ name: string; ok: boolean; message: string }> };
    expect(report.ok).toBe(false);
    clock.set('2026-11-22T10:02:00.000Z');
    const res = await postEvent(served.url, jobUpdate(finishJob(`${run}-gate`, message, 'Complete'), 'job-update-corrupt'));
    expect(res.status).toBe(200);
    expect(res.event?.type).toBe(EventTypes.modelRejected);
    const failed = ['load', 'has-predict', 'predict', 'output-shape', 'output-values', 'probe'];
    const data = res.event?.data as { model: string; run: string; checks: Array<{ name: string; ok: boolean; message?: string }>; failed: string[]; message: string };
    expect(data.model).toBe('anomaly-detector');
    expect(data.run).toBe(run);
    expect(data.failed).toEqual(failed);
    expect(data.checks.map((c) => c.name)).toEqual([...EXPECTED_CHECKS, 'probe']);
    expect(data.checks.slice(0, 8)).toEqual(report.checks);
    expect(data.message).toBe(`gate rejected the model; failed checks: ${failed.join(', ')} (load: ${report.checks[3]?.message}; has-predict: skipped: load failed; predict: skipped: has-predict failed; output-shape: skipped: predict failed; output-values: skipped: output-shape failed; probe: no probe rows: nothing the endpoint check could compare against)`);

    const after = await getRun(run);
    expect(after.status).toMatchObject({
      phase: 'Rejected', step: 'gate', message: data.message, finishedAt: '2026-11-22T10:02:00.000Z',
      steps: { gate: { finished: '2026-11-22T10:02:00.000Z', outcome: 'rejected', message: data.message } },
      gate: { verdict: 'rejected' },
    });
    expect(after.status?.gate?.checks?.filter((c) => !c.ok).map((c) => c.name)).toEqual(failed);
    const version = after.metadata.resourceVersion;
    const again = await postEvent(served.url, jobUpdate(store().read(JOBS, { name: `${run}-gate`, namespace: NAMESPACE }), 'job-update-corrupt-2'));
    expect(again.event?.id).toBe(res.event?.id);
    expect((await getRun(run)).metadata.resourceVersion).toBe(version);
  }, 60_000);

  test('a gate Job killed on its deadline without a report → rejected, every check named missing', async () => {
    const run = 'anomaly-detector-dddddddddd';
    await startGate(run, 'anomaly-detector');
    const res = await postEvent(served.url, jobUpdate(finishJob(`${run}-gate`, undefined, 'Failed', 'DeadlineExceeded'), 'job-deadline'));
    expect(res.event?.type).toBe(EventTypes.modelRejected);
    expect((res.event?.data as { failed: string[] }).failed).toEqual(['job', 'report', ...EXPECTED_CHECKS]);
    expect((res.event?.data as { checks: unknown[] }).checks.slice(0, 2)).toEqual([
      { name: 'job', ok: false, message: `job ${run}-gate failed: DeadlineExceeded: DeadlineExceeded happened` },
      { name: 'report', ok: false, message: `job ${run}-gate left no termination message` },
    ]);
    expect((await getRun(run)).status?.phase).toBe('Rejected');
  });

  test('a simulated report outside mlops dev → rejected naming "simulated"', async () => {
    const run = 'anomaly-detector-eeeeeeeeee';
    const job = await startGate(run, 'anomaly-detector');
    const report = JSON.parse(await runRealGate(job, path.join(fixtures, 'anomaly-detector'))) as Record<string, unknown>;
    const res = await postEvent(served.url, jobUpdate(finishJob(`${run}-gate`, JSON.stringify({ ...report, simulated: true }), 'Complete'), 'job-simulated'));
    expect(res.event?.type).toBe(EventTypes.modelRejected);
    expect((res.event?.data as { failed: string[] }).failed).toEqual(['simulated']);
  }, 60_000);

  test('GPU: training.succeeded is not ours; model.copied starts the gate; a running Job update costs no API call', async () => {
    const run = 'predictive-analytics-ffffffffff';
    createRun(run, 'predictive-analytics', 'gpu', { ...gatingStatus(run, 'predictive-analytics'), phase: 'Copying' });
    expect((await postEvent(served.url, trainingSucceeded(run, 'predictive-analytics', 'gpu'))).status).toBe(204);
    expect(await jobs()).toHaveLength(0);
    const current = store().read(MODELRUNS, { name: run, namespace: NAMESPACE });
    const gating = gatingStatus(run, 'predictive-analytics');
    // What copy-gpu-model records before it replies model.copied.
    store().updateStatus(MODELRUNS, { ...current, status: { ...gating, steps: { ...gating.steps, copy: { finished: '2026-11-22T09:55:00.000Z', outcome: 'copied' } }, artifact: { path: `.runs/${run}/predictive-analytics/model.pkl`, bytes: 10, sha256: 'b'.repeat(64) } } });
    const copied = buildEvent(EventTypes.modelCopied, { step: 'copy-gpu-model', data: { model: 'predictive-analytics', run, path: `.runs/${run}/predictive-analytics/model.pkl`, bytes: 10, sha256: 'b'.repeat(64) } });
    expect((await postEvent(served.url, copied)).status).toBe(204);
    const all = await jobs();
    expect(all.map((j) => j.metadata?.name)).toEqual([`${run}-gate`]);
    const env = (all[0]!.spec.template.spec.containers as Array<{ env: unknown[] }>)[0]!.env;
    expect(env).toEqual(expect.arrayContaining([{ name: 'FEATURES', value: '5' }, { name: 'OUTPUT_KIND', value: 'regression' }, { name: 'OUTPUT_WIDTH', value: '5' }]));
    cluster.emulator.resetRequests();
    const running = await postEvent(served.url, jobUpdate(store().read(JOBS, { name: `${run}-gate`, namespace: NAMESPACE }), 'job-running'));
    expect(running.status).toBe(204);
    expect(cluster.emulator.requests).toHaveLength(0);
  });

  test('Jobs that are not our gate Jobs are ignored; malformed input is a 400', async () => {
    const foreign = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'x-copy', namespace: NAMESPACE, labels: { 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/run': 'x', 'mlops.dev/step': 'copy' } }, status: { conditions: [{ type: 'Complete', status: 'True' }] } };
    expect((await postEvent(served.url, jobUpdate(foreign, 'foreign'))).status).toBe(204);
    const misnamed = { ...foreign, metadata: { ...foreign.metadata, name: 'evil', labels: { ...foreign.metadata.labels, 'mlops.dev/step': 'gate' } } };
    expect((await postEvent(served.url, jobUpdate(misnamed, 'misnamed'))).status).toBe(204);
    const bad = await postEvent(served.url, new CloudEvent({ type: 'dev.knative.apiserver.resource.update', source: 's', id: 'bad', datacontenttype: 'application/json', data: { kind: 'Job' } }));
    expect(bad.status).toBe(400);
    const badApproval = await postEvent(served.url, new CloudEvent({ type: EventTypes.trainingSucceeded, source: 's', id: 'bad2', datacontenttype: 'application/json', data: { model: 'anomaly-detector', run: '../x' } }));
    expect(badApproval.status).toBe(400);
    const unknownRun = await postEvent(served.url, trainingSucceeded('anomaly-detector-0000000000', 'anomaly-detector'));
    expect(unknownRun.status).toBe(204);
    expect(await jobs()).toHaveLength(0);
  });
});
