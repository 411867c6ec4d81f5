// Shared by the simulator tests: a real emulator with our CRDs, a state folder, the repo's catalog, and
// manifests shaped exactly like the functions' (start-training's NVJ, runtime/jobs.ts step Jobs).
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { startEmulator } from '../emulator/index.ts';
import type { Emulator, Store, StoredObject } from '../emulator/index.ts';
import { findModel, loadCatalog } from '../../runtime/catalog.ts';
import type { Catalog, CatalogModel } from '../../runtime/catalog.ts';
import { nvjManifest } from '../../functions/start-training/manifests.ts';
import { stepJobManifest } from '../../runtime/jobs.ts';
import type { StepJobSpec } from '../../runtime/jobs.ts';
import type { ModelRun } from '../../runtime/resources.ts';
import { REPO_ROOT, pythonEnv } from './python.ts';

export const NS = 'mlops';
export const PY = '/usr/bin/python3';

export interface SimCluster {
  emulator: Emulator;
  store: Store;
  stateDir: string;
  catalog: Catalog;
  model(name: string): CatalogModel;
  close(): Promise<void>;
}

export async function startSimCluster(): Promise<SimCluster> {
  const emulator = await startEmulator({ rbac: false });
  const crdDir = path.join(REPO_ROOT, 'config/crds');
  const docs: object[] = [];
  for (const file of (await readdir(crdDir)).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(await readFile(path.join(crdDir, file), 'utf8'))) {
      const obj = doc.toJS() as unknown;
      if (obj && typeof obj === 'object') docs.push(obj);
    }
  }
  await emulator.applyManifests([...docs, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }]);
  const stateDir = await mkdtemp(path.join(tmpdir(), 'mlops-sim-'));
  const catalog = loadCatalog(path.join(REPO_ROOT, 'config/models.yaml'));
  return {
    emulator,
    store: emulator.store,
    stateDir,
    catalog,
    model(name) {
      const m = findModel(catalog, name);
      if (!m) throw new Error(`no model ${name}`);
      return m;
    },
    async close() {
      await emulator.close();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

export function fakeRun(model: CatalogModel, run: string, profile: 'cpu' | 'gpu' = model.profile): ModelRun {
  return {
    apiVersion: 'lifecycle.mlops.dev/v1alpha1',
    kind: 'ModelRun',
    metadata: { name: run, namespace: NS },
    spec: { model: model.name, trigger: 'manual', idempotencyKey: `key-${run}`, profile },
  };
}

export function createNvj(store: Store, model: CatalogModel, run: string, profile: 'cpu' | 'gpu' = model.profile): StoredObject {
  const manifest = nvjManifest(fakeRun(model, run, profile), model);
  return store.create({ apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob' }, { ...(manifest as object), apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob', metadata: { ...(manifest.metadata as object), namespace: NS } });
}

export function createStepJob(store: Store, spec: Omit<StepJobSpec, 'run'> & { run: string }): StoredObject {
  const manifest = stepJobManifest({ ...spec, run: fakeRun(spec.model, spec.run) });
  return store.create({ apiVersion: 'batch/v1', kind: 'Job' }, { ...(manifest as object), apiVersion: 'batch/v1', kind: 'Job', metadata: { ...(manifest.metadata as object), namespace: NS } });
}

/** Runs a Python snippet with /usr/bin/python3 and returns its stdout. */
export function python(code: string, args: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(PY, ['-c', code, ...args], { env: pythonEnv(), timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

/** Polls until `check` returns a value (bounded). */
export async function waitFor<T>(what: string, check: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
