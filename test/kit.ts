// Test kit for function tests: a real emulator with our CRDs, a real kubeconfig, the real Kubernetes port,
// a recording HTTP sink standing in for the broker, and the step served over real HTTP.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudEvent, HTTP } from 'cloudevents';
import { loadYamlDir } from '../dev/manifests.ts';
import { startEmulator, type Emulator } from '../dev/emulator/index.ts';
import { loadCatalog, parseCatalog, type Catalog } from '../runtime/catalog.ts';
import { createDeps } from '../runtime/deps.ts';
import { serveStep, type RunningStep } from '../runtime/faas.ts';
import { createKubePort, type KubePort } from '../runtime/kube.ts';
import { silentLogger, type Logger } from '../runtime/logger.ts';
import { loadSettings } from '../runtime/settings.ts';
import type { Clock, StepDefinition, StepDeps } from '../runtime/step.ts';

export const NAMESPACE = 'mlops';


export interface TestCluster {
  emulator: Emulator;
  kubeconfigPath: string;
  kube: KubePort;
  dir: string;
  close(): Promise<void>;
}

export async function startTestCluster(opts: { rbac?: boolean } = {}): Promise<TestCluster> {
  const emulator = await startEmulator({ rbac: opts.rbac ?? false });
  await emulator.applyManifests([...(await loadYamlDir('config/crds')), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } }]);
  const dir = await mkdtemp(join(tmpdir(), 'mlops-test-'));
  const kubeconfigPath = join(dir, 'kubeconfig');
  await emulator.writeKubeconfig(kubeconfigPath, { namespace: NAMESPACE });
  const kube = createKubePort({ kubeconfigPath, namespace: NAMESPACE });
  return {
    emulator, kubeconfigPath, kube, dir,
    async close() { await emulator.close(); await rm(dir, { recursive: true, force: true }); },
  };
}

export interface RecordingSink {
  url: string;
  events: CloudEvent<unknown>[];
  /** Answer the next `n` deliveries with `status` (e.g. 503) before recording again. */
  failNext(n: number, status?: number): void;
  close(): Promise<void>;
}

export async function startRecordingSink(): Promise<RecordingSink> {
  const events: CloudEvent<unknown>[] = [];
  let failures = 0;
  let failStatus = 503;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (failures > 0) { failures--; res.writeHead(failStatus).end(); return; }
      const parsed = HTTP.toEvent({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      events.push((Array.isArray(parsed) ? parsed[0] : parsed) as CloudEvent<unknown>);
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    events,
    failNext(n, status = 503) { failures = n; failStatus = status; },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

export class ManualClock implements Clock {
  #now: Date;
  constructor(start = '2026-11-22T10:00:00.000Z') { this.#now = new Date(start); }
  now(): Date { return new Date(this.#now); }
  set(iso: string): void { this.#now = new Date(iso); }
  advance(ms: number): void { this.#now = new Date(this.#now.getTime() + ms); }
}

export interface ServedStep {
  url: string;
  deps: StepDeps;
  close(): Promise<void>;
}

export async function serveForTest(step: StepDefinition, opts: {
  cluster: TestCluster;
  sinkUrl?: string;
  catalog?: Catalog | string;
  env?: Record<string, string>;
  clock?: Clock;
  logger?: Logger;
  fetch?: typeof fetch;
}): Promise<ServedStep> {
  const settings = loadSettings({
    FUNCTION: step.name, NAMESPACE, KUBECONFIG: opts.cluster.kubeconfigPath, LOG_LEVEL: 'silent',
    ...(opts.sinkUrl ? { K_SINK: opts.sinkUrl } : {}), ...opts.env,
  });
  const catalog = typeof opts.catalog === 'string' ? parseCatalog(opts.catalog) : (opts.catalog ?? loadCatalog('config/models.yaml'));
  const deps = createDeps(settings, {
    catalog, kube: opts.cluster.kube, logger: opts.logger ?? silentLogger(),
    ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
  const running: RunningStep = await serveStep(step, deps, { port: 0 });
  return { url: running.url, deps, close: () => running.close() };
}

export interface PostResult {
  status: number;
  event?: CloudEvent<unknown>;
  body: string;
}

/** POST a CloudEvent in binary mode (as the broker does) and decode the reply. */
export async function postEvent(url: string, event: CloudEvent<unknown> | Record<string, unknown>): Promise<PostResult> {
  const ce = event instanceof CloudEvent ? event : new CloudEvent(event);
  const message = HTTP.binary(ce);
  const res = await fetch(url, { method: 'POST', headers: message.headers as Record<string, string>, body: message.body as string });
  const body = await res.text();
  const out: PostResult = { status: res.status, body };
  if (res.status === 200 && res.headers.get('ce-id')) {
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => { headers[k] = v; });
    out.event = HTTP.toEvent({ headers, body }) as CloudEvent<unknown>;
  }
  return out;
}

export async function postRaw(url: string, body: string | Buffer, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { method: 'POST', headers, body });
  return { status: res.status, body: await res.text() };
}
