import { storageStatusLine } from './bootstrap.ts';
import { CronExpressionParser } from 'cron-parser';
import { baselineSummary } from '../runtime/baseline.ts';
import { loadCatalog, type CatalogModel } from '../runtime/catalog.ts';
import { createKubePort, type KubePort, type KubeObject } from '../runtime/kube.ts';
import { Labels, lockNameFor } from '../runtime/labels.ts';
import type { LeaseObject } from '../runtime/lock.ts';
import { pausedText, pinnedText, readControls } from '../runtime/controls.ts';
import { isServingRun } from '../runtime/modelrun.ts';
import { Resources, type ModelRun, type StepRecord } from '../runtime/resources.ts';

// `mlops status` and `mlops runs MODEL`: read ModelRuns and Leases through the Kubernetes API, so they work
// against a real cluster (KUBECONFIG or in-cluster) and against `mlops dev` alike.

type Env = Readonly<Record<string, string | undefined>>;
type Run = ModelRun & KubeObject;

function kubeFrom(env: Env, namespace: string | undefined): KubePort {
  return createKubePort({ kubeconfigPath: env.KUBECONFIG, namespace: namespace ?? env.NAMESPACE });
}

export interface StatusRow {
  model: string;
  servedRelease: string;
  trainedAt: string;
  age: string;
  lastRun: string;
  lastPhase: string;
  verdict: string;
  lock: string;
  nextRun: string;
  /** Day-2 controls (docs/day2.md). */
  paused: string;
  pinned: string;
  notes: string[];
}

export async function statusRows(kube: KubePort, models: CatalogModel[], now: Date): Promise<StatusRow[]> {
  const runs = await kube.listAll<Run>(Resources.modelRun, { labelSelector: `${Labels.managedBy}=model-lifecycle` });
  const rows: StatusRow[] = [];
  for (const model of models) {
    const mine = runs.filter((r) => r.spec.model === model.name).sort(byCreation);
    const served = mine.filter(isServingRun).at(-1);
    const last = mine.at(-1);
    const [lease, controls] = await Promise.all([kube.get<LeaseObject>(Resources.lease, lockNameFor(model.name)), readControls(kube, model.name)]);
    // A manual rollback serves an older run's release: that run trained it.
    const trainedBy = served?.spec.trigger === 'manual-rollback' ? mine.find((r) => r.metadata.name === served.status?.release?.promoted) : served;
    const trainedAt = trainedBy?.status?.steps?.training?.finished;
    rows.push({
      model: model.name,
      servedRelease: served?.status?.release?.promoted ?? served?.metadata.name ?? '-',
      trainedAt: trainedAt ? iso(trainedAt) : '-',
      age: trainedAt ? duration(now.getTime() - new Date(trainedAt).getTime()) : '-',
      lastRun: last?.metadata.name ?? '-',
      lastPhase: last?.status?.phase ?? (last ? 'Pending' : '-'),
      verdict: last?.status?.gate?.verdict ?? '-',
      lock: lease?.spec?.holderIdentity ?? '-',
      nextRun: model.schedule ? nextRun(model.schedule.cron, model.schedule.timezone, now) : '-',
      paused: controls.paused ? `yes (${controls.paused.by})` : '-',
      pinned: controls.pinned ? `${controls.pinned.release} (${controls.pinned.by})` : '-',
      notes: [
        ...(controls.paused ? [`${model.name} ${pausedText(controls.paused)}`] : []),
        ...(controls.pinned ? [`${model.name}: ${pinnedText(controls.pinned)}; runs train and gate but nothing is promoted`] : []),
        ...(controls.invalid ? [`${model.name}: the controls ConfigMap is malformed (${controls.invalid}); treated as paused`] : []),
      ],
    });
  }
  return rows;
}

export async function runStatus(opts: { env: Env; namespace?: string | undefined; now?: Date }): Promise<number> {
  const catalog = loadCatalog(opts.env.MODEL_CATALOG ?? 'config/models.yaml');
  const kube = kubeFrom(opts.env, opts.namespace);
  const rows = await statusRows(kube, catalog.models, opts.now ?? new Date());
  process.stdout.write(statusTable(rows));
  const storage = await storageStatusLine(kube);
  if (storage) process.stdout.write(storage);
  return 0;
}

export function statusTable(rows: StatusRow[]): string {
  const notes = rows.flatMap((r) => r.notes);
  return table(['MODEL', 'SERVED RELEASE', 'TRAINED AT', 'AGE', 'LAST RUN', 'PHASE', 'VERDICT', 'LOCK', 'NEXT RUN', 'PAUSED', 'PINNED'],
    rows.map((r) => [r.model, r.servedRelease, r.trainedAt, r.age, r.lastRun, r.lastPhase, r.verdict, r.lock, r.nextRun, r.paused, r.pinned]))
    + (notes.length ? `\n${notes.map((n) => `note: ${n}`).join('\n')}\n` : '');
}

export async function runRuns(opts: { env: Env; namespace?: string | undefined; model?: string | undefined }): Promise<number> {
  if (!opts.model) { process.stderr.write('mlops runs: MODEL is required\n'); return 2; }
  const kube = kubeFrom(opts.env, opts.namespace);
  const runs = (await kube.listAll<Run>(Resources.modelRun, { labelSelector: `${Labels.model}=${opts.model}` })).sort(byCreation);
  if (runs.length === 0) { process.stdout.write(`no runs of ${opts.model}\n`); return 0; }
  process.stdout.write(runs.map(timeline).join('\n'));
  return 0;
}

export function timeline(run: Run): string {
  const s = run.status ?? {};
  const p = run.spec.provenance ?? {};
  const provenance = Object.entries(p).filter(([, v]) => v).map(([k, v]) => `${k}=${String(v)}`).join(' ');
  const lines = [
    `${run.metadata.name ?? ''}  ${s.phase ?? 'Pending'}  trigger ${run.spec.trigger}${provenance ? ` (${provenance})` : ''}  profile ${run.spec.profile}`,
    `  created ${iso(run.metadata.creationTimestamp)}${s.finishedAt ? `  finished ${iso(s.finishedAt)}` : ''}${s.message ? `  — ${s.message}` : ''}`,
  ];
  const steps: Array<[string, StepRecord | undefined]> = [
    ['training', s.steps?.training], ['copy', s.steps?.copy], ['gate', s.steps?.gate], ['promote', s.steps?.promote], ['verify', s.steps?.verify], ['rollback', s.steps?.rollback],
  ];
  for (const [name, rec] of steps) {
    if (!rec) continue;
    lines.push(`  ${name.padEnd(9)} ${rec.started ? iso(rec.started) : '-'} → ${rec.finished ? iso(rec.finished) : '…'}  ${rec.outcome ?? 'running'}${rec.message ? `  ${rec.message}` : ''}`);
  }
  if (s.gate?.verdict) lines.push(`  gate verdict ${s.gate.verdict}${s.gate.simulated ? ' (simulated)' : ''}: ${(s.gate.checks ?? []).map((c) => `${c.name}${c.ok ? '' : ' FAILED'}`).join(', ')}`);
  const baseline = baselineSummary(s.gate?.report);
  if (baseline) lines.push(`  ${baseline}`);
  if (s.release?.pinned) lines.push(`  not promoted: release ${s.release.pinned.release} was pinned by ${s.release.pinned.by}`);
  if (s.release?.promoted) lines.push(`  release ${s.release.promoted} (replaced ${s.release.replaced ?? 'none'})${s.release.restored ? `, restored ${s.release.restored}` : ''}`);
  for (const w of s.warnings ?? []) lines.push(`  warning: ${w}`);
  return `${lines.join('\n')}\n`;
}

function byCreation(a: Run, b: Run): number {
  return new Date(a.metadata.creationTimestamp ?? 0).getTime() - new Date(b.metadata.creationTimestamp ?? 0).getTime() || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');
}

function nextRun(cron: string, tz: string, now: Date): string {
  try { return CronExpressionParser.parse(cron, { currentDate: now, tz }).next().toDate().toISOString().replace('.000Z', 'Z'); } catch { return 'invalid schedule'; }
}

const iso = (t: string | Date | undefined): string => (t ? new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z') : '-');

export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
