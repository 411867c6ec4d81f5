// A simulated KServe: one InferenceService per catalog model, and for each a predictor "pod" that is a
// local HTTP server speaking the V1 and V2 inference protocols. A change of
// spec.predictor.annotations["mlops.dev/model-release"] rolls the predictor: a new pod loads model.pkl
// at start, becomes Ready, then the old pods go (rolling update).
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
import { Annotations } from '../../runtime/labels.ts';
import { Resources } from '../../runtime/resources.ts';
import { writeModelFile } from './model-files.ts';
import { loadBackend } from './predictor-backend.ts';
import type { Backend, Prediction } from './predictor-backend.ts';
import { JOBS_DIR, choosePython, pythonEnv, runProcess } from './python.ts';
import type { PythonChoice } from './python.ts';
import type { Scenario } from './scenarios.ts';
import { pvcDir } from './volumes.ts';

export const PREDICTOR_CONTAINER = 'kserve-container';
export const ISVC_LABEL = 'serving.kserve.io/inferenceservice';
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
}

export interface PredictorPodInfo {
  name: string;
  isvc: string;
  release: string;
  port: number;
  url: string;
  backend: Backend['kind'];
}

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
}

interface IsvcState {
  rolledRelease?: string;
  /** The first release this simulator served for the ISVC ('' = no annotation). */
  firstRelease?: string;
  pods: PredictorPod[];
  chain: Promise<void>;
  uid?: string;
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
      s = { pods: [], chain: Promise.resolve() };
      states.set(name, s);
    }
    return s;
  };

  const handler = (pod: () => PredictorPod, wrong: boolean) => async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { info, backend } = pod();
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

  const stopPod = async (pod: PredictorPod): Promise<void> => {
    await new Promise<void>((resolve) => {
      pod.server.close(() => resolve());
      pod.server.closeAllConnections();
    });
    await pod.backend.close();
  };

  const deletePodObject = (name: string): void => {
    try {
      store.delete(podSel, { name, namespace });
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 404)) throw err;
    }
  };

  const roll = async (isvcName: string): Promise<void> => {
    const isvc = store.get(isvcSel, { name: isvcName, namespace });
    const state = stateOf(isvcName);
    if (closed || !isvc) return;
    const release = releaseOf(isvc);
    if (state.uid === isvc.metadata.uid && state.rolledRelease === release && state.pods.length > 0) return;
    state.uid = isvc.metadata.uid;
    state.firstRelease ??= release;
    const wrong = scenario.predictor === 'wrong-after-first' && release !== state.firstRelease;
    const predictor = predictorOf(isvc);
    const modelFile = modelFileFor(opts.stateDir, predictor.model?.storageUri);
    const backend = modelFile
      ? await loadBackend(modelFile, py)
      : { kind: 'missing' as const, description: 'unsupported storageUri', predict: () => Promise.reject(new Error('model missing')), close: () => Promise.resolve() };
    // The server exists before its pod record (the record needs the port).
    const holder: { pod?: PredictorPod } = {};
    const server = createServer((req, res) => void handler(() => holder.pod as PredictorPod, wrong)(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const podName = `${isvcName}-predictor-${createHash('sha256').update(release).digest('hex').slice(0, 8)}-${suffix()}`;
    const current: PredictorPod = { info: { name: podName, isvc: isvcName, release, port, url: `http://127.0.0.1:${port}`, backend: backend.kind }, server, backend };
    holder.pod = current;
    if (closed) return void (await stopPod(current));
    state.pods.push(current);

    const labels = { [ISVC_LABEL]: isvcName, app: `${isvcName}-predictor`, component: 'predictor', 'serving.kserve.io/inferenceservice-component': 'predictor' };
    const annotations = { ...(predictor.annotations ?? {}) };
    const storageUri = predictor.model?.storageUri ?? '';
    store.create(podSel, {
      metadata: { name: podName, namespace, labels, annotations, ownerReferences: [] },
      spec: {
        containers: [{
          name: PREDICTOR_CONTAINER,
          image: SKLEARN_IMAGE,
          args: [`--model_name=${isvcName}`, '--model_dir=/mnt/models', `--http_port=${port}`],
          ports: [{ containerPort: port, name: 'http1', protocol: 'TCP' }],
          env: [{ name: 'STORAGE_URI', value: storageUri }],
        }],
        nodeName: 'sim-node',
      },
    });
    const at = nowIso();
    const pod = store.get(podSel, { name: podName, namespace });
    if (pod) {
      store.updateStatus(podSel, {
        ...pod,
        status: {
          phase: 'Running', podIP: '127.0.0.1', hostIP: '127.0.0.1', startTime: at,
          conditions: [
            { type: 'Initialized', status: 'True', lastTransitionTime: at },
            { type: 'ContainersReady', status: 'True', lastTransitionTime: at },
            { type: 'Ready', status: 'True', lastTransitionTime: at },
          ],
          containerStatuses: [{ name: PREDICTOR_CONTAINER, image: SKLEARN_IMAGE, ready: true, started: true, restartCount: 0, state: { running: { startedAt: at } } }],
        },
      });
    }
    store.setPodLog(namespace, podName, `model ${isvcName}: ${backend.description}\n`);
    logger?.info({ isvc: isvcName, pod: podName, release, backend: backend.kind, port }, 'predictor pod ready');

    // Rolling update: the new pod is Ready, now the old ones go (objects, including leftovers of an earlier session).
    for (const old of store.list(podSel, { namespace, labelSelector: `${ISVC_LABEL}=${isvcName}` })) {
      if (old.metadata.name !== podName) deletePodObject(old.metadata.name);
    }
    const olds = state.pods.filter((p) => p !== current);
    state.pods = [current];
    await Promise.all(olds.map(stopPod));
    state.rolledRelease = release;

    const fresh = store.get(isvcSel, { name: isvcName, namespace });
    if (fresh) {
      store.updateStatus(isvcSel, {
        ...fresh,
        status: {
          ...(fresh.status as object | undefined),
          url: `http://${isvcName}.${namespace}.example.com`,
          address: { url: `http://${isvcName}-predictor.${namespace}.svc.cluster.local` },
          conditions: ['IngressReady', 'PredictorReady', 'Ready'].map((type) => ({ type, status: 'True', lastTransitionTime: at })),
          components: { predictor: { latestCreatedRevision: podName, latestReadyRevision: podName } },
          observedGeneration: fresh.metadata.generation,
        },
      });
    }
  };

  const schedule = (isvcName: string): void => {
    if (closed) return;
    const state = stateOf(isvcName);
    state.chain = state.chain
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => roll(isvcName))
      .catch((err: unknown) => logger?.error({ err, isvc: isvcName }, 'predictor rollout failed'));
  };

  const teardown = (isvcName: string): void => {
    const state = stateOf(isvcName);
    state.chain = state.chain.then(async () => {
      const pods = state.pods;
      state.pods = [];
      state.rolledRelease = undefined;
      state.uid = undefined;
      for (const p of pods) deletePodObject(p.info.name);
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
    const seeded = (opts.seedReleases ?? scenario.seedRelease) ? await seedRelease(model) : undefined;
    store.create(isvcSel, {
      metadata: { name: model.inferenceService, namespace, labels: { 'mlops.dev/model': model.name }, annotations: { 'serving.kserve.io/deploymentMode': 'RawDeployment' } },
      spec: {
        predictor: {
          ...(seeded ? { annotations: { [Annotations.modelRelease]: seeded } } : {}),
          model: { modelFormat: { name: 'sklearn' }, storageUri: `pvc://${model.storage.pvc}/${model.name}`, protocolVersion: model.protocol },
        },
      },
    });
  }

  const unsubscribe = store.subscribe({ resource: isvcSel, namespace }, (e) => {
    if (e.type === 'DELETED') teardown(e.object.metadata.name);
    else schedule(e.object.metadata.name);
  });
  for (const isvc of store.list(isvcSel, { namespace })) schedule(isvc.metadata.name);

  const settled = async (): Promise<void> => {
    for (let i = 0; i < 1000; i++) {
      const chains = [...states.values()].map((s) => s.chain);
      await Promise.all(chains);
      await new Promise((resolve) => setImmediate(resolve));
      if ([...states.values()].every((s, j) => s.chain === chains[j])) return;
    }
  };

  return {
    pods: () => [...states.values()].flatMap((s) => s.pods.map((p) => ({ ...p.info }))),
    settled,
    async close() {
      if (closed) return;
      unsubscribe();
      await settled();
      closed = true;
      const pods = [...states.values()].flatMap((s) => s.pods);
      for (const s of states.values()) s.pods = [];
      await Promise.all(pods.map(stopPod));
    },
  };
}
