// Runs a config/jobs script the way its Job does (env in, JSON in the termination log) and parses the result.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PYTHON = '/usr/bin/python3';
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const JOBS_DIR = path.join(REPO, 'config/jobs');
export const TEST_JOBS_DIR = path.join(REPO, 'test/jobs');
export const MAX_RESULT_BYTES = 4096;

export type ScriptRun = {
  code: number | null;
  result: Record<string, unknown>;
  resultBytes: number;
  stdout: string;
  stderr: string;
};

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Spawns `/usr/bin/python3 [pythonArgs] config/jobs/<script>.py` with only PATH and the given env (no inherited
 * PYTHONPATH), as the Job's container would.
 */
export function runScript(script: string, env: Record<string, string>, pythonArgs: string[] = [], timeoutMs = 60_000): Promise<ScriptRun> {
  const logDir = tempDir('job-log-');
  const logPath = path.join(logDir, 'termination-log');
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [...pythonArgs, path.join(JOBS_DIR, `${script}.py`)], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', PYTHONDONTWRITEBYTECODE: '1', TERMINATION_LOG: logPath, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      removeDir(logDir);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        const text = readFileSync(logPath, 'utf8');
        const result = JSON.parse(text) as Record<string, unknown>;
        resolve({ code, result, resultBytes: Buffer.byteLength(text), stdout, stderr });
      } catch (err) {
        reject(new Error(`${script}.py left no JSON result (exit ${code}): ${String(err)}\n${stderr}`));
      } finally {
        removeDir(logDir);
      }
    });
  });
}
