// A simulated Job controller + kubelet for our step Jobs: one Pod per Job, the container's Python script
// run for real from config/jobs with its PVC mounts mapped to local folders, the termination log turned
// into the container's termination message, activeDeadlineSeconds honoured, then Pod and Job status
// written the way the real controllers write them.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { ApiError } from '../emulator/index.ts';
import type { KubeObject, KubeVersion, Store, StoredObject } from '../emulator/index.ts';
import { MANAGER } from '../../runtime/labels.ts';
import { RESULT_CONTAINER, SCRIPTS_CONFIGMAP } from '../../runtime/jobs.ts';
import { Resources } from '../../runtime/resources.ts';
import { fitReport, standinGateReport } from './gate-standin.ts';
import { JOBS_DIR, choosePython, pythonEnv, runProcess } from './python.ts';
import type { PythonChoice, RunningProcess } from './python.ts';
import { isStandin } from './standin.ts';
import { localPathFor, resolveMounts, rewriteEnv } from './volumes.ts';
import type { PodSpecLike, ResolvedMount } from './volumes.ts';

export const MAX_PARALLEL_JOBS = 2;
const MAX_TERMINATION_MESSAGE = 4096;
const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

export interface JobRunnerOptions {
  store: Store;
  stateDir: string;
  namespace: string;
  /** `dev` may answer gate.py with a simulated report where sklearn is missing; `test` always runs the real script. */
  mode: 'dev' | 'test';
  python?: string;
  /** false: behave as on a machine without sklearn. */
  sklearn?: boolean;
  logger?: Logger;
  /** Job pod labels as this Kubernetes version sets them (default the newest; see `jobPodLabels`). */
  kubeVersion?: KubeVersion;
  /**
   * Admission of the pods this controller creates (the emulator's Pod Security); throws the API's 403. A denied
   * pod is never created: the Job gets a `FailedCreate` Warning Event, as from the real Job controller.
   */
  admitPod?: (pod: KubeObject) => void;
  /** First retry after a failed pod create (default 10 s, doubling, at most 6 min). */
  failedCreateBackoffMs?: number;
}

/**
 * The labels the Job controller puts on a Job's pods: `job-name` and `controller-uid` in every version; from
 * 1.27 also `batch.kubernetes.io/job-name` and `batch.kubernetes.io/controller-uid` (kubernetes
 * pkg/controller/job, KEP-3326 "Job labels with the batch.kubernetes.io prefix").
 */
export function jobPodLabels(jobName: string, uid: string, kubeVersion: KubeVersion = '1.32'): Record<string, string> {
  const legacy = { 'job-name': jobName, 'controller-uid': uid };
  const minor = Number(kubeVersion.split('.')[1] ?? '0');
  return minor >= 27 ? { ...legacy, 'batch.kubernetes.io/job-name': jobName, 'batch.kubernetes.io/controller-uid': uid } : legacy;
}

export interface JobRunner {
  /** Resolves when every Job taken so far has finished (queued ones included). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

interface Container {
  name?: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  volumeMounts?: PodSpecLike['volumeMounts'];
}

interface Outcome {
  exitCode: number;
  message: string;
  log: string;
  deadlineExceeded: boolean;
  reason?: string;
}

const jobSel = { apiVersion: Resources.job.apiVersion, kind: Resources.job.kind };
const podSel = { apiVersion: Resources.pod.apiVersion, kind: Resources.pod.kind };
const eventSel = { apiVersion: 'v1', kind: 'Event' };

function nowIso(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function suffix(): string {
  const bytes = randomBytes(5);
  return Array.from(bytes, (b) => NAME_CHARS[b % NAME_CHARS.length] ?? 'x').join('');
}

function isFinished(job: StoredObject): boolean {
  const conditions = ((job.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions) ?? [];
  return conditions.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
}

export async function startJobRunner(opts: JobRunnerOptions): Promise<JobRunner> {
  const { store, namespace, logger } = opts;
  const py: PythonChoice = await choosePython(opts);
  const taken = new Set<string>();
  const queue: StoredObject[] = [];
  const running = new Map<string, RunningProcess>();
  const inFlight = new Set<Promise<void>>();
  let active = 0;
  let closed = false;

  const configMapDir = (name: string): string | undefined => (name === SCRIPTS_CONFIGMAP ? JOBS_DIR : undefined);

  const writePodStatus = (name: string, status: Record<string, unknown>): void => {
    const pod = store.get(podSel, { name, namespace });
    if (pod) store.updateStatus(podSel, { ...pod, status });
  };

  const writeJobStatus = (job: StoredObject, status: Record<string, unknown>): boolean => {
    const current = store.get(jobSel, { name: job.metadata.name, namespace });
    if (!current || current.metadata.uid !== job.metadata.uid) return false;
    store.updateStatus(jobSel, { ...current, status: { ...(current.status as object | undefined), ...status } });
    return true;
  };

  /** Runs the container's command; the stand-in gate report replaces gate.py only in dev mode. */
  const execute = async (job: StoredObject, container: Container, mounts: ResolvedMount[], deadlineMs: number | undefined): Promise<Outcome> => {
    const command = [...(container.command ?? []), ...(container.args ?? [])];
    const [program, script, ...rest] = command;
    if (!program || !/^python3?$/.test(path.basename(program)) || !script) {
      return { exitCode: 127, message: '', log: `unsupported command ${JSON.stringify(command)}: the simulator runs python3 scripts only\n`, deadlineExceeded: false, reason: 'ContainerCannotRun' };
    }
    const scriptPath = localPathFor(script, mounts);
    if (!scriptPath) return { exitCode: 2, message: '', log: `python3: can't open file '${script}': not mounted\n`, deadlineExceeded: false, reason: 'Error' };
    const rawEnv = Object.fromEntries((container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
    const logDir = await mkdtemp(path.join(tmpdir(), 'mlops-sim-job-'));
    const terminationLog = path.join(logDir, 'termination-log');
    const env = { ...rewriteEnv(rawEnv, mounts), TERMINATION_LOG: terminationLog };
    try {
      if (opts.mode === 'dev' && path.basename(scriptPath) === 'gate.py' && (await wantsStandinGate(env))) {
        const text = fitReport(await standinGateReport(env));
        logger?.info({ job: job.metadata.name }, 'simulated gate report (sklearn not available or stand-in model)');
        return { exitCode: 0, message: text, log: `${text}\n`, deadlineExceeded: false };
      }
      const proc = runProcess(py.python, [scriptPath, ...rest.map((a) => localPathFor(a, mounts) ?? a)], { env: pythonEnv(env), ...(deadlineMs !== undefined ? { timeoutMs: deadlineMs } : {}) });
      running.set(job.metadata.uid, proc);
      const result = await proc.done;
      running.delete(job.metadata.uid);
      let message = '';
      try {
        message = (await readFile(terminationLog)).subarray(0, MAX_TERMINATION_MESSAGE).toString('utf8');
      } catch {
        // no termination log written: the message stays empty, as with terminationMessagePolicy File
      }
      return { exitCode: result.timedOut ? 137 : (result.code ?? 137), message, log: result.stdout + result.stderr, deadlineExceeded: result.timedOut };
    } finally {
      await rm(logDir, { recursive: true, force: true });
    }
  };

  /** Stand-in gate when this machine has no sklearn or the staged model is a stand-in. */
  const wantsStandinGate = async (env: Record<string, string>): Promise<boolean> => {
    if (!py.sklearn) return true;
    try {
      const head = (await readFile(path.join(env['MODEL_DIR'] ?? '', 'model.pkl'))).subarray(0, 32);
      return isStandin(head);
    } catch {
      return false;
    }
  };

  const failures = new Map<string, { attempts: number; event: string; timer?: NodeJS.Timeout }>();

  /**
   * The Job controller could not create the pod: a Warning `FailedCreate` Event on the Job ("Error creating: " +
   * the API's message, pkg/controller/controller_utils.go), `status.startTime` from its first sync and nothing
   * else; it retries with backoff (repeats fold into the Event's count) until the Job's activeDeadlineSeconds
   * passes, which fails the Job `DeadlineExceeded`.
   */
  const failedCreate = (job: StoredObject, startTime: string, err: ApiError): void => {
    const uid = job.metadata.uid;
    const known = failures.get(uid);
    const now = nowIso();
    const attempts = (known?.attempts ?? 0) + 1;
    const eventName = known?.event ?? `${job.metadata.name}.${(BigInt(Date.now()) * 1_000_000n).toString(16)}`;
    const message = `Error creating: ${err.message}`;
    const existing = store.get(eventSel, { name: eventName, namespace });
    if (existing) store.update(eventSel, { ...existing, count: attempts, lastTimestamp: now, message });
    else {
      store.create(eventSel, {
        metadata: { name: eventName, namespace },
        involvedObject: { apiVersion: 'batch/v1', kind: 'Job', name: job.metadata.name, namespace, uid, resourceVersion: job.metadata.resourceVersion },
        reason: 'FailedCreate', message, type: 'Warning', count: attempts, firstTimestamp: now, lastTimestamp: now,
        source: { component: 'job-controller' }, reportingComponent: 'job-controller', reportingInstance: '',
      });
    }
    const current = store.get(jobSel, { name: job.metadata.name, namespace });
    const start = (current?.status as { startTime?: string } | undefined)?.startTime ?? startTime;
    if (current && current.metadata.uid === uid && !(current.status as { startTime?: string } | undefined)?.startTime) writeJobStatus(current, { startTime: start });
    logger?.info({ job: job.metadata.name, attempts, message }, 'job pod create failed');
    const deadline = (job.spec as { activeDeadlineSeconds?: number } | undefined)?.activeDeadlineSeconds;
    const base = opts.failedCreateBackoffMs ?? 10_000;
    const delay = Math.min(base * 2 ** (attempts - 1), 360_000);
    const entry: { attempts: number; event: string; timer?: NodeJS.Timeout } = { attempts, event: eventName };
    failures.set(uid, entry);
    if (closed) return;
    entry.timer = setTimeout(() => {
      const latest = store.get(jobSel, { name: job.metadata.name, namespace });
      if (!latest || latest.metadata.uid !== uid || isFinished(latest) || closed) return;
      if (deadline !== undefined && Date.now() - Date.parse(start) >= deadline * 1000) {
        const at = nowIso();
        writeJobStatus(latest, { conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline', lastProbeTime: at, lastTransitionTime: at }] });
        return;
      }
      queue.push(latest);
      pump();
    }, delay);
    entry.timer.unref();
  };

  const runJob = async (job: StoredObject): Promise<void> => {
    const fresh = store.get(jobSel, { name: job.metadata.name, namespace });
    if (!fresh || fresh.metadata.uid !== job.metadata.uid || isFinished(fresh) || closed) return;
    const jobName = fresh.metadata.name;
    const spec = (fresh.spec ?? {}) as { activeDeadlineSeconds?: number; template?: { metadata?: { labels?: Record<string, string> }; spec?: PodSpecLike & { containers?: Container[] } } };
    const template = spec.template ?? {};
    const podSpec = template.spec ?? {};
    const container = podSpec.containers?.[0] ?? {};
    const podName = `${jobName}-${suffix()}`;
    const started = Date.now();
    const startTime = (fresh.status as { startTime?: string } | undefined)?.startTime ?? nowIso();
    const pod: KubeObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: podName,
        namespace,
        labels: { ...(template.metadata?.labels ?? {}), ...jobPodLabels(jobName, fresh.metadata.uid, opts.kubeVersion) },
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: jobName, uid: fresh.metadata.uid, controller: true, blockOwnerDeletion: true }],
      },
      spec: { ...podSpec, nodeName: 'sim-node' },
    };
    try {
      opts.admitPod?.(pod);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      failedCreate(fresh, startTime, err);
      return;
    }
    store.create(podSel, pod);
    writeJobStatus(fresh, { startTime, active: 1, ready: 0 });
    const containerName = container.name ?? RESULT_CONTAINER;
    writePodStatus(podName, {
      phase: 'Running', podIP: '127.0.0.1', hostIP: '127.0.0.1', startTime,
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: startTime }],
      containerStatuses: [{ name: containerName, image: container.image, ready: true, restartCount: 0, started: true, state: { running: { startedAt: startTime } } }],
    });

    let outcome: Outcome;
    try {
      const mounts = resolveMounts(podSpec, { stateDir: opts.stateDir, configMapDir });
      const deadlineMs = spec.activeDeadlineSeconds !== undefined ? Math.max(0, spec.activeDeadlineSeconds * 1000 - (Date.now() - started)) : undefined;
      outcome = await execute(fresh, container, mounts, deadlineMs);
    } catch (err) {
      outcome = { exitCode: 128, message: '', log: `${(err as Error).message}\n`, deadlineExceeded: false, reason: 'StartError' };
    }
    if (closed) return;
    const finishedAt = nowIso();
    const ok = outcome.exitCode === 0 && !outcome.deadlineExceeded;
    store.setPodLog(namespace, podName, outcome.log);
    writePodStatus(podName, {
      phase: ok ? 'Succeeded' : 'Failed',
      ...(outcome.deadlineExceeded ? { reason: 'DeadlineExceeded', message: `Pod was active on the node longer than the specified deadline` } : {}),
      podIP: '127.0.0.1', hostIP: '127.0.0.1', startTime,
      conditions: [{ type: 'Ready', status: 'False', reason: 'PodCompleted', lastTransitionTime: finishedAt }],
      containerStatuses: [{
        name: containerName, image: container.image, ready: false, restartCount: 0, started: false,
        state: { terminated: { exitCode: outcome.exitCode, reason: outcome.reason ?? (ok ? 'Completed' : 'Error'), ...(outcome.message ? { message: outcome.message } : {}), startedAt: startTime, finishedAt } },
      }],
    });
    const condition = ok
      ? { type: 'Complete', status: 'True', lastProbeTime: finishedAt, lastTransitionTime: finishedAt }
      : outcome.deadlineExceeded
        ? { type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline', lastProbeTime: finishedAt, lastTransitionTime: finishedAt }
        : { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit', lastProbeTime: finishedAt, lastTransitionTime: finishedAt };
    writeJobStatus(fresh, ok
      ? { startTime, active: 0, ready: 0, succeeded: 1, completionTime: finishedAt, conditions: [condition] }
      : { startTime, active: 0, ready: 0, failed: 1, conditions: [condition] });
    logger?.info({ job: jobName, pod: podName, exitCode: outcome.exitCode, deadlineExceeded: outcome.deadlineExceeded }, 'job finished');
  };

  const pump = (): void => {
    while (!closed && active < MAX_PARALLEL_JOBS && queue.length > 0) {
      const job = queue.shift() as StoredObject;
      active++;
      const p = runJob(job)
        .catch((err: unknown) => logger?.error({ err, job: job.metadata.name }, 'job run failed'))
        .finally(() => {
          active--;
          inFlight.delete(p);
          pump();
        });
      inFlight.add(p);
    }
  };

  const take = (job: StoredObject): void => {
    if (closed || taken.has(job.metadata.uid) || isFinished(job)) return;
    taken.add(job.metadata.uid);
    queue.push(job);
    // Out of the store's synchronous dispatch.
    setImmediate(pump);
  };

  const selector = `app.kubernetes.io/managed-by=${MANAGER}`;
  const unsubscribe = store.subscribe({ resource: jobSel, namespace, labelSelector: selector }, (e) => {
    if (e.type === 'ADDED') take(e.object);
    if (e.type === 'DELETED') running.get(e.object.metadata.uid)?.kill();
  });
  for (const job of store.list(jobSel, { namespace, labelSelector: selector })) take(job);

  return {
    async settled() {
      for (let i = 0; i < 100_000 && (queue.length > 0 || inFlight.size > 0); i++) {
        await new Promise((resolve) => setImmediate(resolve));
        await Promise.all([...inFlight]);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      for (const f of failures.values()) clearTimeout(f.timer);
      queue.length = 0;
      for (const proc of running.values()) proc.kill();
      await Promise.allSettled([...inFlight]);
    },
  };
}
