// What answers predictions inside one simulated predictor pod: the model is loaded once, at pod start,
// like KServe's sklearn server (a model promoted later is not seen until the next rollout).
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { PREDICTOR_SCRIPT, pythonEnv } from './python.ts';
import type { PythonChoice } from './python.ts';
import { isStandin, parseStandin, standinPredict } from './standin.ts';

export type Prediction = number | string | number[];

export interface Backend {
  /** missing: no model file (KServe answers "does not exist"); error: the model could not be loaded. */
  kind: 'missing' | 'standin' | 'python' | 'error';
  description: string;
  predict(rows: number[][]): Promise<Prediction[]>;
  close(): Promise<void>;
}

const PREDICT_TIMEOUT_MS = 30_000;

function fixed(kind: Backend['kind'], description: string, predict: Backend['predict']): Backend {
  return { kind, description, predict, close: () => Promise.resolve() };
}

export async function loadBackend(modelFile: string, py: PythonChoice): Promise<Backend> {
  let head: Buffer;
  try {
    head = await readFile(modelFile);
  } catch {
    return fixed('missing', `no model at ${modelFile}`, () => Promise.reject(new Error('model missing')));
  }
  if (isStandin(head)) {
    const header = parseStandin(head);
    if (!header || header.bad) return fixed('error', 'stand-in model without predict', () => Promise.reject(new Error(`${header?.bad ?? 'stand-in'} has no predict method`)));
    return fixed('standin', `stand-in model (${header.output.kind})`, (rows) => {
      const width = rows[0]?.length;
      if (width !== undefined && width !== header.features) return Promise.reject(new Error(`X has ${width} features, but the model expects ${header.features}`));
      return Promise.resolve(standinPredict(header.output, rows));
    });
  }
  if (!py.sklearn) return fixed('error', 'sklearn not available', () => Promise.reject(new Error('cannot load model.pkl: sklearn is not available')));
  return startPythonBackend(modelFile, py.python);
}

function startPythonBackend(modelFile: string, python: string): Promise<Backend> {
  const child = spawn(python, [PREDICTOR_SCRIPT, modelFile], { env: pythonEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => { if (stderr.length < 100_000) stderr += c; });
  child.stdin.on('error', () => undefined); // a dead child's pipe: reported through 'exit'
  const pending = new Map<number, { resolve: (v: Prediction[]) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 1;
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => {
    const gone = (): void => {
      if (exited) return;
      exited = true;
    for (const p of pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(`model server exited: ${stderr.trim().split('\n').slice(-1)[0] ?? ''}`));
    }
      pending.clear();
      resolve();
    };
    child.on('exit', gone);
    child.on('error', gone);
  });
  const close = async (): Promise<void> => {
    if (!exited) {
      child.stdin.end();
      child.kill('SIGTERM');
    }
    await exitedPromise;
  };
  return new Promise<Backend>((resolveReady) => {
    let ready = false;
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      let msg: { ready?: boolean; type?: string; error?: string; id?: number; predictions?: Prediction[] };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return;
      }
      if (!ready) {
        ready = true;
        if (msg.ready) {
          resolveReady({
            kind: 'python',
            description: `sklearn ${msg.type ?? 'model'}`,
            close,
            predict(rows) {
              if (exited) return Promise.reject(new Error('model server is not running'));
              const id = nextId++;
              return new Promise<Prediction[]>((resolve, reject) => {
                const timer = setTimeout(() => {
                  pending.delete(id);
                  reject(new Error('prediction timed out'));
                }, PREDICT_TIMEOUT_MS);
                pending.set(id, { resolve, reject, timer });
                child.stdin.write(`${JSON.stringify({ id, instances: rows })}\n`);
              });
            },
          });
        } else {
          void close();
          const message = msg.error ?? 'model failed to load';
          resolveReady(fixed('error', message, () => Promise.reject(new Error(message))));
        }
        return;
      }
      if (typeof msg.id !== 'number') return;
      const waiter = pending.get(msg.id);
      if (!waiter) return;
      pending.delete(msg.id);
      clearTimeout(waiter.timer);
      if (msg.error !== undefined || !Array.isArray(msg.predictions)) waiter.reject(new Error(msg.error ?? 'no predictions'));
      else waiter.resolve(msg.predictions);
    });
    void exitedPromise.then(() => {
      if (!ready) {
        ready = true;
        const message = `model server exited before loading: ${stderr.trim().split('\n').slice(-1)[0] ?? ''}`;
        resolveReady(fixed('error', message, () => Promise.reject(new Error(message))));
      }
    });
  });
}
