// The whole system on one machine (docs/design.md, Local mode): the Kubernetes API emulator with RBAC from the
// rendered Roles (one token per function ServiceAccount), every function over HTTP through the real
// client-node, the local broker loaded with the rendered Triggers, PingSources, ApiServerSources and the
// SinkBinding, and the simulated NVJ operator, Job runner and KServe predictor.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CloudEvent } from 'cloudevents';
import { startBroker, type Broker, type DeliveryRecord } from './broker/index.ts';
import { apiFaultRules, crashing, type ChaosOptions, type CrashCounter } from './chaos.ts';
import { prng } from './emulator/faults.ts';
import { startEmulator, type ClusterProfile, type Emulator, type KubeVersion } from './emulator/index.ts';
import { knativeCrds, localInstall, readyServices } from './install.ts';
import { loadYamlDir } from './manifests.ts';
import { startLocalChannels } from './notify-sinks.ts';
import { startLocalS3, type LocalS3 } from './s3/index.ts';
import { STORAGE_CONFIG_LABEL } from '../runtime/storage-config.ts';
import { startApiServerSources, startPingSources, watchViaKubeconfig, type ApiServerFaults, type ApiServerSources, type PingSources } from './sources/index.ts';
import { Scenarios, choosePython, getScenario, scenarioCatalog, startSimulators, type ExpectedRun, type KServeRolloutOptions, type Scenario } from './sim/index.ts';
import { ARGOCD_NAMESPACE, BROKER_NAME, renderManifests } from '../config/render.ts';
import { STEPS, type StepName } from '../functions/registry.ts';
import type { Catalog } from '../runtime/catalog.ts';
import type { StepDeclaration } from '../runtime/declare.ts';
import { createDeps } from '../runtime/deps.ts';
import { serveStep, type RunningStep } from '../runtime/faas.ts';
import { createKubePort } from '../runtime/kube.ts';
import { pino, type DestinationStream } from 'pino';
import { createLogger, silentLogger, type Logger } from '../runtime/logger.ts';
import { loadSettings, secretValues } from '../runtime/settings.ts';
import type { Clock } from '../runtime/step.ts';

export const DEV_NAMESPACE = 'model-lifecycle';

/** Local stand-ins for the secrets `mlops dev` makes up when the environment does not set them. */
const MADE_UP_SECRETS = {
  DRIFT_INTAKE_TOKEN: 'dev-drift-token',
  GITHUB_WEBHOOK_SECRET: 'dev-github-secret',
} as const;

export interface LocalOptions {
  catalog: Catalog;
  scenario: string;
  env: Readonly<Record<string, string | undefined>>;
  stateDir?: string;
  clock?: Clock;
  /** Logger for the functions (silent by default: the timeline is the readable output). */
  logger?: Logger;
  /**
   * Give every function its own production logger (redaction and secret censoring as `createDeps` builds it)
   * writing JSON lines here, at `LOG_LEVEL` (default debug). Wins over `logger`.
   */
  logDestination?: DestinationStream;
  onRecord?: (r: DeliveryRecord) => void;
  /** Multiplier on broker backoff delays (default 0.01: Knative-sized delays, run fast). */
  timeScale?: number;
  /** Enforce the rendered Roles (default true). */
  rbac?: boolean;
  /** Simulated controller step delay (default 0). */
  delayMs?: number;
  /** What notify sent to the local Slack/SMTP stand-ins (started when the environment names none). */
  onNotification?: (channel: 'slack' | 'email', summary: string) => void;
  /** Deliver every event this many times (at-least-once; default 1). */
  deliveries?: number;
  /** Fire the watchdog PingSource this often (seconds) besides its cron schedule; default: only the schedule. */
  tickSeconds?: number;
  /** `test` makes the Job runner run the real gate script even without sklearn (it then fails, as it should). */
  simulatorMode?: 'dev' | 'test';
  /** What the emulated cluster enforces (docs/openshift.md); default `openshift`, the platform we target. */
  profile?: ClusterProfile;
  /** Kubernetes version the emulator and its Job controller behave as (default the newest). */
  kubeVersion?: KubeVersion;
  /** KServe rollout emulation: raw|serverless, drain, ready delay, one restart (docs/verification.md). */
  rollout?: KServeRolloutOptions;
  /** API faults, steps stopping dead between effects, events delivered 1..N times (dev/chaos.ts). */
  chaos?: ChaosOptions;
  /** Lossy local ApiServerSource: dropped, coalesced, reordered deliveries (dev/sources/apiserver.ts). */
  apiServerFaults?: ApiServerFaults;
  /** The steps to run, rendered and wired as `mlops render` would (default: every step of functions/registry.ts). */
  steps?: readonly StepDeclaration[];
  /** Local S3 server setup: buckets whose policy allows reads only (emulated, dev/s3/index.ts). */
  s3?: { readOnlyBuckets?: string[] };
}

/** The bucket `mlops dev` creates and names in `model-storage-config` (config/examples/secrets-example.yaml). */
export const DEV_BUCKET = 'model-storage';

export interface Local {
  emulator: Emulator;
  broker: Broker;
  kubeconfigPath: string;
  steps: Record<StepName, RunningStep>;
  pings: PingSources;
  apiSources: ApiServerSources;
  stateDir: string;
  /** Terminal phase and event types per model for one run of each, as the scenario scripts them. */
  expected: Record<string, ExpectedRun>;
  secrets: Record<string, string>;
  /** How often a step was stopped dead by `chaos.crashPercent`. */
  crashes: CrashCounter;
  /** The local S3 server (its credentials are also in `<stateDir>/s3.env` and the `model-storage-config` Secret). */
  s3: LocalS3;
  /** The bucket `model-storage-config` names. */
  bucket: string;
  close(): Promise<void>;
}

/** `happy` (the default): every model as the catalog says (CPU and GPU paths), all healthy. */
export function resolveScenario(name: string): Scenario {
  if (name === 'happy') return { ...Scenarios['happy-cpu'], description: 'every model trains with its catalog profile, passes the gate and is verified', profile: undefined };
  return getScenario(name);
}

export async function startLocal(opts: LocalOptions): Promise<Local> {
  const scenario = resolveScenario(opts.scenario);
  // A scenario that pins the profile (happy-cpu, happy-gpu) runs every model that way.
  const pinned: Catalog = scenario.profile ? { ...opts.catalog, models: opts.catalog.models.map((m) => ({ ...m, profile: scenario.profile as 'cpu' | 'gpu' })) } : opts.catalog;
  // Whether this machine trains real models: without sklearn the gate cannot compare with the served release.
  const sklearn = opts.env.MLOPS_NO_SKLEARN === '1' ? false : (await choosePython({})).sklearn;
  const catalog = scenarioCatalog(scenario, pinned, { sklearn });
  const stateDir = opts.stateDir ?? await mkdtemp(join(tmpdir(), 'mlops-dev-'));
  await mkdir(stateDir, { recursive: true });
  const rendered = renderManifests(catalog, { namespace: DEV_NAMESPACE, image: 'local', ...(opts.steps ? { steps: opts.steps } : {}) });
  const emulator = await startEmulator({ rbac: opts.rbac ?? true, profile: opts.profile ?? 'openshift', ...(opts.kubeVersion ? { kubeVersion: opts.kubeVersion } : {}) });
  try {
    return await wire(emulator, opts, catalog, scenario, stateDir, rendered);
  } catch (err) {
    await emulator.close();
    throw err;
  }
}

async function wire(emulator: Emulator, opts: LocalOptions, catalog: Catalog, scenario: Scenario, stateDir: string, rendered: Record<string, object[]>): Promise<Local> {
  const ns = DEV_NAMESPACE;
  const all = Object.values(rendered).flat();
  const ofKind = (kind: string): object[] => all.filter((o) => (o as { kind?: string }).kind === kind);
  const namespace = (name: string): object => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  await emulator.applyManifests([...(await loadYamlDir('config/crds')), ...knativeCrds(), namespace(ns), namespace(ARGOCD_NAMESPACE)]);
  await emulator.applyManifests([...(rendered['rbac/roles.yaml'] ?? []), ...(rendered['configmaps.yaml'] ?? []), ...(rendered['networkpolicies.yaml'] ?? [])]);
  const kubeconfigPath = join(stateDir, 'kubeconfig');
  await emulator.writeKubeconfig(kubeconfigPath, { namespace: ns });

  const closers: Array<() => Promise<void> | void> = [];
  // Channels the environment does not configure get local stand-ins, so notifications show up in the timeline.
  const channels = opts.onNotification
    ? await startLocalChannels({ slack: !opts.env.SLACK_WEBHOOK_URL, smtp: !opts.env.SMTP_URL, onMessage: opts.onNotification })
    : undefined;
  if (channels) closers.push(() => channels.close());
  const secrets: Record<string, string> = {};
  const declared = opts.steps ?? STEPS;
  // The secrets the steps declare: from the environment, the local channels, or made up.
  const secretKeys = [...new Set(declared.flatMap((s) => s.secrets))];
  for (const key of secretKeys) {
    const value = opts.env[key] ?? channels?.env[key] ?? (Object.hasOwn(MADE_UP_SECRETS, key) ? MADE_UP_SECRETS[key as keyof typeof MADE_UP_SECRETS] : undefined);
    if (value) secrets[key] = value;
  }

  // Chaos (dev/chaos.ts): one seeded PRNG for delivery counts and crashes; the API faults have their own.
  const chaos = opts.chaos;
  const random = prng(chaos?.seed ?? 1);
  const crashes: CrashCounter = { crashes: 0 };
  // Broker first (functions need K_SINK), subscribers resolved lazily once the steps listen.
  const urls = new Map<string, string>();
  const brokerManifest = ofKind('Broker')[0] as { spec?: { delivery?: object } } | undefined;
  const broker = await startBroker({
    name: BROKER_NAME,
    namespace: ns,
    triggers: ofKind('Trigger'),
    ...(brokerManifest?.spec?.delivery ? { brokerDelivery: brokerManifest.spec.delivery as never } : {}),
    resolve: (ref) => (ref.kind === 'Service' ? urls.get(ref.name) : ref.kind === 'Broker' ? undefined : undefined),
    timeScale: opts.timeScale ?? 0.01,
    ...(opts.deliveries ? { deliveries: opts.deliveries } : {}),
    ...(chaos?.maxDeliveries ? { deliveryCount: () => 1 + Math.floor(random() * (chaos.maxDeliveries ?? 1)) } : {}),
    ...(opts.onRecord ? { onRecord: opts.onRecord } : {}),
  });
  closers.push(() => broker.close());
  // A real S3-protocol server on loopback with fresh credentials; they go into the storage Secret (as External
  // Secrets would put them there) and <state>/s3.env, nowhere else.
  const bucket = DEV_BUCKET;
  const buckets = [...new Set([bucket, ...catalog.models.flatMap((m) => (m.storage.kind === 's3' && m.storage.bucket ? [m.storage.bucket] : []))])];
  const s3 = await startLocalS3({
    directory: join(stateDir, 's3'), buckets,
    credentials: { accessKeyId: `MLOPSDEV${randomBytes(6).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(24).toString('base64url') },
    ...(opts.s3?.readOnlyBuckets ? { readOnlyBuckets: opts.s3.readOnlyBuckets } : {}),
  });
  closers.push(() => s3.close());
  await writeFile(join(stateDir, 's3.env'), Object.entries(s3.env(bucket)).map(([k, v]) => `${k}=${v}\n`).join(''), { mode: 0o600 });
  // What the cluster of a real install holds besides our Roles: Knative objects, volumes, secrets (mlops doctor reads them).
  const installed = localInstall({ catalog, namespace: ns, rendered, brokerUrl: broker.url, secrets, storageConfig: s3.env(bucket) });
  // The storage Secret comes last (below), once the simulated KServe has created the InferenceServices, as on a
  // cluster where they exist before External Secrets fills the Secret: storage-bootstrap starts on its creation.
  const isStorageSecret = (o: object): boolean => (o as { kind?: string; metadata?: { labels?: Record<string, string> } }).kind === 'Secret' && !!(o as { metadata?: { labels?: Record<string, string> } }).metadata?.labels?.[STORAGE_CONFIG_LABEL];
  await emulator.applyManifests(installed.filter((o) => !isStorageSecret(o)));

  const steps = {} as Record<StepName, RunningStep>;
  for (const { name, load } of declared) {
    const token = emulator.issueServiceAccountToken(ns, `mlops-${name}`);
    const kubeconfig = join(stateDir, `kubeconfig-${name}`);
    await emulator.writeKubeconfig(kubeconfig, { token, namespace: ns });
    const settings = loadSettings({
      ...secrets, FUNCTION: name, NAMESPACE: ns, KUBECONFIG: kubeconfig, K_SINK: broker.url, MLOPS_MODE: 'dev', LOG_LEVEL: opts.env.LOG_LEVEL ?? 'info',
      // The reconcile's head start for the event path follows the local tick (30 s on a cluster).
      ...(opts.tickSeconds ? { RECONCILE_GRACE_SECONDS: String(Math.max(1, Math.min(30, Math.round(opts.tickSeconds)))) } : {}),
    }, secretKeys);
    const logger = opts.logDestination
      ? createLogger({ name, level: opts.env.LOG_LEVEL ?? 'debug', secrets: secretValues(settings), destination: opts.logDestination })
      : opts.logger ? opts.logger.child({ step: name }) : silentLogger();
    let deps = createDeps(settings, {
      catalog, logger, kube: createKubePort({ kubeconfigPath: kubeconfig, namespace: ns }),
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
    if (chaos?.crashPercent) deps = { ...deps, ...crashing(name, deps.kube, deps.sink, chaos.crashPercent, random, crashes) };
    const step = await load();
    const running = await serveStep(step, deps, { port: 0 });
    urls.set(name, running.url);
    (steps as Record<string, RunningStep>)[name] = running;
    closers.push(() => running.close());
  }

  await emulator.applyManifests(readyServices(rendered, urls));
  if (chaos?.apiFaultsPercent) {
    emulator.faults.reseed(chaos.seed);
    emulator.faults.set(apiFaultRules(chaos.apiFaultsPercent, `system:serviceaccount:${ns}:mlops-`));
  }

  const sinkToBroker = (ce: CloudEvent<unknown>): Promise<void> => broker.send(ce);
  const watcherToken = emulator.issueServiceAccountToken(ns, 'mlops-apiserversource');
  const watcherConfig = join(stateDir, 'kubeconfig-apiserversource');
  await emulator.writeKubeconfig(watcherConfig, { token: watcherToken, namespace: ns });
  const apiSources = await startApiServerSources({ sources: ofKind('ApiServerSource'), sink: sinkToBroker, watch: watchViaKubeconfig(watcherConfig), ...(opts.apiServerFaults ? { faults: opts.apiServerFaults } : {}) });
  closers.push(() => apiSources.stop());

  const sims = await startSimulators({
    store: emulator.store, stateDir, namespace: ns, catalog, scenario, mode: 'dev',
    kubeVersion: emulator.kubeVersion,
    // The Job controller's pod creates go through Pod Security like any API write (docs/openshift.md).
    admitPod: (pod) => emulator.admission.validatePodCreate(ns, pod),
    ...(opts.delayMs !== undefined ? { delayMs: opts.delayMs } : {}),
    ...(opts.simulatorMode ? { mode: opts.simulatorMode } : {}),
    ...(opts.rollout ? { rollout: opts.rollout } : {}),
    // Behave as on a laptop without Debian's python3-sklearn (stand-in model, gate report marked simulated).
    ...(opts.env.MLOPS_NO_SKLEARN === '1' ? { sklearn: false } : {}),
    s3: { bucket, objectFile: (b, key) => s3.objectFile(b, key) },
  });
  closers.push(() => sims.close());
  await emulator.applyManifests(installed.filter(isStorageSecret));
  // Schedules and watchdog ticks start runs (catch-ups too) only once the simulated cluster is as the scenario
  // sets it up: a run gated before the seeded release is served would compare with nothing.
  const pings = startPingSources({ sources: ofKind('PingSource'), sink: sinkToBroker, ...(opts.clock ? { now: () => opts.clock!.now() } : {}) });
  closers.push(() => pings.stop());
  if (opts.tickSeconds) {
    const tick = setInterval(() => { pings.fireNow(`${ns}/watchdog-tick`).catch(() => undefined); }, opts.tickSeconds * 1000);
    closers.push(() => clearInterval(tick));
  }

  return {
    emulator, broker, kubeconfigPath, steps, pings, apiSources, stateDir, expected: sims.expected, secrets, crashes, s3, bucket,
    async close() {
      for (const close of closers.reverse()) {
        try { await close(); } catch { /* keep closing the rest */ }
      }
      await emulator.close();
    },
  };
}

export function devLogger(level: string, secrets: Record<string, string>): Logger {
  const settings = loadSettings({ ...secrets, LOG_LEVEL: level }, Object.keys(secrets));
  // stderr: stdout carries the timeline.
  return createLogger({ name: 'mlops-dev', level: settings.logLevel, secrets: secretValues(settings), destination: pino.destination(2) });
}
