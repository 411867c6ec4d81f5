// A simulated notebook-validation operator (mlops.mlops.dev/v1alpha1 NotebookValidationJob): walks each
// new NVJ through the real phases, Running↔ValidationRunning flap included, and on success writes the
// model.pkl the notebook would write into the mounted PVC folder (subPath honoured).
import path from 'node:path';
import type { Logger } from 'pino';
import type { Store, StoredObject } from '../emulator/index.ts';
import type { Catalog } from '../../runtime/catalog.ts';
import { findModel } from '../../runtime/catalog.ts';
import { Resources } from '../../runtime/resources.ts';
import { choosePython } from './python.ts';
import type { PythonChoice, RunningProcess } from './python.ts';
import { writeModelFile, writeReferenceData } from './model-files.ts';
import type { Scenario } from './scenarios.ts';
import { localPathFor, pvcDir, resolveMounts } from './volumes.ts';
import type { PodSpecLike } from './volumes.ts';

export const NVJ_MODEL_MOUNT = '/mnt/models';
/** Set on an NVJ whose notebook output is a stand-in (no sklearn): only `mlops dev` ever shows it. */
export const SIMULATED_ANNOTATION = 'mlops.dev/simulated';
const OPERATOR_COMPONENT = 'notebook-validator-controller';

export interface NvjOperatorOptions {
  store: Store;
  stateDir: string;
  namespace: string;
  scenario: Scenario;
  catalog: Catalog;
  /** Interpreter with sklearn; default: detected (see pythonWithSklearn). */
  python?: string;
  /** false forces the stand-in model (what a laptop without sklearn gets). */
  sklearn?: boolean;
  logger?: Logger;
  /** Pause between phase steps (0 in tests). */
  delayMs?: number;
}

export interface NvjOperator {
  /** Resolves when every NVJ taken so far has reached its last step (a `hang` one stops at Running). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

type Step = { phase: string; message: string };

const nvjSel = { apiVersion: Resources.notebookValidationJob.apiVersion, kind: Resources.notebookValidationJob.kind };
const eventSel = { apiVersion: 'v1', kind: 'Event' };

function nowIso(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function envOf(nvj: StoredObject): Record<string, string> {
  const podConfig = (nvj.spec as { podConfig?: { env?: Array<{ name: string; value?: string }> } } | undefined)?.podConfig;
  return Object.fromEntries((podConfig?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
}

export async function startNvjOperator(opts: NvjOperatorOptions): Promise<NvjOperator> {
  const { store, namespace, scenario, catalog, logger } = opts;
  const py: PythonChoice = await choosePython(opts);
  const delayMs = opts.delayMs ?? 0;
  const taken = new Set<string>();
  const inFlight = new Set<Promise<void>>();
  /** Pending pauses: close() ends them early so nothing waits on a cleared timer. */
  const timers = new Map<NodeJS.Timeout, () => void>();
  const processes = new Set<RunningProcess>();
  let closed = false;

  const sleep = (ms: number): Promise<void> => new Promise((resolve) => {
    if (ms <= 0) return void setImmediate(resolve);
    const t = setTimeout(() => { timers.delete(t); resolve(); }, ms);
    timers.set(t, resolve);
  });

  /** Writes one phase; false when the NVJ is gone (deleted by the watchdog) or the operator closed. */
  const setPhase = (name: string, uid: string, step: Step, extra: Record<string, unknown> = {}): boolean => {
    if (closed) return false;
    const current = store.get(nvjSel, { name, namespace });
    if (!current || current.metadata.uid !== uid || current.metadata.deletionTimestamp) return false;
    const prev = (current.status ?? {}) as Record<string, unknown>;
    store.updateStatus(nvjSel, {
      ...current,
      status: { ...prev, phase: step.phase, message: step.message, startTime: prev['startTime'] ?? nowIso(), retryCount: 0, ...extra },
    });
    logger?.debug({ nvj: name, phase: step.phase }, 'nvj phase');
    return true;
  };

  const recordEvent = (nvj: StoredObject, reason: string, message: string, type: 'Normal' | 'Warning'): void => {
    const at = nowIso();
    try {
      store.create(eventSel, {
        metadata: { generateName: `${nvj.metadata.name}.`, namespace },
        involvedObject: { apiVersion: nvj.apiVersion, kind: nvj.kind, name: nvj.metadata.name, namespace, uid: nvj.metadata.uid },
        reason, message, type, count: 1, firstTimestamp: at, lastTimestamp: at,
        source: { component: OPERATOR_COMPONENT },
      });
    } catch (err) {
      logger?.warn({ err, nvj: nvj.metadata.name }, 'could not record the operator event');
    }
  };

  /** Runs the "notebook": the model it writes, or the reason it failed. */
  const runNotebook = async (nvj: StoredObject): Promise<{ ok: true; simulated: boolean; path: string } | { ok: false; message: string }> => {
    if (scenario.training === 'fail') return { ok: false, message: scenario.trainingFailMessage };
    const env = envOf(nvj);
    const modelName = env['MODEL_NAME'] ?? nvj.metadata.labels?.['mlops.dev/model'] ?? '';
    const model = findModel(catalog, nvj.metadata.labels?.['mlops.dev/model'] ?? modelName);
    if (!model) return { ok: false, message: `Notebook execution failed: model ${JSON.stringify(modelName)} is not in the catalog` };
    const podConfig = (nvj.spec as { podConfig?: PodSpecLike } | undefined)?.podConfig ?? {};
    const mounts = resolveMounts(podConfig, { stateDir: opts.stateDir });
    const modelsDir = localPathFor(NVJ_MODEL_MOUNT, mounts);
    if (!modelsDir) return { ok: false, message: `Notebook execution failed: nothing mounted at ${NVJ_MODEL_MOUNT}` };
    const outPath = path.join(modelsDir, modelName || model.name, 'model.pkl');
    try {
      // The reference data the gate's baseline checks read, where the catalog names one (docs/gate.md); startSimulators
      // writes it at start, this covers an operator started alone. Written once (it skips an existing file).
      if (model.referenceData && py.sklearn) {
        await writeReferenceData({ features: model.features.count, output: model.output, outPath: path.join(pvcDir(opts.stateDir, model.storage.pvc), model.referenceData.path) }, py);
      }
      const written = await writeModelFile(
        { model: model.name, features: model.features.count, output: model.output, outPath, bad: scenario.training === 'bad-model', worse: scenario.training === 'worse-model' },
        py,
        (p) => { processes.add(p); void p.done.then(() => processes.delete(p)); },
      );
      return { ok: true, simulated: written.simulated, path: written.path };
    } catch (err) {
      return { ok: false, message: `Notebook execution failed: ${(err as Error).message}` };
    }
  };

  const reconcile = async (nvj: StoredObject): Promise<void> => {
    const name = nvj.metadata.name;
    const uid = nvj.metadata.uid;
    const pod = `${name}-validation`;
    const walk: Step[] = [
      { phase: 'Initializing', message: 'Validation job initializing' },
      { phase: 'Building', message: 'Building notebook image' },
      { phase: 'BuildComplete', message: 'Image build complete' },
      { phase: 'ValidationRunning', message: `Validation pod ${pod} created` },
      { phase: 'Running', message: 'Notebook execution in progress' },
      { phase: 'ValidationRunning', message: 'Validation pod running' },
      { phase: 'Running', message: 'Notebook execution in progress' },
    ];
    for (const step of walk) {
      if (!setPhase(name, uid, step, { validationPodName: pod })) return;
      await sleep(delayMs);
    }
    if (scenario.training === 'hang') return;
    const outcome = await runNotebook(nvj);
    if (closed) return;
    if (outcome.ok) {
      if (outcome.simulated) {
        try {
          store.patchMerge(nvjSel, { name, namespace }, { metadata: { annotations: { [SIMULATED_ANNOTATION]: 'stand-in model (sklearn not available)' } } });
        } catch {
          return; // deleted meanwhile
        }
      }
      const message = outcome.simulated ? 'Notebook executed successfully (simulated: stand-in model, sklearn not available)' : 'Notebook executed successfully';
      if (setPhase(name, uid, { phase: 'Succeeded', message }, { completionTime: nowIso() })) recordEvent(nvj, 'ValidationSucceeded', message, 'Normal');
      logger?.info({ nvj: name, path: outcome.path, simulated: outcome.simulated }, 'nvj succeeded');
    } else {
      if (setPhase(name, uid, { phase: 'Failed', message: outcome.message }, { completionTime: nowIso() })) recordEvent(nvj, 'ValidationFailed', outcome.message, 'Warning');
      logger?.info({ nvj: name, message: outcome.message }, 'nvj failed');
    }
  };

  const take = (nvj: StoredObject): void => {
    if (closed || taken.has(nvj.metadata.uid)) return;
    const phase = (nvj.status as { phase?: string } | undefined)?.phase;
    if (phase !== undefined) return; // already reconciled by an earlier operator
    taken.add(nvj.metadata.uid);
    // Out of the store's synchronous dispatch: the writes happen on later ticks, like a real controller.
    const p = sleep(0).then(() => reconcile(nvj)).catch((err: unknown) => logger?.error({ err, nvj: nvj.metadata.name }, 'nvj reconcile failed'));
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  const unsubscribe = store.subscribe({ resource: nvjSel, namespace }, (e) => {
    if (e.type === 'ADDED') take(e.object);
  });
  for (const nvj of store.list(nvjSel, { namespace })) take(nvj);

  return {
    async settled() {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
    async close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      for (const [t, resolve] of timers) {
        clearTimeout(t);
        resolve();
      }
      timers.clear();
      for (const p of processes) p.kill();
      await Promise.all([...processes].map((p) => p.done));
      await Promise.allSettled([...inFlight]);
    },
  };
}
