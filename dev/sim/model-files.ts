// Writing the model.pkl a notebook would write: a real sklearn model (train_model.py) or a stand-in.
import { existsSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { OutputSpec } from '../../runtime/catalog.ts';
import { TRAIN_SCRIPT, pythonEnv, runProcess } from './python.ts';
import type { PythonChoice, RunningProcess } from './python.ts';
import { standinModelBytes } from './standin.ts';

export interface ModelFileSpec {
  model: string;
  features: number;
  output: OutputSpec;
  outPath: string;
  /** Write what a buggy notebook writes (a pickled dict) instead of a model. */
  bad?: boolean;
  /** Write a model that loads and predicts the right shape but is clearly worse (train_model.py --bad worse). */
  worse?: boolean;
}

export interface WrittenModel {
  path: string;
  /** True when a stand-in file was written because sklearn is not available. */
  simulated: boolean;
}

/** Keeps track of helper processes so `close()` can stop them. */
export type ProcessTracker = (p: RunningProcess) => void;

export async function writeModelFile(spec: ModelFileSpec, py: PythonChoice, track?: ProcessTracker): Promise<WrittenModel> {
  await mkdir(path.dirname(spec.outPath), { recursive: true });
  if (!py.sklearn) {
    const tmp = `${spec.outPath}.tmp-standin`;
    await writeFile(tmp, standinModelBytes({ model: spec.model, features: spec.features, output: spec.output, ...(spec.bad ? { bad: 'dict' as const } : {}) }));
    await rename(tmp, spec.outPath);
    return { path: spec.outPath, simulated: true };
  }
  const widthOrLabels = spec.output.kind === 'label' ? JSON.stringify(spec.output.labels) : String(spec.output.width);
  const args = [TRAIN_SCRIPT, String(spec.features), spec.output.kind, widthOrLabels, spec.outPath, ...(spec.bad ? ['--bad', 'dict'] : spec.worse ? ['--bad', 'worse'] : [])];
  const proc = runProcess(py.python, args, { env: pythonEnv(), timeoutMs: 120_000 });
  track?.(proc);
  const result = await proc.done;
  if (result.code !== 0) throw new Error(`train_model.py exited ${result.code ?? result.signal}: ${result.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return { path: spec.outPath, simulated: false };
}

/**
 * The reference data set the gate compares candidate and served release on (docs/gate.md), made like the
 * platform's synthetic data by train_model.py --reference. Needs sklearn's numpy; written once per PVC.
 */
export async function writeReferenceData(spec: { features: number; output: OutputSpec; outPath: string }, py: PythonChoice, track?: ProcessTracker): Promise<void> {
  if (existsSync(spec.outPath)) return;
  const widthOrLabels = spec.output.kind === 'label' ? JSON.stringify(spec.output.labels) : String(spec.output.width);
  const proc = runProcess(py.python, [TRAIN_SCRIPT, String(spec.features), spec.output.kind, widthOrLabels, spec.outPath, '--reference'], { env: pythonEnv(), timeoutMs: 120_000 });
  track?.(proc);
  const result = await proc.done;
  if (result.code !== 0) throw new Error(`train_model.py --reference exited ${result.code ?? result.signal}: ${result.stderr.trim().split('\n').slice(-3).join(' | ')}`);
}
