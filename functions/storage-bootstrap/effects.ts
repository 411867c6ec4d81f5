import { createHash } from 'node:crypto';
import type { CloudEvent } from 'cloudevents';
import { EventTypes, buildEvent, clip, type StorageModelResult, type StorageStage } from '../../events/index.ts';
import type { Catalog, CatalogModel } from '../../runtime/catalog.ts';
import { readJobResult } from '../../runtime/jobs.ts';
import { ConflictError, type KubeObject } from '../../runtime/kube.ts';
import { Job, Pod, Resources, isPodReady, type InferenceService } from '../../runtime/resources.ts';
import { PROBE_PREFIX, S3Failure, createS3Port, s3ConfigFromSecret, type S3Port } from '../../runtime/s3.ts';
import type { StepDeps } from '../../runtime/step.ts';
import { KSERVE_ISVC_LABEL } from '../../runtime/labels.ts';
import { extractPredictions, podUrl, requestBody } from '../verify-endpoint/decide.ts';
import { probeAll } from '../verify-endpoint/effects.ts';
import {
  BootstrapRecord, decideModel, decideServing, decideStart, looksLikeModel, predictionsFit, probeRows, servedObject,
  type BootstrapTrigger, type JobView,
} from './decide.ts';
import { PLACEHOLDER_DEADLINE_SECONDS, STEP, placeholderJobManifest, placeholderJobName } from './manifests.ts';

// The effects of storage-bootstrap, in order (docs/storage.md "Bootstrap"): record the attempt, check connectivity,
// placeholders, reconcile, serving; record the outcome in the `storage-bootstrap-status` ConfigMap and answer with
// `storage.validated` or `storage.failed`. Each effect is idempotent (deterministic names, never-overwrite), so a
// redelivery or the next tick continues where a stopped function left off. The Secret is only read.

export const STATUS_CONFIGMAP = 'storage-bootstrap-status';
/** The predictor annotation this step changes to roll a predictor onto its new object (never model-release). */
export const BOOTSTRAP_ANNOTATION = 'mlops.dev/storage-bootstrap';
const DEFAULT_CONFIG_SECRET = 'model-storage-config';

export function s3Models(catalog: Catalog): CatalogModel[] {
  return catalog.models.filter((m) => m.enabled && m.storage.kind === 's3');
}

/** The storage Secret: the one S3 models name (the catalog default `model-storage-config`). */
export function configSecretName(catalog: Catalog): string {
  return s3Models(catalog)[0]?.storage.configSecret ?? catalog.models[0]?.storage.configSecret ?? DEFAULT_CONFIG_SECRET;
}

type ConfigMapObj = KubeObject & { data?: Record<string, string> };
type SecretObj = KubeObject & { data?: Record<string, string>; stringData?: Record<string, string> };

/** The record and the resourceVersion it was read at: every write is compare-and-swap against it. */
export interface RecordHandle { record: BootstrapRecord | undefined; resourceVersion: string | undefined }

export async function readRecord(deps: StepDeps): Promise<RecordHandle> {
  const cm = await deps.kube.get<ConfigMapObj>(Resources.configMap, STATUS_CONFIGMAP);
  const parsed = BootstrapRecord.safeParse(cm?.data ?? {});
  return { record: parsed.success ? parsed.data : undefined, resourceVersion: cm?.metadata?.resourceVersion };
}

/**
 * Replace the record only if nobody wrote it since it was read (two deliveries at once — a tick and a Job event —
 * must not overwrite each other's newer state): a ConflictError is retryable, the redelivery decides again.
 */
async function writeRecord(deps: StepDeps, handle: RecordHandle, record: BootstrapRecord): Promise<void> {
  const metadata = { name: STATUS_CONFIGMAP, labels: { 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/step': STEP } };
  if (handle.resourceVersion === undefined) {
    const created = await deps.kube.create<ConfigMapObj>(Resources.configMap, { metadata, data: { ...record } });
    if (!created.created) throw new ConflictError(`ConfigMap ${STATUS_CONFIGMAP} was created meanwhile`);
    handle.resourceVersion = created.object.metadata?.resourceVersion;
  } else {
    const replaced = await deps.kube.replace<ConfigMapObj>(Resources.configMap, { metadata: { ...metadata, resourceVersion: handle.resourceVersion }, data: { ...record } });
    handle.resourceVersion = replaced.metadata?.resourceVersion;
  }
  handle.record = record;
}

const sha12 = (text: string): string => text.slice(0, 12);
const parseUploaded = (text: string | undefined): Record<string, string> => {
  try { return text ? (JSON.parse(text) as Record<string, string>) : {}; } catch { return {}; }
};

class Stop extends Error {
  readonly stage: StorageStage;
  readonly reason: string;
  readonly extra: { bucket?: string; model?: string };
  constructor(stage: StorageStage, reason: string, message: string, extra: { bucket?: string; model?: string } = {}) {
    super(message);
    this.stage = stage;
    this.reason = reason;
    this.extra = extra;
  }
}

export interface BootstrapContext { traceparent?: string }

export async function runBootstrap(trigger: BootstrapTrigger, deps: StepDeps, ctx: BootstrapContext = {}): Promise<CloudEvent<unknown> | undefined> {
  const secretName = configSecretName(deps.catalog);
  const secret = await deps.kube.get<SecretObj>(Resources.secret, secretName);
  const handle = await readRecord(deps);
  const previous = handle.record;
  const now = deps.clock.now();
  const decision = decideStart(trigger, previous, secret?.metadata?.resourceVersion, now);
  if (decision.kind === 'skip') {
    deps.logger.debug({ trigger, reason: decision.reason }, 'storage bootstrap: nothing to do');
    return undefined;
  }
  const attempt = decision.attempt;
  const startedAt = decision.kind === 'start' ? now.toISOString() : previous?.startedAt ?? now.toISOString();
  const base: BootstrapRecord = {
    state: 'in-progress', attempt, startedAt,
    ...(secret?.metadata?.resourceVersion ? { secretVersion: secret.metadata.resourceVersion } : {}),
    ...(decision.kind === 'continue' && previous?.uploaded ? { uploaded: previous.uploaded } : {}),
  };
  if (decision.kind === 'start') {
    deps.logger.info({ trigger, why: decision.why, attempt }, 'storage bootstrap: starting');
    await writeRecord(deps, handle, base);
  }
  const trace = ctx.traceparent ? { traceparent: ctx.traceparent } : {};

  const failed = async (stop: Stop): Promise<CloudEvent<unknown> | undefined> => {
    const failedAt = deps.clock.now().toISOString();
    const message = clip(stop.message, 1000);
    await writeRecord(deps, handle, { ...base, state: 'failed', checkedAt: failedAt, stage: stop.stage, reason: stop.reason, message });
    deps.logger.warn({ stage: stop.stage, reason: stop.reason, attempt }, 'storage bootstrap failed');
    // One notification per distinct failure: a retry that fails the same way is recorded, not re-announced.
    if (previous?.state === 'failed' && previous.stage === stop.stage && previous.reason === stop.reason && decision.kind === 'start' && decision.why !== 'requested') return undefined;
    return buildEvent(EventTypes.storageFailed, {
      step: STEP, id: `storage-${attempt}.failed`, subject: 'storage',
      data: { stage: stop.stage, reason: stop.reason, message, failedAt, ...stop.extra }, ...(stop.extra.model ? { model: stop.extra.model } : {}), ...trace,
    });
  };

  const config = s3ConfigFromSecret(secret, secretName);
  if (!config.ok) return failed(new Stop('config', 'bad-config', config.reason));
  const port = createS3Port(config.config, { caBundlePath: deps.settings.s3CaBundlePath });
  try {
    const models = s3Models(deps.catalog);
    const bucketOf = (m: CatalogModel): string => m.storage.bucket ?? config.config.bucket;
    if (decision.kind === 'start') await checkConnectivity(port, [...new Set([config.config.bucket, ...models.map(bucketOf)])], attempt);

    // Placeholders: every served object that is missing gets one (through a staging object), none is overwritten.
    const uploaded = parseUploaded(base.uploaded);
    let pending = false;
    const isvcs = new Map<string, InferenceService & KubeObject>();
    for (const model of models) {
      const isvc = await deps.kube.get<InferenceService & KubeObject>(Resources.inferenceService, model.inferenceService);
      if (!isvc) throw new Stop('reconcile', 'no-inference-service', `${model.name}: InferenceService ${model.inferenceService} does not exist`, { model: model.name });
      isvcs.set(model.name, isvc);
      const served = servedObject(isvc.spec?.predictor?.model?.storageUri);
      const exists = served.ok ? await port.head(served.bucket, served.key) : undefined;
      const head = served.ok && exists ? await port.get(served.bucket, served.key, { start: 0, end: 1 }) : undefined;
      const job = served.ok && !exists ? await readPlaceholderJob(deps, model.name, attempt) : { state: 'none' as const };
      const step = decideModel({ model, served, object: exists ? { exists: true, head } : { exists: false }, job });
      if (!served.ok || step.kind === 'fail') {
        const f = step.kind === 'fail' ? step : { stage: 'reconcile' as const, reason: 'no-s3-storage-uri', message: '' };
        throw new Stop(f.stage, f.reason, f.message, { model: model.name, ...(served.ok ? { bucket: served.bucket } : {}) });
      }
      const staging = `${served.key}.staging-${attempt}`;
      if (step.kind === 'create-job') {
        const url = await port.presignPut(served.bucket, staging, PLACEHOLDER_DEADLINE_SECONDS + 300);
        await deps.kube.create(Resources.job, placeholderJobManifest(model, attempt, url));
        deps.logger.info({ model: model.name, job: placeholderJobName(model.name, attempt) }, 'placeholder Job created');
        pending = true;
      } else if (step.kind === 'wait') {
        pending = true;
      } else if (step.kind === 'promote-staging') {
        uploaded[model.name] = await promoteStaging(port, served.bucket, staging, served.key, step.sha256, step.bytes, model.name);
      }
      if (step.kind === 'promote-staging' || step.kind === 'object-ready') {
        // Staging objects of any attempt are garbage once the served object exists (a redelivery or a stopped
        // function may have left one): no partial upload stays behind.
        for (const left of await port.list(served.bucket, `${served.key}.staging-`)) await port.delete(served.bucket, left);
      }
    }
    if (pending) {
      await writeRecord(deps, handle, { ...base, uploaded: JSON.stringify(uploaded) });
      return undefined;
    }

    // Reconcile and serving check.
    const results: StorageModelResult[] = [];
    for (const model of models) {
      const isvc = isvcs.get(model.name) as InferenceService & KubeObject;
      const served = servedObject(isvc.spec?.predictor?.model?.storageUri);
      const annotation = isvc.spec?.predictor?.annotations?.[BOOTSTRAP_ANNOTATION];
      const ready = (isvc.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
      const mark = uploaded[model.name];
      const pods = await servingPods(deps, model.inferenceService, mark ?? (ready ? undefined : annotation));
      const step = decideServing({ model, ready, annotation, uploadedMark: mark, servingPods: pods.length }, attempt);
      if (step.kind === 'roll') {
        await deps.kube.mergePatch(Resources.inferenceService, model.inferenceService, { spec: { predictor: { annotations: { [BOOTSTRAP_ANNOTATION]: step.value } } } });
        deps.logger.info({ model: model.name, isvc: model.inferenceService }, 'predictor rolled onto its object');
        pending = true;
        continue;
      }
      if (step.kind === 'wait') { pending = true; continue; }
      const rows = probeRows(model.features.count);
      const outcomes = await probeAll(deps.fetch, pods.map((p) => ({ pod: p.name, url: p.url })), requestBody(rows, model.protocol), { attempts: 3 });
      for (const o of outcomes) {
        if (o.kind === 'transport') throw new Stop('serving', 'unreachable', `${model.name}: ${o.error}`, { model: model.name });
        if (o.status !== 200) throw new Stop('serving', 'http-error', `${model.name}: pod ${o.pod} answered HTTP ${o.status}: ${clip(JSON.stringify(o.body), 200)}`, { model: model.name });
        const got = extractPredictions(o.body, model.protocol);
        if (!got.ok) throw new Stop('serving', 'bad-prediction', `${model.name}: pod ${o.pod}: ${got.why}`, { model: model.name });
        const fit = predictionsFit(got.predictions, rows.length, model);
        if (!fit.ok) throw new Stop('serving', 'bad-prediction', `${model.name}: pod ${o.pod}: ${fit.why}`, { model: model.name });
      }
      results.push({ model: model.name, object: served.ok ? served.key : '', placeholder: mark ? 'uploaded' : 'existing', inferenceService: model.inferenceService, served: rows.length });
    }
    if (pending) {
      await writeRecord(deps, handle, { ...base, uploaded: JSON.stringify(uploaded) });
      return undefined;
    }
    const checkedAt = deps.clock.now().toISOString();
    await writeRecord(deps, handle, { ...base, state: 'validated', checkedAt, uploaded: JSON.stringify(uploaded), models: JSON.stringify(results) });
    deps.logger.info({ attempt, models: results.length }, 'storage validated');
    return buildEvent(EventTypes.storageValidated, {
      step: STEP, id: `storage-${attempt}.validated`, subject: 'storage',
      data: { bucket: config.config.bucket, endpointHost: new URL(config.config.endpoint).host, checkedAt, models: results }, ...trace,
    });
  } catch (err) {
    if (err instanceof Stop) return failed(err);
    if (err instanceof S3Failure) return failed(new Stop('connectivity', err.kind, err.message));
    throw err;
  } finally {
    port.close();
  }
}

/** Endpoint, bucket and credentials: put, get and delete a probe object in every bucket; the first failure stops. */
async function checkConnectivity(port: S3Port, buckets: string[], attempt: string): Promise<void> {
  for (const bucket of buckets) {
    const stop = (err: unknown): never => {
      const f = err instanceof S3Failure ? err : new S3Failure('other', String(err));
      throw new Stop('connectivity', f.kind, f.message, { bucket });
    };
    await port.headBucket(bucket).catch(stop);
    const key = `${PROBE_PREFIX}/${attempt}`;
    const body = Buffer.from(`model-lifecycle storage probe ${attempt}\n`);
    await port.put(bucket, key, body).catch(stop);
    try {
      const back = await port.get(bucket, key).catch(stop);
      if (!back || !back.equals(body)) throw new Stop('connectivity', 'read-mismatch', `GET s3://${bucket}/${key}: read back ${back ? `${back.length} other bytes` : 'nothing'}`, { bucket });
    } catch (err) {
      await port.delete(bucket, key).catch(() => undefined); // leave no probe behind
      throw err;
    }
    await port.delete(bucket, key).catch(stop);
  }
}

async function readPlaceholderJob(deps: StepDeps, model: string, attempt: string): Promise<JobView> {
  const raw = await deps.kube.get<KubeObject>(Resources.job, placeholderJobName(model, attempt));
  if (!raw) return { state: 'none' };
  const job = Job.safeParse(raw);
  if (!job.success) return { state: 'failed', message: 'the Job is malformed' };
  const result = await readJobResult(deps.kube, job.data);
  if (result.state === 'running') return { state: 'running' };
  const r = (result.result ?? {}) as { sha256?: unknown; bytes?: unknown; error?: unknown };
  if (!result.succeeded) return { state: 'failed', message: typeof r.error === 'string' ? r.error : result.problem ?? 'no result' };
  return {
    state: 'succeeded',
    ...(typeof r.sha256 === 'string' && /^[0-9a-f]{64}$/.test(r.sha256) ? { sha256: r.sha256 } : {}),
    ...(typeof r.bytes === 'number' && Number.isInteger(r.bytes) ? { bytes: r.bytes } : {}),
    ...(result.problem ? { problem: result.problem } : {}),
  };
}

/**
 * The staging object the Job uploaded → the served key, only if its bytes are what the Job reported (sha256 and
 * size) and a model, and the served key is still empty. Returns the mark its predictor is rolled with.
 */
async function promoteStaging(port: S3Port, bucket: string, staging: string, key: string, sha256: string, bytes: number, model: string): Promise<string> {
  const already = await port.head(bucket, key);
  if (already) {
    await port.delete(bucket, staging).catch(() => undefined);
    return sha12(sha256);
  }
  const data = await port.get(bucket, staging);
  const digest = data ? createHash('sha256').update(data).digest('hex') : '';
  if (!data || digest !== sha256 || data.length !== bytes || !looksLikeModel(data)) {
    await port.delete(bucket, staging).catch(() => undefined);
    throw new Stop('placeholder', 'checksum', `${model}: the uploaded placeholder s3://${bucket}/${staging} ${!data ? 'is missing' : digest !== sha256 || data.length !== bytes ? 'does not match the sha256/size the Job reported' : 'is not a model'}; removed, nothing served`, { model, bucket });
  }
  // If-None-Match: * — a store that supports conditional writes refuses to overwrite an object created meanwhile.
  await port.put(bucket, key, data, { ifNoneMatch: true });
  await port.delete(bucket, staging);
  return sha12(sha256);
}

interface ServingPod { name: string; url: string }

/** Ready, not terminating predictor pods (carrying `mark` in the bootstrap annotation when given). */
async function servingPods(deps: StepDeps, isvc: string, mark: string | undefined): Promise<ServingPod[]> {
  const model = s3Models(deps.catalog).find((m) => m.inferenceService === isvc);
  if (!model) return [];
  const items = await deps.kube.listAll<Pod & KubeObject>(Resources.pod, { labelSelector: `${KSERVE_ISVC_LABEL}=${isvc}` });
  const out: ServingPod[] = [];
  for (const raw of items) {
    const parsed = Pod.safeParse(raw);
    if (!parsed.success) continue;
    const p = parsed.data;
    const ip = p.status?.podIP;
    if (!isPodReady(p) || p.metadata.deletionTimestamp || !ip) continue;
    if (mark !== undefined && p.metadata.annotations?.[BOOTSTRAP_ANNOTATION] !== mark) continue;
    const port = (p.spec as { containers?: Array<{ ports?: Array<{ containerPort?: unknown }> }> } | undefined)?.containers?.[0]?.ports?.[0]?.containerPort;
    out.push({ name: p.metadata.name ?? '', url: podUrl({ name: p.metadata.name ?? '', serving: true, ip, port: typeof port === 'number' ? port : 8080 }, model) });
  }
  return out;
}
