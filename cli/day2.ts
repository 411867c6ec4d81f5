import { KubeConfig } from '@kubernetes/client-node';
import { HTTP } from 'cloudevents';
import { EventTypes, buildEvent } from '../events/index.ts';
import { CLI_SENDER } from '../functions/start-training/policy.ts';
import { acquireLock } from '../runtime/lock.ts';
import { loadCatalog, findModel, type Catalog, type CatalogModel } from '../runtime/catalog.ts';
import {
  ModelControlsData, controlsLabels, controlsManifest, controlsNameFor, parseControls, pausedText, pinnedText,
  type ControlsConfigMap, type ModelControls,
} from '../runtime/controls.ts';
import { createKubePort, type KubeObject, type KubePort } from '../runtime/kube.ts';
import { Annotations, Labels, MANAGER, lockNameFor, runNameFor } from '../runtime/labels.ts';
import { isServingRun } from '../runtime/modelrun.ts';
import { Resources, type InferenceService, type ModelRun } from '../runtime/resources.ts';
import { openKubeApi } from './kubeapi.ts';

// `mlops pause|resume MODEL`, `mlops pin|unpin MODEL [RELEASE]` (docs/day2.md): the model's day-2 controls, one
// ConfigMap per model written with the user's own kubeconfig, so the cluster's RBAC decides who may (see
// config/examples/oncall-roles.yaml) and the API server's audit log says who did.

type Env = Readonly<Record<string, string | undefined>>;

export interface ControlOptions {
  env: Env;
  namespace?: string | undefined;
  catalogPath: string;
  /** The catalog itself (mlops dev passes its own, with shortened deadlines); else read from catalogPath. */
  catalog?: Catalog;
  write?: (text: string) => void;
  writeErr?: (text: string) => void;
  now?: Date;
}

export interface CliContext {
  kube: KubePort;
  catalog: Catalog;
  model: CatalogModel;
  who: string;
  now: Date;
  write: (text: string) => void;
}

class UsageError extends Error {}

/**
 * Who the user is, as the API server sees them: a SelfSubjectReview (`kubectl auth whoami`), else the kubeconfig
 * context's user name (servers before 1.28, or one that refuses the review).
 */
export async function whoAmI(kubeconfigPath: string | undefined): Promise<string> {
  try {
    const api = openKubeApi(kubeconfigPath);
    const r = await api.request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
    const name = (r.body as { status?: { userInfo?: { username?: unknown } } } | undefined)?.status?.userInfo?.username;
    if (r.status === 201 || r.status === 200) if (typeof name === 'string' && name.length > 0) return name;
  } catch { /* fall back to the kubeconfig */ }
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromDefault();
  return kc.getCurrentUser()?.name ?? 'unknown';
}

export async function cliContext(modelName: string | undefined, opts: ControlOptions): Promise<CliContext> {
  if (!modelName) throw new UsageError('MODEL is required');
  const catalog = opts.catalog ?? loadCatalog(opts.catalogPath);
  const model = findModel(catalog, modelName);
  if (!model) throw new UsageError(`unknown model "${modelName}": not in the catalog ${opts.catalogPath} (models: ${catalog.models.map((m) => m.name).join(', ')})`);
  const kube = createKubePort({ kubeconfigPath: opts.env.KUBECONFIG, namespace: opts.namespace ?? opts.env.NAMESPACE });
  return {
    kube, catalog, model, who: await whoAmI(opts.env.KUBECONFIG), now: opts.now ?? new Date(),
    write: opts.write ?? ((t: string) => { process.stdout.write(t); }),
  };
}

async function readControlsMap(kube: KubePort, model: string): Promise<ControlsConfigMap | undefined> {
  return kube.get<ControlsConfigMap>(Resources.configMap, controlsNameFor(model));
}

/**
 * Apply `change` to the model's controls data and write it back: create when absent, else a replace on the read
 * resourceVersion (two people pausing at once: one wins, the other is told to retry).
 */
async function writeControls(kube: KubePort, model: string, change: (data: ModelControlsData) => ModelControlsData): Promise<ModelControls> {
  const existing = await readControlsMap(kube, model);
  const parsed = ModelControlsData.safeParse(existing?.data ?? {});
  const before: ModelControlsData = parsed.success ? parsed.data : {};
  const data = ModelControlsData.parse(change({ ...before }));
  const manifest = controlsManifest(model, data);
  if (!existing) {
    const created = await kube.create(Resources.configMap, manifest);
    if (!created.created) throw new Error(`ConfigMap ${controlsNameFor(model)} was created meanwhile by someone else: run the command again`);
  } else {
    const meta = existing.metadata ?? {};
    await kube.replace<ControlsConfigMap>(Resources.configMap, {
      ...manifest,
      metadata: { ...meta, labels: { ...meta.labels, ...controlsLabels(model, data) } },
    });
  }
  return parseControls(manifest.data);
}

const drop = (data: ModelControlsData, keys: readonly string[]): ModelControlsData => Object.fromEntries(Object.entries(data).filter(([k]) => !keys.includes(k)));

export async function pause(ctx: CliContext, reason: string | undefined): Promise<number> {
  if (reason !== undefined && reason.length > 1024) throw new UsageError('--reason is at most 1024 characters');
  const c = await writeControls(ctx.kube, ctx.model.name, (d) => ({
    ...drop(d, ['reason']), paused: 'true', pausedBy: ctx.who, pausedAt: ctx.now.toISOString(), ...(reason ? { reason } : {}),
  }));
  ctx.write(`${ctx.model.name} ${c.paused ? pausedText(c.paused) : 'paused'}: schedule, drift, git, pipeline and catch-up requests are skipped until \`mlops resume ${ctx.model.name}\`\n`);
  return 0;
}

export async function resume(ctx: CliContext): Promise<number> {
  const before = parseControls((await readControlsMap(ctx.kube, ctx.model.name))?.data);
  if (!before.paused && !before.invalid) { ctx.write(`${ctx.model.name} is not paused\n`); return 0; }
  await writeControls(ctx.kube, ctx.model.name, (d) => ({ ...drop(d, ['pausedBy', 'pausedAt', 'reason']), paused: 'false' }));
  ctx.write(`${ctx.model.name} resumed by ${ctx.who}${before.paused ? ` (was ${pausedText(before.paused)})` : ''}\n`);
  return 0;
}

/** The release the model's InferenceService serves (its predictor annotation), else the newest serving run's. */
export async function servedRelease(kube: KubePort, model: CatalogModel): Promise<string | undefined> {
  const isvc = await kube.get<InferenceService & KubeObject>(Resources.inferenceService, model.inferenceService);
  const annotated = isvc?.spec?.predictor?.annotations?.[Annotations.modelRelease];
  if (annotated) return annotated;
  const runs = await kube.listAll<ModelRun & KubeObject>(Resources.modelRun, { labelSelector: `${Labels.model}=${model.name}` });
  const served = runs.filter(isServingRun).sort((a, b) => new Date(a.status?.finishedAt ?? 0).getTime() - new Date(b.status?.finishedAt ?? 0).getTime()).at(-1);
  return served?.status?.release?.promoted ?? served?.metadata.name;
}

export async function pin(ctx: CliContext, release: string | undefined): Promise<number> {
  const served = await servedRelease(ctx.kube, ctx.model);
  const target = release ?? served;
  if (!target) throw new UsageError(`no release of ${ctx.model.name} is served yet: name one (mlops pin ${ctx.model.name} RELEASE)`);
  if (!ModelControlsData.shape.pinnedRelease.safeParse(target).success) throw new UsageError(`"${target}" is not a release name (a run name like ${ctx.model.name}-0123456789)`);
  if (target !== served) {
    const run = await ctx.kube.get<ModelRun & KubeObject>(Resources.modelRun, target);
    if (run?.spec.model !== ctx.model.name) throw new UsageError(`${target} is not a release of ${ctx.model.name} (no such run of it; served: ${served ?? 'none'})`);
  }
  const c = await writeControls(ctx.kube, ctx.model.name, (d) => ({ ...d, pinnedRelease: target, pinnedBy: ctx.who, pinnedAt: ctx.now.toISOString() }));
  ctx.write(`${ctx.model.name}: ${c.pinned ? pinnedText(c.pinned) : `release ${target} pinned`}; runs train and gate but nothing is promoted until \`mlops unpin ${ctx.model.name}\`\n`);
  if (served !== target) ctx.write(`note: ${ctx.model.name} serves ${served ?? 'no release'}, not ${target}; \`mlops rollback ${ctx.model.name} --to ${target}\` serves it\n`);
  return 0;
}

export async function unpin(ctx: CliContext): Promise<number> {
  const before = parseControls((await readControlsMap(ctx.kube, ctx.model.name))?.data);
  if (!before.pinned) { ctx.write(`${ctx.model.name} is not pinned\n`); return 0; }
  await writeControls(ctx.kube, ctx.model.name, (d) => drop(d, ['pinnedRelease', 'pinnedBy', 'pinnedAt']));
  ctx.write(`${ctx.model.name} unpinned by ${ctx.who} (was ${pinnedText(before.pinned)}); the next approved run is promoted\n`);
  return 0;
}

/** Runs one day-2 command; a usage problem exits 2 with the reason, an API failure 1. */
export async function runControl(command: 'pause' | 'resume' | 'pin' | 'unpin', args: { model?: string | undefined; release?: string | undefined; reason?: string | undefined }, opts: ControlOptions): Promise<number> {
  try {
    const ctx = await cliContext(args.model, opts);
    switch (command) {
      case 'pause': return await pause(ctx, args.reason);
      case 'resume': return await resume(ctx);
      case 'pin': return await pin(ctx, args.release);
      case 'unpin': return await unpin(ctx);
    }
  } catch (err) {
    process.stderr.write(`mlops ${command}: ${(err as Error).message}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

export { UsageError };

// ---- mlops rollback MODEL [--to RELEASE] [--force]

export interface RollbackPlan {
  release: string;
  served: string | undefined;
  /** Why the rollback may not go ahead without --force (empty: it may). */
  refusals: string[];
}

type Run = ModelRun & KubeObject;
const promotedAt = (r: Run): number => new Date(r.status?.steps?.promote?.finished ?? r.status?.finishedAt ?? r.metadata.creationTimestamp ?? 0).getTime();

/**
 * Which release to serve again and whether our records allow it (pure, from the model's runs): by default the one
 * the served release replaced. Kept = among the newest `releasesKept` releases promoted (promote.py keeps those on
 * the volume, never pruning the served one); approved = the run that trained it has an approved gate record and
 * its verification never failed. The promote Job checks the volume itself: a release that is not there fails it.
 */
export function planRollback(model: CatalogModel, runs: readonly Run[], served: string | undefined, to: string | undefined, controls: ModelControls): RollbackPlan | { error: string } {
  const mine = runs.filter((r) => r.spec.model === model.name);
  const promoted = mine.filter((r) => r.status?.release?.promoted && r.status.steps?.promote?.outcome === 'promoted').sort((a, b) => promotedAt(b) - promotedAt(a));
  let release = to;
  if (!release) {
    const current = promoted.find((r) => r.status?.release?.promoted === served);
    release = current?.status?.release?.replaced ?? undefined;
    if (!release) return { error: `no release to go back to: ${served ?? 'nothing'} is served and replaced none on record; name one with --to RELEASE` };
  }
  if (!ModelControlsData.shape.pinnedRelease.safeParse(release).success) return { error: `"${release}" is not a release name` };
  if (release === served) return { error: `${release} is already served by ${model.inferenceService}` };
  const refusals: string[] = [];
  const kept: string[] = [];
  for (const r of promoted) {
    const rel = r.status?.release?.promoted ?? '';
    if (!kept.includes(rel)) kept.push(rel);
  }
  const keptNow = kept.slice(0, model.releasesKept);
  if (!keptNow.includes(release)) {
    refusals.push(`${release} is not a kept release of ${model.name} (kept, newest first: ${keptNow.filter((k) => k !== served).join(', ') || 'none besides the served one'})`);
  }
  const trainedBy = mine.find((r) => r.metadata.name === release);
  if (trainedBy?.status?.gate?.verdict !== 'approved') refusals.push(`${release} was never approved by the gate${trainedBy ? '' : ' (no run of that name on record)'}`);
  const failedVerify = mine.find((r) => r.status?.release?.promoted === release && r.status.steps?.verify?.finished && r.status.steps.verify.outcome !== 'verified');
  if (failedVerify) refusals.push(`${release} failed verification in run ${failedVerify.metadata.name ?? ''} (${failedVerify.status?.steps?.verify?.outcome ?? ''})`);
  if (controls.pinned && controls.pinned.release !== release) refusals.push(`${pinnedText(controls.pinned)}; rolling back to another release overrides the pin`);
  return { release, served, refusals };
}

export interface RollbackOptions extends ControlOptions {
  model?: string | undefined;
  to?: string | undefined;
  force: boolean;
  reason?: string | undefined;
  /** Where to send the wake-up (`run.reconcile`); without it the watchdog's next tick starts the run. */
  broker?: string | undefined;
}

export async function runRollback(opts: RollbackOptions): Promise<number> {
  try {
    const ctx = await cliContext(opts.model, opts);
    const { kube, model } = ctx;
    const [runs, served, controls] = await Promise.all([
      kube.listAll<Run>(Resources.modelRun, { labelSelector: `${Labels.model}=${model.name}` }),
      servedRelease(kube, model),
      readControlsMap(kube, model.name).then((cm) => parseControls(cm?.data)),
    ]);
    const plan = planRollback(model, runs, served, opts.to, controls);
    if ('error' in plan) throw new UsageError(plan.error);
    if (plan.refusals.length > 0 && !opts.force) {
      throw new UsageError(`refused: ${plan.refusals.join('; ')}. Pass --force to roll back anyway (the promote Job still refuses a release that is not on the volume)`);
    }
    const at = ctx.now.toISOString();
    const run = runNameFor(model.name, `manual-rollback/${plan.release}/${at}`);
    // The model's lock first (as start-training does), then the record; a run in flight is never interrupted.
    const budgetSeconds = (model.deadlines.promoteMinutes + model.deadlines.verifyMinutes + 15) * 60;
    const lock = await acquireLock(kube, model.name, run, budgetSeconds, ctx.now);
    if (!lock.acquired) throw new Error(`run ${lock.holder} holds the lock of ${model.name}: wait until it ends (mlops runs ${model.name}), then roll back`);
    try {
      await kube.create(Resources.modelRun, {
        apiVersion: Resources.modelRun.apiVersion, kind: Resources.modelRun.kind,
        metadata: {
          name: run,
          labels: { [Labels.managedBy]: MANAGER, [Labels.model]: model.name, [Labels.run]: run, [Labels.trigger]: 'manual-rollback', [Labels.phase]: 'Pending' },
          annotations: { [Annotations.idempotencyKey]: `manual-rollback/${plan.release}/${at}` },
        },
        spec: {
          model: model.name, trigger: 'manual-rollback', idempotencyKey: `manual-rollback/${plan.release}/${at}`, profile: model.profile, requestedBy: ctx.who,
          reason: (opts.reason ?? `rollback to ${plan.release}${plan.served ? ` from ${plan.served}` : ''}`).slice(0, 1024),
          rollback: { release: plan.release, ...(opts.force && plan.refusals.length > 0 ? { force: true } : {}) },
        },
      });
    } catch (err) {
      await kube.delete(Resources.lease, lockNameFor(model.name), {}).catch(() => false);
      throw err;
    }
    for (const r of plan.refusals) ctx.write(`forced past: ${r}\n`);
    ctx.write(`rollback ${run}: ${model.name} back to ${plan.release}${plan.served ? ` (serving ${plan.served})` : ''}, requested by ${ctx.who}; verified like a promotion (mlops runs ${model.name})\n`);
    if (opts.broker) {
      const event = buildEvent(EventTypes.runReconcile, { step: CLI_SENDER, model: model.name, id: `${run}.reconcile`, data: { model: model.name, run, target: 'restart-predictor', reason: 'manual rollback requested' } });
      const message = HTTP.binary(event);
      const res = await fetch(opts.broker, { method: 'POST', headers: message.headers as Record<string, string>, body: message.body as string }).catch((err: Error) => ({ status: 0, statusText: err.message }));
      if (res.status >= 300 || res.status === 0) ctx.write(`note: the broker did not take the wake-up (${res.status || (res as { statusText: string }).statusText}); the watchdog starts the rollback on its next tick\n`);
    } else {
      ctx.write('note: no broker given (--broker URL or MLOPS_BROKER): the watchdog starts the rollback on its next tick\n');
    }
    return 0;
  } catch (err) {
    (opts.writeErr ?? ((t: string) => { process.stderr.write(t); }))(`mlops rollback: ${(err as Error).message}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}
