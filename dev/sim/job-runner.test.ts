import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { StoredObject } from '../emulator/index.ts';
import { DEFAULT_UTILITY_IMAGE, GPU_MOUNT, SHARED_MOUNT, stepJobManifest } from '../../runtime/jobs.ts';
import { createAdmission } from '../emulator/admission.ts';
import { Authorizer } from '../emulator/rbac.ts';
import { jobOutcome, terminationMessage } from '../../runtime/resources.ts';
import type { Job, Pod } from '../../runtime/resources.ts';
import { jobPodLabels, startJobRunner } from './job-runner.ts';
import type { JobRunner } from './job-runner.ts';
import { writeModelFile } from './model-files.ts';
import { standinPredict } from './standin.ts';
import { NS, PY, createStepJob, fakeRun, python, startSimCluster, waitFor } from './testkit.ts';
import type { SimCluster } from './testkit.ts';

const jobSel = { apiVersion: 'batch/v1', kind: 'Job' };
const podSel = { apiVersion: 'v1', kind: 'Pod' };
const CHECKS = ['exists', 'min-bytes', 'sha256', 'load', 'has-predict', 'predict', 'output-shape', 'output-values'];

let cluster: SimCluster;
const runners: JobRunner[] = [];
const unsubscribes: Array<() => void> = [];

beforeAll(async () => {
  cluster = await startSimCluster();
});

afterAll(async () => {
  for (const u of unsubscribes) u();
  await Promise.all(runners.map((r) => r.close()));
  await cluster.close();
});

async function runner(mode: 'dev' | 'test', sklearn?: false): Promise<JobRunner> {
  const r = await startJobRunner({ store: cluster.store, stateDir: cluster.stateDir, namespace: NS, mode, python: PY, ...(sklearn === false ? { sklearn } : {}) });
  runners.push(r);
  return r;
}

const pvc = (claim: string): string => path.join(cluster.stateDir, 'pvc', claim);

function finished(name: string): { job: Job; pods: Pod[]; result: Record<string, unknown> } {
  const job = cluster.store.get(jobSel, { name, namespace: NS }) as unknown as Job;
  const pods = cluster.store.list(podSel, { namespace: NS, labelSelector: `batch.kubernetes.io/job-name=${name}` }) as unknown as Pod[];
  const message = pods[0] ? terminationMessage(pods[0], 'step') : undefined;
  return { job, pods, result: message ? (JSON.parse(message) as Record<string, unknown>) : {} };
}

function gateJob(run: string, model: 'anomaly-detector' | 'predictive-analytics', dir = `${SHARED_MOUNT}/.runs/${run}/${model}`): StoredObject {
  const m = cluster.model(model);
  const output: Record<string, string> = m.output.kind === 'label' ? { OUTPUT_KIND: 'label', LABELS: JSON.stringify(m.output.labels) } : { OUTPUT_KIND: 'regression', OUTPUT_WIDTH: String(m.output.width) };
  return createStepJob(cluster.store, {
    step: 'gate', run, model: m, script: 'gate.py', image: m.notebook.image,
    env: { MODEL_DIR: dir, FEATURES: String(m.features.count), ...output, MIN_BYTES: String(m.gate.minBytes), PROBE_ROWS: '8', SEED: '42', MAX_LOAD_SECONDS: '60' },
    volumes: [{ claimName: m.storage.pvc, mountPath: SHARED_MOUNT, readOnly: true }],
    deadlineSeconds: 900,
  });
}

describe('Job runner', () => {
  test('runs the real copy.py, gate.py and promote.py for stepJobManifest Jobs; Pod termination messages and Job conditions', async () => {
    const r = await runner('test');
    const m = cluster.model('predictive-analytics');
    const run = 'predictive-analytics-1111111111';
    await writeModelFile({ model: m.name, features: 5, output: m.output, outPath: path.join(pvc(m.storage.gpuPvc), '.runs', run, m.name, 'model.pkl') }, { python: PY, sklearn: true });

    const copy = createStepJob(cluster.store, {
      step: 'copy', run, model: m, script: 'copy.py', image: DEFAULT_UTILITY_IMAGE,
      env: { SRC_ROOT: GPU_MOUNT, DST_ROOT: SHARED_MOUNT, RUN: run, MODEL: m.name },
      volumes: [{ claimName: m.storage.gpuPvc, mountPath: GPU_MOUNT }, { claimName: m.storage.pvc, mountPath: SHARED_MOUNT }],
      deadlineSeconds: 1800,
    });
    await r.settled();
    const copied = finished(copy.metadata.name);
    expect(jobOutcome(copied.job)).toBe('succeeded');
    expect(copied.job.status).toMatchObject({ succeeded: 1, active: 0 });
    expect(typeof copied.job.status?.completionTime).toBe('string');
    expect(copied.job.status?.conditions).toEqual([expect.objectContaining({ type: 'Complete', status: 'True' })]);
    expect(copied.pods).toHaveLength(1);
    const pod = copied.pods[0] as Pod;
    expect(pod.metadata.name).toMatch(new RegExp(`^${copy.metadata.name}-[a-z0-9]{5}$`));
    expect(pod.metadata.labels).toMatchObject({ 'job-name': copy.metadata.name, 'batch.kubernetes.io/job-name': copy.metadata.name, 'mlops.dev/step': 'copy', 'mlops.dev/run': run });
    expect(pod.status?.phase).toBe('Succeeded');
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(copied.result).toMatchObject({ ok: true, path: `.runs/${run}/${m.name}` });
    expect(copied.result['sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(existsSync(path.join(pvc(m.storage.pvc), '.runs', run, m.name, 'model.pkl'))).toBe(true);
    expect(cluster.store.podLog(NS, pod.metadata.name ?? '')).toContain('"ok":true');

    const gate = gateJob(run, 'predictive-analytics');
    await r.settled();
    const gated = finished(gate.metadata.name);
    expect(jobOutcome(gated.job)).toBe('succeeded');
    expect(gated.result['ok']).toBe(true);
    expect(gated.result['simulated']).toBeUndefined();
    expect((gated.result['checks'] as Array<{ name: string; ok: boolean }>).map((c) => [c.name, c.ok])).toEqual(CHECKS.map((c) => [c, true]));
    expect(gated.result['sha256']).toBe(copied.result['sha256']);
    expect((gated.result['probe'] as { rows: unknown[] }).rows).toHaveLength(8);

    const promote = createStepJob(cluster.store, {
      step: 'promote', run, model: m, script: 'promote.py', image: DEFAULT_UTILITY_IMAGE,
      env: { ROOT: SHARED_MOUNT, MODEL: m.name, RUN: run, SOURCE: 'staging', KEEP: '5' },
      volumes: [{ claimName: m.storage.pvc, mountPath: SHARED_MOUNT }],
      deadlineSeconds: 600,
    });
    await r.settled();
    const promoted = finished(promote.metadata.name);
    expect(jobOutcome(promoted.job)).toBe('succeeded');
    expect(promoted.result).toMatchObject({ ok: true, release: run, previousRelease: null, servedPath: `${m.name}/model.pkl`, sha256: copied.result['sha256'] });
    expect((await readFile(path.join(pvc(m.storage.pvc), m.name, 'RELEASE'), 'utf8')).trim()).toBe(run);
    await r.close();
  });

  test('a script exiting 2 (usage error) fails the Job: Failed/BackoffLimitExceeded, message kept', async () => {
    const r = await runner('test');
    const m = cluster.model('anomaly-detector');
    const job = createStepJob(cluster.store, {
      step: 'gate', run: 'anomaly-detector-2222222222', model: m, script: 'gate.py', image: m.notebook.image,
      env: { MODEL_DIR: `${SHARED_MOUNT}/x`, OUTPUT_KIND: 'label', LABELS: '[1,-1]', MIN_BYTES: '1' },
      volumes: [{ claimName: m.storage.pvc, mountPath: SHARED_MOUNT, readOnly: true }],
      deadlineSeconds: 60,
    });
    await r.settled();
    const done = finished(job.metadata.name);
    expect(jobOutcome(done.job)).toBe('failed');
    expect(done.job.status).toMatchObject({ failed: 1 });
    expect(done.job.status?.completionTime).toBeUndefined();
    expect(done.job.status?.conditions).toEqual([expect.objectContaining({ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' })]);
    expect(done.pods[0]?.status?.phase).toBe('Failed');
    expect(done.pods[0]?.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 2, reason: 'Error' });
    expect(done.result).toMatchObject({ ok: false, error: 'usage: FEATURES is required' });
    await r.close();
  });

  test('activeDeadlineSeconds kills the container: Failed/DeadlineExceeded; at most 2 Jobs run at a time', async () => {
    const r = await runner('test');
    const m = cluster.model('anomaly-detector');
    const running = new Set<string>();
    let maxRunning = 0;
    unsubscribes.push(cluster.store.subscribe({ resource: podSel, namespace: NS, labelSelector: 'mlops.dev/step=gate' }, (e) => {
      const phase = (e.object.status as { phase?: string } | undefined)?.phase;
      if (phase === 'Running' && e.type !== 'DELETED') running.add(e.object.metadata.name);
      else running.delete(e.object.metadata.name);
      maxRunning = Math.max(maxRunning, running.size);
    }));
    // A pickle whose unpickling sleeps 30 s: gate.py hangs in load until the deadline.
    const dir = path.join(pvc(m.storage.pvc), 'slow');
    await python('import os, pickle, sys, time\nclass S:\n    def __reduce__(self):\n        return (time.sleep, (30,))\nos.makedirs(sys.argv[1], exist_ok=True)\npickle.dump(S(), open(os.path.join(sys.argv[1], "model.pkl"), "wb"))', [dir]);
    const started = Date.now();
    const jobs = ['3333333331', '3333333332', '3333333333', '3333333334'].map((suffix) => createStepJob(cluster.store, {
      step: 'gate', run: `anomaly-detector-${suffix}`, model: m, script: 'gate.py', image: m.notebook.image,
      env: { MODEL_DIR: `${SHARED_MOUNT}/slow`, FEATURES: '45', OUTPUT_KIND: 'label', LABELS: '[1,-1]', MIN_BYTES: '0' },
      volumes: [{ claimName: m.storage.pvc, mountPath: SHARED_MOUNT, readOnly: true }],
      deadlineSeconds: 1,
    }));
    await r.settled();
    const elapsed = Date.now() - started;
    expect(maxRunning).toBe(2);
    expect(elapsed).toBeGreaterThanOrEqual(2000);
    expect(elapsed).toBeLessThan(20_000);
    for (const job of jobs) {
      const done = finished(job.metadata.name);
      expect(done.job.status?.conditions).toEqual([expect.objectContaining({ type: 'Failed', status: 'True', reason: 'DeadlineExceeded' })]);
      expect(done.pods[0]?.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(137);
    }
    await r.close();
  });

  test('a stand-in model: dev mode answers with the simulated gate report, test mode runs the real gate.py (which rejects it)', async () => {
    const m = cluster.model('predictive-analytics');
    const devRun = 'predictive-analytics-4444444441';
    const testRun = 'predictive-analytics-4444444442';
    for (const run of [devRun, testRun]) {
      await writeModelFile({ model: m.name, features: 5, output: m.output, outPath: path.join(pvc(m.storage.pvc), '.runs', run, m.name, 'model.pkl') }, { python: PY, sklearn: false });
    }
    const dev = await runner('dev');
    const devJob = gateJob(devRun, 'predictive-analytics');
    await dev.settled();
    await dev.close();
    const report = finished(devJob.metadata.name).result;
    expect(report['simulated']).toBe(true);
    expect(report['ok']).toBe(true);
    expect((report['checks'] as Array<{ name: string; ok: boolean }>).map((c) => [c.name, c.ok])).toEqual(CHECKS.map((c) => [c, true]));
    const bytes = await readFile(path.join(pvc(m.storage.pvc), '.runs', devRun, m.name, 'model.pkl'));
    expect(report['bytes']).toBe(bytes.length);
    expect(report['sha256']).toMatch(/^[0-9a-f]{64}$/);
    const probe = report['probe'] as { rows: number[][]; expected: number[][] };
    expect(probe.rows).toHaveLength(8);
    expect(probe.expected).toEqual(standinPredict(m.output, probe.rows));
    expect(probe.expected[0]).toHaveLength(5);

    const real = await runner('test');
    const testJob = gateJob(testRun, 'predictive-analytics');
    await real.settled();
    const rejected = finished(testJob.metadata.name).result;
    expect(rejected['simulated']).toBeUndefined();
    expect(rejected['ok']).toBe(false);
    expect((rejected['checks'] as Array<{ name: string; ok: boolean }>).find((c) => c.name === 'load')?.ok).toBe(false);
    await real.close();
  });

  test('no sklearn: dev mode gates stand-ins honestly (a broken one fails has-predict); test mode still runs the real script', async () => {
    const m = cluster.model('anomaly-detector');
    const good = 'anomaly-detector-5555555551';
    const bad = 'anomaly-detector-5555555552';
    const testRun = 'anomaly-detector-5555555553';
    for (const [run, isBad] of [[good, false], [bad, true], [testRun, false]] as const) {
      await writeModelFile({ model: m.name, features: 45, output: m.output, outPath: path.join(pvc(m.storage.pvc), '.runs', run, m.name, 'model.pkl'), bad: isBad }, { python: PY, sklearn: false });
    }
    const dev = await runner('dev', false);
    const goodJob = gateJob(good, 'anomaly-detector');
    const badJob = gateJob(bad, 'anomaly-detector');
    await dev.settled();
    await dev.close();
    const goodReport = finished(goodJob.metadata.name);
    expect(goodReport.result).toMatchObject({ ok: true, simulated: true, truncated: true });
    expect(Buffer.byteLength(terminationMessage(goodReport.pods[0] as Pod, 'step') ?? '')).toBeLessThanOrEqual(4096);
    const probe = goodReport.result['probe'] as { rows: number[][]; expected: number[] };
    expect(probe.rows.length).toBeGreaterThanOrEqual(1);
    expect(probe.rows[0]).toHaveLength(45);
    expect(probe.expected).toEqual(probe.rows.map(() => 1));
    const badReport = finished(badJob.metadata.name).result;
    expect(badReport).toMatchObject({ ok: false, simulated: true });
    expect((badReport['checks'] as Array<{ name: string; ok: boolean }>).filter((c) => !c.ok).map((c) => c.name)).toEqual(['has-predict', 'predict', 'output-shape', 'output-values']);

    const real = await runner('test', false);
    const testJob = gateJob(testRun, 'anomaly-detector');
    await real.settled();
    const realReport = finished(testJob.metadata.name).result;
    expect(realReport['simulated']).toBeUndefined();
    expect(realReport['ok']).toBe(false);
    await real.close();
  });
});

describe('Job controller behaviour per cluster profile and Kubernetes version', () => {
  const eventSel = { apiVersion: 'v1', kind: 'Event' };
  const eventsFor = (job: StoredObject): StoredObject[] =>
    cluster.store.list(eventSel, { namespace: NS, fieldSelector: `involvedObject.uid=${job.metadata.uid}` });

  test('Job pods carry job-name/controller-uid on 1.26 and also the batch.kubernetes.io/ labels on 1.32', async () => {
    expect(jobPodLabels('j', 'u', '1.26')).toEqual({ 'job-name': 'j', 'controller-uid': 'u' });
    expect(jobPodLabels('j', 'u', '1.32')).toEqual({ 'job-name': 'j', 'controller-uid': 'u', 'batch.kubernetes.io/job-name': 'j', 'batch.kubernetes.io/controller-uid': 'u' });
    const m = cluster.model('anomaly-detector');
    const r = await startJobRunner({ store: cluster.store, stateDir: cluster.stateDir, namespace: NS, mode: 'test', python: PY, kubeVersion: '1.26' });
    runners.push(r);
    const job = createStepJob(cluster.store, {
      step: 'gate', run: 'anomaly-detector-1260000000', model: m, script: 'gate.py', image: m.notebook.image,
      env: { MODEL_DIR: `${SHARED_MOUNT}/missing` }, volumes: [{ claimName: m.storage.pvc, mountPath: SHARED_MOUNT, readOnly: true }], deadlineSeconds: 60,
    });
    await r.settled();
    await r.close();
    const pods = cluster.store.list(podSel, { namespace: NS, labelSelector: `job-name=${job.metadata.name}` });
    expect(pods).toHaveLength(1);
    const labels = pods[0]?.metadata.labels ?? {};
    expect(labels).toMatchObject({ 'job-name': job.metadata.name, 'controller-uid': job.metadata.uid, 'mlops.dev/step': 'gate' });
    expect(Object.keys(labels).filter((k) => k.startsWith('batch.kubernetes.io/'))).toEqual([]);
  });

  test('a pod Pod Security refuses is never created: FailedCreate Warning Event on the Job, startTime only, retries fold into the count, the deadline fails it', async () => {
    const admission = createAdmission('openshift', { store: cluster.store, authorizer: new Authorizer(cluster.store), rbac: false });
    const r = await startJobRunner({
      store: cluster.store, stateDir: cluster.stateDir, namespace: NS, mode: 'test', python: PY,
      admitPod: (pod) => admission.validatePodCreate(NS, pod), failedCreateBackoffMs: 100,
    });
    runners.push(r);
    const m = cluster.model('anomaly-detector');
    const manifest = stepJobManifest({
      step: 'gate', run: fakeRun(m, 'anomaly-detector-4030000000'), model: m, script: 'gate.py', image: m.notebook.image,
      // 3 s: room for several 100 ms-based retries before the deadline even on a loaded machine.
      env: {}, volumes: [], deadlineSeconds: 3,
    }) as { metadata: object; spec: { template: { spec: { securityContext?: unknown; containers: Array<{ securityContext?: unknown }> } } } };
    // The template as it was before the restricted securityContext.
    delete manifest.spec.template.spec.securityContext;
    for (const c of manifest.spec.template.spec.containers) delete c.securityContext;
    const job = cluster.store.create(jobSel, { ...manifest, apiVersion: 'batch/v1', kind: 'Job', metadata: { ...manifest.metadata, namespace: NS } });
    const [event] = await waitFor('FailedCreate event', () => (eventsFor(job).length > 0 ? eventsFor(job) : undefined));
    expect(event).toMatchObject({
      type: 'Warning', reason: 'FailedCreate', source: { component: 'job-controller' },
      involvedObject: { apiVersion: 'batch/v1', kind: 'Job', name: job.metadata.name, namespace: NS, uid: job.metadata.uid },
    });
    expect((event as unknown as { message: string }).message).toMatch(new RegExp(`^Error creating: pods "${job.metadata.name}-[a-z0-9]{5}" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false`));
    const status = (cluster.store.get(jobSel, { name: job.metadata.name, namespace: NS })?.status ?? {}) as Record<string, unknown>;
    expect(Object.keys(status)).toEqual(['startTime']);
    expect(cluster.store.list(podSel, { namespace: NS, labelSelector: `job-name=${job.metadata.name}` })).toEqual([]);
    const failedJob = await waitFor('DeadlineExceeded', () => {
      const j = cluster.store.get(jobSel, { name: job.metadata.name, namespace: NS }) as unknown as Job | undefined;
      return j && jobOutcome(j) === 'failed' ? j : undefined;
    }, 10_000);
    expect(failedJob.status?.conditions?.[0]).toMatchObject({ type: 'Failed', reason: 'DeadlineExceeded' });
    expect((eventsFor(job)[0] as unknown as { count: number }).count).toBeGreaterThanOrEqual(2);
    expect(eventsFor(job)).toHaveLength(1);
    expect(cluster.store.list(podSel, { namespace: NS, labelSelector: `job-name=${job.metadata.name}` })).toEqual([]);
    await r.close();
  });
});
