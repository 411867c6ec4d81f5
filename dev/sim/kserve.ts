// A simulated KServe: one InferenceService per catalog model, and for each its predictor "pods", each a
// local HTTP server speaking the V1 and V2 inference protocols. A change of
// spec.predictor.annotations["mlops.dev/model-release"] rolls the predictor the way KServe's two deployment
// modes do (docs/verification.md, "Rollouts the local cluster emulates"):
// - raw (RawDeployment): a Deployment rolling update. KServe defaults the strategy to RollingUpdate with
//   maxSurge 25 % and maxUnavailable 25 % (kserve/kserve pkg/controller/v1beta1/inferenceservice/reconcilers/
//   deployment/deployment_reconciler.go, setDefaultDeploymentSpec); the deployment controller rounds surge up
//   and unavailable down and, when both come to 0, allows 1 unavailable (kubernetes pkg/controller/deployment/
//   util/deployment_util.go, ResolveFenceposts), scales the new ReplicaSet up within replicas + maxSurge and
//   the old ones down while at least replicas - maxUnavailable pods are available, unhealthy old pods first
//   (pkg/controller/deployment/rolling.go). A scaled-down pod gets metadata.deletionTimestamp, turns NotReady
//   and stays listed through its termination grace period (drainSeconds here; Kubernetes' default is 30 s).
// - serverless: KServe's Knative Service sends 100 % of traffic to the latest Ready Revision (kserve/kserve
//   .../reconcilers/knative/ksvc_reconciler.go, "blue-green rollout"). A new Revision's pods come up beside the
//   old Revision's (initial scale = max(initial-scale, min-scale): knative/docs docs/versioned/serving/
//   autoscaling/scale-bounds.md); once they are all Ready traffic moves, and the old Revision, now unreachable,
//   keeps its pods Ready until the autoscaler scales it to zero (stable window plus up to the
//   scale-to-zero-grace-period, 30 s by default: knative/docs .../autoscaling/scale-to-zero.md): drainSeconds.
// New pods start NotReady for readyDelaySeconds (the model server loading). `restartOnce` makes the first new
// pod of each rollout restart once right after it turned Ready (its container crashes and comes back).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Store, StoredObject } from '../emulator/index.ts';
import { ApiError } from '../emulator/index.ts';
import type { Catalog, CatalogModel } from '../../runtime/catalog.ts';
import { Annotations, KSERVE_ISVC_LABEL } from '../../runtime/labels.ts';
import { Resources } from '../../runtime/resources.ts';
import { writeModelFile } from './model-files.ts';
import { loadBackend } from './predictor-backend.ts';
import type { Backend, Prediction } from './predictor-backend.ts';
import { JOBS_DIR, choosePython, pythonEnv, runProcess } from './python.ts';
import type { PythonChoice } from './python.ts';
import { predictorOfModel, type Scenario } from './scenarios.ts';
import { pvcDir } from './volumes.ts';

export const PREDICTOR_CONTAINER = 'kserve-container';
/** KServe's label on every predictor pod (runtime/labels.ts). */
export const ISVC_LABEL = KSERVE_ISVC_LABEL;
const SKLEARN_IMAGE = 'kserve/sklearnserver:v0.14.1';
const MAX_BODY = 16 * 1024 * 1024;
const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

export interface KServeOptions {
  store: Store;
  stateDir: string;
  namespace: string;
  catalog: Catalog;
  scenario: Scenario;
  python?: string;
  sklearn?: boolean;
  logger?: Logger;
  /** Serve a first release per model before any run (default: the scenario's `seedRelease`). */
  seedReleases?: boolean;
  /** KServe deployment mode to emulate (default raw). */
  rollout?: RolloutMode;
  /** How long old pods keep going after the new ones are Ready (default 30 s: see the header). */
  drainSeconds?: number;
  /** New pods stay NotReady this long after they are created (default 0). */
  readyDelaySeconds?: number;
  /** The first new pod of each rollout restarts once right after it turned Ready. */
  restartOnce?: boolean;
  /**
   * The local S3 server (dev/s3): `s3://` storageUris load the object's local file, as KServe's storage
   * initializer downloads it before the server starts; catalog models with `storage.kind: s3` get
   * `s3://<bucket>/<prefix>/<model>/releases/placeholder/` until a promotion points them elsewhere.
   */
  s3?: { bucket: string; objectFile(bucket: string, key: string): string };
}

/** The release folder an S3 model's InferenceService names before its first promotion (docs/storage.md). */
export const S3_INITIAL_RELEASE = 'placeholder';

export const RolloutModes = ['raw', 'serverless'] as const;
export type RolloutMode = (typeof RolloutModes)[number];
export function isRolloutMode(v: unknown): v is RolloutMode {
  return typeof v === 'string' && (RolloutModes as readonly string[]).includes(v);
}
export const DEFAULT_DRAIN_SECONDS = 30;
/** Stands in for the kubelet: holds a deleted pod in the list through its grace period (there is no kubelet here). */
export const KUBELET_FINALIZER = 'sim.mlops.dev/kubelet';
/** A Serverless pod scaled down: queue-proxy drains and the container stops; short, and not what matters here. */
const SERVERLESS_TERMINATION_MS = 1_000;
/** A restarting container is down at least this long (CrashLoop back-off starts at 10 s; kept short). */
const MIN_RESTART_MS = 300;

export interface PredictorPodInfo {
  name: string;
  isvc: string;
  release: string;
  port: number;
  url: string;
  backend: Backend['kind'];
  state: PodState;
  /** serverless: the Knative Revision the pod belongs to. */
  revision?: string;
}

export type PodState = 'starting' | 'ready' | 'restarting' | 'terminating';

export interface KServeSimulator {
  /** Live predictor pods (their servers are listening). */
  pods(): PredictorPodInfo[];
  /** Resolves when every rollout requested so far is done. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

interface PredictorPod {
  info: PredictorPodInfo;
  server: Server;
  backend: Backend;
  /** The pod template it was made from (release, storage, ISVC uid): its ReplicaSet or Revision. */
  template: string;
  modelFile: string | undefined;
  restarts: number;
  /** restartOnce: this pod is the one that restarts. */
  restartPending: boolean;
  /** serverless: a scale-down after the drain is scheduled. */
  draining: boolean;
}

interface IsvcState {
  /** The first release this simulator served for the ISVC ('' = no annotation). */
  firstRelease?: string;
  /** A pod of another release than the first has been started. */
  rolledOut?: boolean;
  pods: PredictorPod[];
  chain: Promise<void>;
  uid?: string;
  /** serverless: Revision counter, the latest Revision (template → name) and the one traffic goes to. */
  revisions: number;
  latest?: { template: string; name: string };
  routed?: string;
  /** The template whose rollout was last reported in the ISVC status. */
  reported?: string;
}

const isvcSel = { apiVersion: Resources.inferenceService.apiVersion, kind: Resources.inferenceService.kind };
const podSel = { apiVersion: Resources.pod.apiVersion, kind: Resources.pod.kind };

function nowIso(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function suffix(): string {
  return Array.from(randomBytes(5), (b) => NAME_CHARS[b % NAME_CHARS.length] ?? 'x').join('');
}

interface PredictorSpec {
  annotations?: Record<string, string>;
  model?: { storageUri?: string; protocolVersion?: string };
}

function predictorOf(isvc: StoredObject): PredictorSpec {
  return ((isvc.spec as { predictor?: PredictorSpec } | undefined)?.predictor) ?? {};
}

function releaseOf(isvc: StoredObject): string {
  return predictorOf(isvc).annotations?.[Annotations.modelRelease] ?? '';
}

/** `pvc://<claim>/<path>` → the local model.pkl; undefined for other storage. */
export function modelFileFor(stateDir: string, storageUri: string | undefined): string | undefined {
  const m = /^pvc:\/\/([a-z0-9][-a-z0-9.]*)\/?(.*)$/.exec(storageUri ?? '');
  if (!m) return undefined;
  const rel = path.posix.normalize(m[2] ?? '');
  if (rel.startsWith('..') || path.posix.isAbsolute(rel)) return undefined;
  const base = pvcDir(stateDir, m[1] as string);
  return rel.endsWith('.pkl') || rel.endsWith('.joblib') ? path.join(base, rel) : path.join(base, rel === '.' ? '' : rel, 'model.pkl');
}

/**
 * What the predictors of config/examples/inferenceservices.yaml load: the release folder their own pod annotation
 * names (`.releases/<model>/<release>/model.pkl`, complete before the annotation changes), else the legacy served
 * path. A pod keeps its release for life, so an old pod that restarts during verification reloads its old release
 * (docs/storage.md).
 */
export function releaseModelFile(stateDir: string, storageUri: string | undefined, release: string): string | undefined {
  const m = /^pvc:\/\/([a-z0-9][-a-z0-9.]*)\/([a-z0-9][-a-z0-9]*)\/?$/.exec(storageUri ?? '');
  if (!m || !release || !/^[a-z0-9][-a-z0-9]*$/.test(release)) return undefined;
  const file = path.join(pvcDir(stateDir, m[1] as string), '.releases', m[2] as string, release, 'model.pkl');
  return existsSync(file) ? file : undefined;
}

/** What a misbehaving predictor answers: labels negated, floats + 1. */
function corrupt(predictions: Prediction[]): Prediction[] {
  return predictions.map((p) => (Array.isArray(p) ? p.map((v) => v + 1) : typeof p === 'number' ? -p : `${p}-wrong`));
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function isRows(v: unknown): v is number[][] {
  return Array.isArray(v) && v.every((r) => Array.isArray(r) && r.every((x) => typeof x === 'number'));
}

/** V2 input tensor → rows: `data` flat (reshaped by `shape`) or already nested. */
function rowsFromV2(body: unknown): number[][] {
  const input = (body as { inputs?: Array<{ shape?: number[]; data?: unknown }> } | null)?.inputs?.[0];
  if (!input || !Array.isArray(input.data)) throw new Error('inputs[0].data is required');
  if (isRows(input.data)) return input.data;
  const flat = input.data as unknown[];
  if (!flat.every((x) => typeof x === 'number')) throw new Error('inputs[0].data must be numbers');
  const [n, f] = input.shape ?? [];
  if (typeof n !== 'number' || typeof f !== 'number' || n * f !== flat.length) throw new Error('inputs[0].shape does not match data');
  return Array.from({ length: n }, (_, i) => (flat).slice(i * f, (i + 1) * f));
}

function v2Output(predictions: Prediction[]): { name: string; shape: number[]; datatype: string; data: Array<number | string> } {
  const nested = predictions.length > 0 && Array.isArray(predictions[0]);
  const data = nested ? (predictions as number[][]).flat() : (predictions as Array<number | string>);
  const datatype = data.every((v) => typeof v === 'number') ? (data.every((v) => Number.isInteger(v)) && !nested ? 'INT64' : 'FP64') : 'BYTES';
  const shape = nested ? [predictions.length, (predictions[0] as number[]).length] : [predictions.length];
  return { name: 'output-0', shape, datatype, data };
}

export async function startKServeSimulator(opts: KServeOptions): Promise<KServeSimulator> {
  const { store, namespace, catalog, scenario, logger } = opts;
  const py: PythonChoice = await choosePython(opts);
  const states = new Map<string, IsvcState>();
  let closed = false;

  const stateOf = (name: string): IsvcState => {
    let s = states.get(name);
    if (!s) {
      s = { pods: [], chain: Promise.resolve(), revisions: 0 };
      states.set(name, s);
    }
    return s;
  };

  const handler = (pod: () => PredictorPod, wrong: boolean) => async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { info, backend } = pod();
    // A container that is not up refuses connections (still loading the model, or restarting).
    if (info.state === 'starting' || info.state === 'restarting') return void req.socket.destroy();
    const url = new URL(req.url ?? '/', 'http://predictor');
    const p = url.pathname;
    const missing = (name: string): void => send(res, 404, { error: `Model ${name} does not exist` });
    try {
      if (req.method === 'GET' && (p === '/' || p === '/v2/health/live')) return send(res, 200, p === '/' ? { status: 'alive' } : { live: true });
      if (req.method === 'GET' && p === '/v2/health/ready') return send(res, 200, { ready: true });
      const m = /^\/v1\/models\/([^/:]+)(:predict)?$/.exec(p);
      const v2 = /^\/v2\/models\/([^/]+)(\/ready|\/infer)?$/.exec(p);
      const name = decodeURIComponent((m ?? v2)?.[1] ?? '');
      if (!m && !v2) return send(res, 404, { error: `Not Found: ${p}` });
      if (name !== info.isvc || backend.kind === 'missing') return missing(name);
      if (m && !m[2] && req.method === 'GET') return send(res, 200, { name, ready: true });
      if (v2 && !v2[2] && req.method === 'GET') return send(res, 200, { name, versions: [], platform: 'sklearn', inputs: [], outputs: [] });
      if (v2 && v2[2] === '/ready' && req.method === 'GET') return send(res, 200, { name, ready: true });
      if (req.method !== 'POST') return send(res, 405, { error: 'Method Not Allowed' });
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req)) as unknown;
      } catch (err) {
        return send(res, 400, { error: `Unrecognized request format: ${(err as Error).message}` });
      }
      let rows: number[][];
      try {
        if (m) {
          const instances = (body as { instances?: unknown } | null)?.instances;
          if (!isRows(instances)) throw new Error('"instances" must be a list of lists of numbers');
          rows = instances;
        } else {
          rows = rowsFromV2(body);
        }
      } catch (err) {
        return send(res, 400, { error: `Invalid input: ${(err as Error).message}` });
      }
      let predictions: Prediction[];
      try {
        predictions = await backend.predict(rows);
      } catch (err) {
        return send(res, 500, { error: (err as Error).message });
      }
      if (wrong) predictions = corrupt(predictions);
      if (m) return send(res, 200, { predictions });
      const id = (body as { id?: unknown } | null)?.id;
      return send(res, 200, { model_name: name, model_version: null, id: typeof id === 'string' ? id : randomBytes(16).toString('hex'), parameters: null, outputs: [v2Output(predictions)] });
    } catch (err) {
      if (!res.headersSent) send(res, 500, { error: (err as Error).message });
    }
  };

  const rollout: RolloutMode = opts.rollout ?? 'raw';
  const drainMs = Math.max(0, (opts.drainSeconds ?? DEFAULT_DRAIN_SECONDS) * 1000);
  const readyDelayMs = Math.max(0, (opts.readyDelaySeconds ?? 0) * 1000);
  const timers = new Set<NodeJS.Timeout>();
  const isvcStatus = rollout === 'raw' ? 'RawDeployment' : 'Serverless';

  const stopPod = async (pod: PredictorPod): Promise<void> => {
    await new Promise<void>((resolve) => {
      pod.server.close(() => resolve());
      pod.server.closeAllConnections();
    });
    await pod.backend.close();
  };

  /** Runs `fn` on the ISVC's chain after `ms` (every change to one ISVC's pods is serialised on its chain). */
  const later = (isvcName: string, ms: number, fn: () => Promise<void> | void): void => {
    if (closed) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      enqueue(isvcName, fn);
    }, ms);
    timers.add(timer);
  };

  const enqueue = (isvcName: string, fn: () => Promise<void> | void): void => {
    if (closed) return;
    const state = stateOf(isvcName);
    state.chain = state.chain
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => (closed ? undefined : fn()))
      .catch((err: unknown) => logger?.error({ err, isvc: isvcName }, 'predictor rollout failed'));
  };

  const podObject = (name: string): StoredObject | undefined => store.get(podSel, { name, namespace });

  /** The kubelet's status for a pod: Ready (and ContainersReady) as `ready`, with the restart count. */
  const writePodStatus = (pod: PredictorPod, ready: boolean, lastState?: object): void => {
    const obj = podObject(pod.info.name);
    if (!obj) return;
    const at = nowIso();
    const prev = obj.status as { startTime?: string; conditions?: Array<{ type: string; status: string; lastTransitionTime?: string }> } | undefined;
    const cond = (type: string, status: boolean) => {
      const before = prev?.conditions?.find((c) => c.type === type);
      const value = status ? 'True' : 'False';
      return { type, status: value, lastTransitionTime: before?.status === value ? before.lastTransitionTime ?? at : at };
    };
    store.updateStatus(podSel, {
      ...obj,
      status: {
        phase: 'Running', podIP: '127.0.0.1', hostIP: '127.0.0.1', startTime: prev?.startTime ?? at,
        conditions: [cond('Initialized', true), cond('ContainersReady', ready), cond('Ready', ready), cond('PodScheduled', true)],
        containerStatuses: [{
          name: PREDICTOR_CONTAINER, image: SKLEARN_IMAGE, ready, started: pod.info.state !== 'restarting', restartCount: pod.restarts,
          state: pod.info.state === 'restarting' ? { waiting: { reason: 'CrashLoopBackOff' } } : { running: { startedAt: at } },
          ...(lastState ? { lastState } : {}),
        }],
      },
    });
  };

  // Any change under spec.predictor.annotations changes the pod template (KServe copies them onto the pods).
  const templateOf = (isvc: StoredObject): string => JSON.stringify([isvc.metadata.uid, releaseOf(isvc), predictorOf(isvc).model?.storageUri ?? '',
    Object.entries(predictorOf(isvc).annotations ?? {}).filter(([k]) => k !== Annotations.modelRelease).sort()]);
  /** `s3://bucket/key` → the local file of the object (a folder URI: its model.pkl); undefined when absent. */
  const s3ModelFile = (storageUri: string | undefined): { s3: boolean; file?: string } => {
    const m = /^s3:\/\/([^/]+)\/(.+?)\/?$/.exec(storageUri ?? '');
    if (!m) return { s3: false };
    if (!opts.s3) return { s3: true };
    const key = /\.(pkl|joblib)$/.test(m[2] ?? '') ? (m[2] ?? '') : `${m[2] ?? ''}/model.pkl`;
    const file = opts.s3.objectFile(m[1] ?? '', key);
    return existsSync(file) ? { s3: true, file } : { s3: true };
  };
  const replicasOf = (isvc: StoredObject): number => {
    const n = (isvc.spec as { predictor?: { minReplicas?: unknown } } | undefined)?.predictor?.minReplicas;
    return typeof n === 'number' && Number.isInteger(n) && n >= 1 ? n : 1; // KServe's minReplicas default
  };

  const startPod = async (isvcName: string, isvc: StoredObject, template: string, revision: string | undefined, restartPending: boolean): Promise<void> => {
    const state = stateOf(isvcName);
    const release = releaseOf(isvc);
    const predictor = predictorOf(isvc);
    const fromS3 = s3ModelFile(predictor.model?.storageUri);
    // A model served from the bucket is told apart by its storageUri (its first one carries no release annotation).
    const served = fromS3.s3 ? (predictor.model?.storageUri ?? '').replace(/\/$/, '') : release;
    state.firstRelease ??= served;
    const rolledOut = served !== state.firstRelease;
    const behaviour = predictorOfModel(scenario, catalog.models.find((m) => m.inferenceService === isvcName)?.name ?? isvcName);
    const wrong = (behaviour === 'wrong-after-first' || behaviour === 'restore-broken') && rolledOut;
    // restore-broken: the first release's pods started after a rollout (the rollback's) have no model to load.
    const noModel = behaviour === 'restore-broken' && !rolledOut && state.rolledOut === true;
    if (rolledOut) state.rolledOut = true;
    const modelFile = fromS3.s3 ? fromS3.file : releaseModelFile(opts.stateDir, predictor.model?.storageUri, release) ?? modelFileFor(opts.stateDir, predictor.model?.storageUri);
    const backend = noModel ? await loadBackendFor(undefined, 'restore-broken: the restored release folder is gone') : await loadBackendFor(modelFile);
    // The server exists before its pod record (the record needs the port).
    const holder: { pod?: PredictorPod } = {};
    const server = createServer((req, res) => void handler(() => holder.pod as PredictorPod, wrong)(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const hash = createHash('sha256').update(template).digest('hex').slice(0, 10);
    // Names as the controllers make them: Deployment <isvc>-predictor → ReplicaSet <deployment>-<pod-template-hash>;
    // Revision <isvc>-predictor-0000N → Deployment <revision>-deployment → ReplicaSet → pod.
    const podName = revision ? `${revision}-deployment-${hash}-${suffix()}` : `${isvcName}-predictor-${hash}-${suffix()}`;
    const info: PredictorPodInfo = { name: podName, isvc: isvcName, release, port, url: `http://127.0.0.1:${port}`, backend: backend.kind, state: 'starting', ...(revision ? { revision } : {}) };
    const current: PredictorPod = { info, server, backend, template, modelFile, restarts: 0, restartPending, draining: false };
    holder.pod = current;
    if (closed) return void (await stopPod(current));
    state.pods.push(current);

    const labels: Record<string, string> = {
      [ISVC_LABEL]: isvcName, app: `${isvcName}-predictor`, component: 'predictor', 'serving.kserve.io/inferenceservice-component': 'predictor',
      ...(revision
        ? { 'serving.knative.dev/revision': revision, 'serving.knative.dev/configuration': `${isvcName}-predictor`, 'serving.knative.dev/service': `${isvcName}-predictor` }
        : { 'pod-template-hash': hash }),
    };
    // KServe copies spec.predictor.annotations onto the pod template (both modes).
    const annotations = { ...(predictor.annotations ?? {}) };
    const storageUri = predictor.model?.storageUri ?? '';
    store.create(podSel, {
      metadata: { name: podName, namespace, labels, annotations, ownerReferences: [], finalizers: [KUBELET_FINALIZER] },
      spec: {
        containers: [{
          name: PREDICTOR_CONTAINER,
          image: SKLEARN_IMAGE,
          args: [`--model_name=${isvcName}`, '--model_dir=/mnt/models', `--http_port=${port}`],
          ports: [{ containerPort: port, name: 'http1', protocol: 'TCP' }],
          env: [{ name: 'STORAGE_URI', value: storageUri }],
        }],
        nodeName: 'sim-node',
        terminationGracePeriodSeconds: rollout === 'raw' ? Math.round(drainMs / 1000) : Math.round(SERVERLESS_TERMINATION_MS / 1000),
      },
    });
    writePodStatus(current, false);
    store.setPodLog(namespace, podName, `model ${isvcName}: ${backend.description}\n`);
    logger?.info({ isvc: isvcName, pod: podName, release, backend: backend.kind, port, rollout }, 'predictor pod started');
    // KServe's storage initializer fails on a missing object: the pod never starts serving (Init:CrashLoopBackOff).
    if (fromS3.s3 && !fromS3.file) {
      logger?.info({ isvc: isvcName, pod: podName, storageUri }, 'predictor pod waits: the storage initializer finds no object');
      return;
    }
    later(isvcName, readyDelayMs, () => becomeReady(isvcName, current));
  };

  const loadBackendFor = async (modelFile: string | undefined, why = 'unsupported storageUri'): Promise<Backend> => modelFile
    ? loadBackend(modelFile, py)
    : { kind: 'missing' as const, description: why, predict: () => Promise.reject(new Error('model missing')), close: () => Promise.resolve() };

  const becomeReady = (isvcName: string, pod: PredictorPod): void => {
    if (pod.info.state === 'terminating' || !stateOf(isvcName).pods.includes(pod)) return;
    pod.info.state = 'ready';
    writePodStatus(pod, true);
    logger?.info({ isvc: isvcName, pod: pod.info.name }, 'predictor pod ready');
    if (pod.restartPending) {
      pod.restartPending = false;
      later(isvcName, 0, () => restart(isvcName, pod));
    }
    reconcile(isvcName);
  };

  /** The container crashes and comes back: NotReady, restartCount + 1, the model loaded again at start. */
  const restart = async (isvcName: string, pod: PredictorPod): Promise<void> => {
    if (pod.info.state !== 'ready') return;
    pod.info.state = 'restarting';
    pod.restarts += 1;
    pod.server.closeAllConnections();
    const at = nowIso();
    writePodStatus(pod, false, { terminated: { exitCode: 137, reason: 'Error', startedAt: at, finishedAt: at } });
    logger?.info({ isvc: isvcName, pod: pod.info.name }, 'predictor pod restarting');
    await pod.backend.close();
    pod.backend = await loadBackendFor(pod.modelFile);
    pod.info.backend = pod.backend.kind;
    later(isvcName, Math.max(readyDelayMs, MIN_RESTART_MS), () => {
      if (pod.info.state !== 'restarting') return;
      pod.info.state = 'starting';
      becomeReady(isvcName, pod);
    });
  };

  /** Graceful deletion: deletionTimestamp set (the API server), NotReady (the kubelet), gone after `graceMs`. */
  const terminate = (isvcName: string, pod: PredictorPod, graceMs: number): void => {
    if (pod.info.state === 'terminating') return;
    pod.info.state = 'terminating';
    try {
      store.delete(podSel, { name: pod.info.name, namespace });
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 404)) throw err;
    }
    writePodStatus(pod, false);
    logger?.info({ isvc: isvcName, pod: pod.info.name, graceMs }, 'predictor pod terminating');
    later(isvcName, graceMs, async () => {
      const state = stateOf(isvcName);
      state.pods = state.pods.filter((p) => p !== pod);
      releasePodObject(pod.info.name);
      await stopPod(pod);
      reconcile(isvcName);
    });
  };

  /** The kubelet's last word: the finalizer goes, and with it the pod (watchers see DELETED). */
  const releasePodObject = (name: string): void => {
    const obj = podObject(name);
    if (!obj) return;
    try {
      if (obj.metadata.deletionTimestamp) store.update(podSel, { ...obj, metadata: { ...obj.metadata, finalizers: (obj.metadata.finalizers ?? []).filter((f) => f !== KUBELET_FINALIZER) } });
      else store.delete(podSel, { name, namespace });
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 404)) throw err;
    }
  };

  /** Gone without a grace period (the ISVC was deleted, or nobody runs the pod). */
  const removeNow = (name: string): void => {
    releasePodObject(name); // not terminating yet: the delete marks it
    releasePodObject(name); // terminating: the finalizer goes, and the pod with it
  };

  /** Pod objects of the ISVC this simulator has no server for (an earlier session's): they go at once. */
  const deleteForeignPods = (isvcName: string): void => {
    const mine = new Set(stateOf(isvcName).pods.map((p) => p.info.name));
    for (const obj of store.list(podSel, { namespace, labelSelector: `${ISVC_LABEL}=${isvcName}` })) {
      if (!mine.has(obj.metadata.name)) removeNow(obj.metadata.name);
    }
  };

  /** Level-triggered, like the controllers: compares the pods with the InferenceService and takes the next step. */
  const reconcile = (isvcName: string): void => enqueue(isvcName, async () => {
    const isvc = store.get(isvcSel, { name: isvcName, namespace });
    const state = stateOf(isvcName);
    if (!isvc) return;
    state.uid = isvc.metadata.uid;
    const template = templateOf(isvc);
    const replicas = replicasOf(isvc);
    const live = state.pods.filter((p) => p.info.state !== 'terminating');
    const fresh = live.filter((p) => p.template === template);
    const old = live.filter((p) => p.template !== template);
    const isReady = (p: PredictorPod): boolean => p.info.state === 'ready';

    if (rollout === 'raw') {
      const firstOfRollout = state.reported !== undefined && opts.restartOnce === true && fresh.length === 0;
      const maxSurge = Math.ceil(replicas * 0.25);
      let maxUnavailable = Math.floor(replicas * 0.25);
      if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1; // ResolveFenceposts
      const room = Math.min(replicas - fresh.length, replicas + maxSurge - live.length);
      for (let i = 0; i < room; i++) await startPod(isvcName, isvc, template, undefined, firstOfRollout && i === 0);
      const nowLive = state.pods.filter((p) => p.info.state !== 'terminating');
      const nowFresh = nowLive.filter((p) => p.template === template);
      const minAvailable = replicas - maxUnavailable;
      let scaleDown = nowLive.length - minAvailable - nowFresh.filter((p) => !isReady(p)).length;
      // Unhealthy old pods first, then Ready ones while enough pods stay available.
      for (const p of old.filter((o) => !isReady(o))) {
        if (scaleDown <= 0) break;
        terminate(isvcName, p, drainMs);
        scaleDown--;
      }
      let available = nowLive.filter(isReady).length;
      for (const p of old.filter(isReady)) {
        if (scaleDown <= 0 || available <= minAvailable) break;
        terminate(isvcName, p, drainMs);
        scaleDown--;
        available--;
      }
      // Scaled down (minReplicas lowered): the extra pods of the current template go, NotReady ones first.
      for (const p of [...nowFresh].sort((a, b) => Number(isReady(a)) - Number(isReady(b))).slice(0, Math.max(0, nowFresh.length - replicas))) terminate(isvcName, p, drainMs);
      const kept = nowFresh.filter((p) => p.info.state !== 'terminating');
      if (kept.length >= replicas && kept.every(isReady)) {
        deleteForeignPods(isvcName);
        report(isvcName, template, `${isvcName}-predictor`);
      }
      return;
    }

    // serverless: one Revision per template; all of its pods at once.
    if (state.latest?.template !== template) {
      state.revisions += 1;
      state.latest = { template, name: `${isvcName}-predictor-${String(state.revisions).padStart(5, '0')}` };
    }
    // A Revision is never reused: going back to an earlier spec makes a new one (its own pods).
    const revision = state.latest.name;
    const existing = live.filter((p) => p.info.revision === revision).length;
    const first = state.reported !== undefined && opts.restartOnce === true && existing === 0;
    for (let i = existing; i < replicas; i++) await startPod(isvcName, isvc, template, revision, first && i === existing);
    const revisionPods = state.pods.filter((p) => p.info.revision === revision && p.info.state !== 'terminating');
    if (revisionPods.length < replicas || !revisionPods.every(isReady)) return;
    // The Revision is Ready: traffic moves to it; the old Revisions drain, then scale to zero.
    state.routed = revision;
    for (const p of state.pods.filter((q) => q.info.revision !== revision && q.info.state !== 'terminating' && !q.draining)) {
      p.draining = true;
      later(isvcName, drainMs, () => { if (state.routed !== p.info.revision) terminate(isvcName, p, SERVERLESS_TERMINATION_MS); else p.draining = false; });
    }
    deleteForeignPods(isvcName);
    report(isvcName, template, revision);
  });

  const report = (isvcName: string, template: string, revision: string): void => {
    const state = stateOf(isvcName);
    if (state.reported === template) return;
    state.reported = template;
    const fresh = store.get(isvcSel, { name: isvcName, namespace });
    if (!fresh) return;
    const at = nowIso();
    store.updateStatus(isvcSel, {
      ...fresh,
      status: {
        ...(fresh.status as object | undefined),
        url: `http://${isvcName}.${namespace}.example.com`,
        address: { url: `http://${isvcName}-predictor.${namespace}.svc.cluster.local` },
        conditions: ['IngressReady', 'PredictorReady', 'Ready'].map((type) => ({ type, status: 'True', lastTransitionTime: at })),
        components: { predictor: rollout === 'serverless'
          ? { latestCreatedRevision: revision, latestReadyRevision: revision, latestRolledoutRevision: revision, traffic: [{ revisionName: revision, percent: 100, latestRevision: true }] }
          : {} },
        deploymentMode: isvcStatus,
        observedGeneration: fresh.metadata.generation,
      },
    });
  };

  const teardown = (isvcName: string): void => {
    const state = stateOf(isvcName);
    state.chain = state.chain.then(async () => {
      const pods = state.pods;
      state.pods = [];
      state.uid = undefined;
      state.latest = undefined;
      state.routed = undefined;
      state.reported = undefined;
      for (const p of pods) removeNow(p.info.name);
      await Promise.all(pods.map(stopPod));
    });
  };

  const seedRelease = async (model: CatalogModel): Promise<string | undefined> => {
    const root = pvcDir(opts.stateDir, model.storage.pvc);
    const releaseFile = path.join(root, model.name, 'RELEASE');
    if (existsSync(releaseFile)) return undefined;
    const run = `${model.name}-seed`;
    await writeModelFile({ model: model.name, features: model.features.count, output: model.output, outPath: path.join(root, '.runs', run, model.name, 'model.pkl') }, py);
    const proc = runProcess(py.python, [path.join(JOBS_DIR, 'promote.py')], {
      env: pythonEnv({ ROOT: root, MODEL: model.name, RUN: run, SOURCE: 'staging', KEEP: String(model.releasesKept), TERMINATION_LOG: path.join(root, '.runs', run, 'promote-result.json') }),
      timeoutMs: 60_000,
    });
    const result = await proc.done;
    if (result.code !== 0 || !/"ok":\s*true/.test(result.stdout)) throw new Error(`seeding ${model.name} failed: ${result.stdout}${result.stderr}`);
    return run;
  };

  // One InferenceService per catalog model, as Argo CD would have created it.
  for (const model of catalog.models) {
    if (!model.enabled || store.get(isvcSel, { name: model.inferenceService, namespace })) continue;
    const seeded = model.storage.kind !== 's3' && (opts.seedReleases ?? scenario.seedRelease) ? await seedRelease(model) : undefined;
    store.create(isvcSel, {
      metadata: { name: model.inferenceService, namespace, labels: { 'mlops.dev/model': model.name }, annotations: { 'serving.kserve.io/deploymentMode': isvcStatus } },
      spec: {
        predictor: {
          ...(seeded ? { annotations: { [Annotations.modelRelease]: seeded } } : {}),
          model: {
            modelFormat: { name: 'sklearn' },
            storageUri: model.storage.kind === 's3'
              ? `s3://${model.storage.bucket ?? opts.s3?.bucket ?? 'model-storage'}/${model.storage.prefix}/${model.name}/releases/${S3_INITIAL_RELEASE}/`
              : `pvc://${model.storage.pvc}/${model.name}`,
            protocolVersion: model.protocol,
          },
        },
      },
    });
  }

  const unsubscribe = store.subscribe({ resource: isvcSel, namespace }, (e) => {
    if (e.type === 'DELETED') teardown(e.object.metadata.name);
    else reconcile(e.object.metadata.name);
  });
  for (const isvc of store.list(isvcSel, { namespace })) reconcile(isvc.metadata.name);

  /** Every rollout finished, drains included (waits out the timers). */
  const settled = async (): Promise<void> => {
    for (let i = 0; i < 100_000; i++) {
      const chains = [...states.values()].map((s) => s.chain);
      await Promise.all(chains);
      await new Promise((resolve) => setTimeout(resolve, timers.size > 0 ? 20 : 0));
      if (timers.size === 0 && [...states.values()].every((s, j) => s.chain === chains[j])) return;
    }
  };

  return {
    pods: () => [...states.values()].flatMap((s) => s.pods.map((p) => ({ ...p.info }))),
    settled,
    async close() {
      if (closed) return;
      unsubscribe();
      // Pending readiness, restarts and drains are cut short: the servers stop now.
      for (const t of timers) clearTimeout(t);
      timers.clear();
      closed = true;
      await Promise.all([...states.values()].map((s) => s.chain));
      const pods = [...states.values()].flatMap((s) => s.pods);
      for (const s of states.values()) s.pods = [];
      await Promise.all(pods.map(stopPod));
    },
  };
}
