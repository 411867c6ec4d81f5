// Finding a Python for the simulators, and running its helpers. Debian's /usr/bin/python3 has sklearn
// (python3-sklearn); `python3` on PATH may be another interpreter without it (docs/design.md, Local mode).
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SIM_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(SIM_DIR, '../..');
export const JOBS_DIR = path.join(REPO_ROOT, 'config/jobs');
export const TRAIN_SCRIPT = path.join(SIM_DIR, 'train_model.py');
export const PREDICTOR_SCRIPT = path.join(SIM_DIR, 'predictor.py');

/** The interpreter for stdlib-only scripts (copy.py, promote.py): works with or without sklearn. */
export function plainPython(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** Env for child Pythons: no inherited PYTHONPATH, no __pycache__ written into the repo. */
export function pythonEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp', PYTHONDONTWRITEBYTECODE: '1', ...extra };
}

function canImportSklearn(python: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(python, ['-c', 'import sklearn, joblib, numpy'], { env: pythonEnv(), timeout: 30_000 }, (err) => resolve(!err));
  });
}

let detected: Promise<string | undefined> | undefined;

/** The first of `$MLOPS_PYTHON`, /usr/bin/python3, python3 that imports sklearn, joblib and numpy (checked once). */
export function pythonWithSklearn(): Promise<string | undefined> {
  detected ??= (async () => {
    const candidates = [process.env['MLOPS_PYTHON'], '/usr/bin/python3', 'python3'].filter((c): c is string => !!c);
    for (const candidate of [...new Set(candidates)]) {
      if (await canImportSklearn(candidate)) return candidate;
    }
    return undefined;
  })();
  return detected;
}

export interface PythonChoice {
  /** Interpreter for every script the simulators run. */
  python: string;
  /** Whether `python` has sklearn: real models and predictions, else stand-ins. */
  sklearn: boolean;
}

/**
 * `sklearn: false` forces the stand-in paths (a fresh laptop); a given `python` is trusted to have sklearn
 * unless `sklearn` says otherwise.
 */
export async function choosePython(opts: { python?: string; sklearn?: boolean }): Promise<PythonChoice> {
  if (opts.sklearn === false) return { python: opts.python ?? plainPython(), sklearn: false };
  if (opts.python) return { python: opts.python, sklearn: opts.sklearn ?? true };
  const found = await pythonWithSklearn();
  return found ? { python: found, sklearn: true } : { python: plainPython(), sklearn: false };
}

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunningProcess {
  done: Promise<ProcessResult & { timedOut: boolean }>;
  kill(): void;
}

/** Spawns a process, collecting its output; `timeoutMs` kills it (SIGKILL) and reports timedOut. */
export function runProcess(command: string, args: string[], opts: { env: Record<string, string>; timeoutMs?: number; cwd?: string }): RunningProcess {
  const child = spawn(command, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout.setEncoding('utf8').on('data', (c: string) => { if (stdout.length < 1_000_000) stdout += c; });
  child.stderr.setEncoding('utf8').on('data', (c: string) => { if (stderr.length < 1_000_000) stderr += c; });
  const timer = opts.timeoutMs !== undefined ? setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs) : undefined;
  const done = new Promise<ProcessResult & { timedOut: boolean }>((resolve) => {
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      resolve({ code: 127, signal: null, stdout, stderr: `${stderr}${err.message}\n`, timedOut });
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
  return { done, kill: () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); } };
}
