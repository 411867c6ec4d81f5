// Measurements 1 and 2: cold start (spawn → first event answered, and RSS then) and warm per-event latency and
// throughput, for the bundled start-training on its skip path against a bare faas-js-runtime echo function.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import type { CloudEvent } from 'cloudevents';
import { EventTypes } from '../events/index.ts';
import { BENCH_NAMESPACE } from './cluster.ts';
import { binaryMessage, freePort, post, sleep } from './http.ts';
import { SKIP_MODEL, requestEvent, unhandledEvent } from './skip.ts';
import { quantile } from './stats.ts';

export { SKIP_MODEL, requestEvent };

/**
 * What is started: the bundled step (dist/start-training.js) on its skip path, the same bundle sent an event type
 * it does not handle (204, no API call: the HTTP host alone, a diagnostic), the bare echo (bench/echo/serve.js), or
 * the floor for the skip path: a bare faas-js-runtime function making the same two API reads (bench/reads/serve.js).
 */
export type Target = 'start-training' | 'start-training-unhandled' | 'echo' | 'reads';

/** Where the skip path's emulator listens (see startEmulatorProcess): the lock of SKIP_MODEL is held there. */
export interface SkipCluster {
  kubeconfigPath: string;
  namespace: string;
}

export interface TargetContext {
  root: string;
  cluster: SkipCluster;
  /** Log level of the bundled step (what a deployment runs with: info). */
  logLevel?: string;
}

export interface Started {
  target: Target;
  pid: number;
  url: string;
  /** ms from spawn to the first 2xx answer. */
  coldStartMs: number;
  /** VmRSS right after the first answer, in KiB. */
  rssKiB: number;
  /** The CloudEvent type of the first answer. */
  answeredType: string;
  /** Connection attempts before the first answer (refused ones included). */
  attempts: number;
  stop(): Promise<void>;
}

export function expectedType(target: Target): string {
  return target === 'echo' ? EventTypes.trainingRequested : target === 'start-training' || target === 'reads' ? EventTypes.trainingSkipped : '';
}

function eventFor(target: Target): CloudEvent<unknown> {
  return target === 'start-training-unhandled' ? unhandledEvent() : requestEvent();
}

/** Throws unless `answer` is what `target` answers: 200 with the expected CloudEvent type, or 204 when unhandled. */
export function verifyAnswer(target: Target, answer: { status: number; headers: http.IncomingHttpHeaders; body: string }): void {
  const want = expectedType(target);
  const type = String(answer.headers['ce-type'] ?? '');
  const ok = want === '' ? answer.status === 204 : answer.status === 200 && type === want;
  if (!ok) throw new Error(`${target} answered ${answer.status} ${type || '(no ce-type)'}, expected ${want ? `200 ${want}` : '204'}: ${answer.body.slice(0, 300)}`);
}

function commandFor(target: Target, ctx: TargetContext, port: number): { args: string[]; env: Record<string, string> } {
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PORT: String(port) };
  if (target === 'echo') return { args: [join(ctx.root, 'bench/echo/serve.js')], env: { ...base, LOG_LEVEL: 'warn' } };
  if (target === 'reads') return { args: [join(ctx.root, 'bench/reads/serve.js')], env: { ...base, KUBECONFIG: ctx.cluster.kubeconfigPath, NAMESPACE: ctx.cluster.namespace } };
  return {
    args: [join(ctx.root, 'dist/start-training.js')],
    env: {
      ...base, FUNCTION: 'start-training', KUBECONFIG: ctx.cluster.kubeconfigPath, NAMESPACE: ctx.cluster.namespace,
      // The skip path sends nothing to the sink; a real URL keeps settings valid.
      K_SINK: 'http://127.0.0.1:9/', MODEL_CATALOG: join(ctx.root, 'config/models.yaml'), LOG_LEVEL: ctx.logLevel ?? 'info',
    },
  };
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });
}

/** Starts bench/emulator-child.ts and waits for its kubeconfig line. */
export async function startEmulatorProcess(root: string, timeoutMs = 30_000): Promise<SkipCluster & { pid: number; close(): Promise<void> }> {
  const child = spawn(process.execPath, [join(root, 'bench/emulator-child.ts'), root], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => { err = (err + d.toString('utf8')).slice(-4000); });
  const kubeconfigPath = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`emulator did not start within ${timeoutMs} ms: ${err}`)); }, timeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      const match = /^kubeconfig: (.+)$/m.exec(out);
      if (match?.[1]) { clearTimeout(timer); resolve(match[1].trim()); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`emulator exited with ${code}: ${err}`)); });
  });
  return {
    kubeconfigPath, namespace: BENCH_NAMESPACE, pid: child.pid ?? 0,
    async close() { if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM'); await exited(child); },
  };
}

export async function readRssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match?.[1]) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/**
 * Spawns `target` on a fixed free port and POSTs a CloudEvent in a loop (2 ms apart while the port refuses)
 * until it answers 2xx; the time from spawn to that answer is the cold start. Leaves the process running.
 */
export async function startTarget(target: Target, ctx: TargetContext, timeoutMs = 30_000): Promise<Started> {
  const port = await freePort();
  const { args, env } = commandFor(target, ctx, port);
  const url = `http://127.0.0.1:${port}/`;
  const { headers, body } = binaryMessage(eventFor(target));
  let stderr = '';
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd: ctx.root, env, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString('utf8')).slice(-4000); });
  const stop = async (): Promise<void> => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); await exited(child); };
  let attempts = 0;
  try {
    for (;;) {
      attempts += 1;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${target} exited with ${child.exitCode} before answering: ${stderr.trim()}`);
      if (performance.now() - t0 > timeoutMs) throw new Error(`${target} did not answer within ${timeoutMs} ms: ${stderr.trim()}`);
      let answer;
      try {
        answer = await post(url, headers, body, false);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ECONNREFUSED' || code === 'ECONNRESET') { await sleep(2); continue; }
        throw err;
      }
      const coldStartMs = performance.now() - t0;
      const rssKiB = await readRssKiB(child.pid ?? 0);
      verifyAnswer(target, answer);
      const answeredType = String(answer.headers['ce-type'] ?? '');
      return { target, pid: child.pid ?? 0, url, coldStartMs, rssKiB, answeredType, attempts, stop };
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface ColdStartSample { target: Target; coldStartMs: number; rssKiB: number; attempts: number }

/** One cold start of `target` (the process is stopped afterwards). */
export async function coldStartOnce(target: Target, ctx: TargetContext): Promise<ColdStartSample> {
  const started = await startTarget(target, ctx);
  await started.stop();
  return { target, coldStartMs: started.coldStartMs, rssKiB: started.rssKiB, attempts: started.attempts };
}

export interface WarmSample {
  target: Target;
  sequential: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  concurrency: number;
  concurrentRequests: number;
  throughputPerSec: number;
}

/**
 * Warm round trips against a running target over keep-alive connections: `warmup` requests, then `sequential`
 * timed one at a time (p50/p99), then `concurrentRequests` at `concurrency` in flight (throughput).
 */
export async function warmOnce(target: Target, ctx: TargetContext, opts: { warmup: number; sequential: number; concurrency: number; concurrentRequests: number }): Promise<WarmSample> {
  const started = await startTarget(target, ctx);
  const check = (a: { status: number; headers: http.IncomingHttpHeaders; body: string }): void => verifyAnswer(target, a);
  const one = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const many = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
  try {
    for (let i = 0; i < opts.warmup; i++) {
      const m = binaryMessage(eventFor(target));
      check(await post(started.url, m.headers, m.body, one));
    }
    const latencies: number[] = [];
    for (let i = 0; i < opts.sequential; i++) {
      const m = binaryMessage(eventFor(target));
      const t = performance.now();
      const a = await post(started.url, m.headers, m.body, one);
      latencies.push(performance.now() - t);
      check(a);
    }
    latencies.sort((a, b) => a - b);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < opts.concurrentRequests) {
        next += 1;
        const m = binaryMessage(eventFor(target));
        check(await post(started.url, m.headers, m.body, many));
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
    const elapsed = performance.now() - t0;
    return {
      target, sequential: opts.sequential, p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99),
      meanMs: latencies.reduce((s, x) => s + x, 0) / latencies.length,
      concurrency: opts.concurrency, concurrentRequests: opts.concurrentRequests, throughputPerSec: opts.concurrentRequests / (elapsed / 1000),
    };
  } finally {
    one.destroy();
    many.destroy();
    await started.stop();
  }
}
