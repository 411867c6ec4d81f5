import { KubeConfig } from '@kubernetes/client-node';
import { loadCatalog, findModel, type Catalog, type CatalogModel } from '../runtime/catalog.ts';
import {
  ModelControlsData, controlsLabels, controlsManifest, controlsNameFor, parseControls, pausedText, pinnedText,
  type ControlsConfigMap, type ModelControls,
} from '../runtime/controls.ts';
import { createKubePort, type KubeObject, type KubePort } from '../runtime/kube.ts';
import { Annotations, Labels } from '../runtime/labels.ts';
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
  write?: (text: string) => void;
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
  const catalog = loadCatalog(opts.catalogPath);
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
