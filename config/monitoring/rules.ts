// The PrometheusRule for model-lifecycle, rendered from the model catalog: recording rules over the
// kube-state-metrics ModelRun series (kube-state-metrics/modelrun-metrics.yaml), run alerts, and one freshness
// alert per scheduled model whose threshold comes from its schedule and deadlines (docs/monitoring.md).
// `node config/monitoring/rules.ts` rewrites prometheusrule.yaml from config/models.yaml (or MODEL_CATALOG);
// config/monitoring/monitoring.test.ts fails when the committed file differs from the render.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CronExpressionParser } from 'cron-parser';
import { stringify } from 'yaml';
import { loadCatalog, type Catalog, type CatalogModel } from '../../runtime/catalog.ts';

export const RULES_FILE = 'config/monitoring/prometheusrule.yaml';
export const KSM_JOB = 'mlops-kube-state-metrics';
/** Slack on top of a model's schedule and run budget before its release counts as stale. */
export const FRESHNESS_GRACE_SECONDS = 3600;
/** How long a run that ended Failed, Rejected or RolledBack keeps its alert firing. */
export const ENDED_RUN_WINDOW_SECONDS = 21_600;
/** The watchdog fails an overdue run within a tick (one minute); this much later something is wrong. */
export const DEADLINE_GRACE_SECONDS = 300;
/** A dead letter keeps its alert firing this long after notify recorded it. */
export const DEAD_LETTER_WINDOW_SECONDS = 3600;

const IN_PROGRESS = 'Pending|Training|Copying|Gating|Promoting|Verifying';
const SUCCEEDED = 'mlops_modelrun_phase{phase="Succeeded"} == 1';

export type PromRule = { record?: string; alert?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
export type RuleGroup = { name: string; rules: PromRule[] };

/** Longest gap between two consecutive fire times of a cron schedule (over a year, or 2,000 fires). */
export function longestGapSeconds(cron: string, timezone: string): number {
  const it = CronExpressionParser.parse(cron, { currentDate: new Date('2025-01-01T00:00:00Z'), tz: timezone });
  let prev = it.next().toDate().getTime();
  const end = prev + 366 * 86_400_000;
  let longest = 0;
  for (let i = 0; i < 2000 && prev < end; i++) {
    const next = it.next().toDate().getTime();
    longest = Math.max(longest, next - prev);
    prev = next;
  }
  return Math.round(longest / 1000);
}

/** The run budget the ModelRun's run deadline carries: every step's deadline plus 15 minutes. */
export function runBudgetSeconds(model: CatalogModel): number {
  const d = model.deadlines;
  return (d.trainingMinutes + d.copyMinutes + d.gateMinutes + d.promoteMinutes + d.verifyMinutes + 15) * 60;
}

/**
 * A scheduled model is stale when its served release was trained longer ago than the longest gap of its
 * schedule plus one run budget plus the grace: the next scheduled run should have produced a release by then.
 */
export function freshnessThresholdSeconds(model: CatalogModel): number | undefined {
  if (!model.schedule) return undefined;
  return longestGapSeconds(model.schedule.cron, model.schedule.timezone) + runBudgetSeconds(model) + FRESHNESS_GRACE_SECONDS;
}

/** Seconds as a Prometheus duration (`175h40m`), for `for:` fields. */
export function promDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s || (!h && !m) ? `${s}s` : ''}`;
}

export function ruleGroups(catalog: Catalog): RuleGroup[] {
  const records: RuleGroup = {
    name: 'model-lifecycle.records',
    rules: [
      { record: 'mlops:model_trained_timestamp_seconds:max', expr: `max by (namespace, model) (mlops_modelrun_trained_timestamp_seconds and on (namespace, modelrun) (${SUCCEEDED}))` },
      { record: 'mlops:model_deployed_timestamp_seconds:max', expr: `max by (namespace, model) (mlops_modelrun_finished_timestamp_seconds and on (namespace, modelrun) (${SUCCEEDED}))` },
      { record: 'mlops:model_age_seconds', expr: 'time() - mlops:model_trained_timestamp_seconds:max' },
      // 1 per paused model, from its day-2 controls ConfigMap's labels (kube_configmap_labels, docs/day2.md): a paused
      // model is stale on purpose, so the freshness alerts leave it alone.
      { record: 'mlops:model_paused', expr: 'max by (namespace, model) (label_replace(kube_configmap_labels{label_mlops_dev_paused="true"}, "model", "$1", "label_mlops_dev_model", "(.+)"))' },
      { record: 'mlops:modelruns:count', expr: 'sum by (namespace, model, phase) (mlops_modelrun_phase == 1)' },
      { record: 'mlops:modelrun_step_duration_seconds', expr: 'mlops_modelrun_step_finished_timestamp_seconds - ignoring (outcome) group_left mlops_modelrun_step_started_timestamp_seconds' },
      { record: 'mlops:modelrun_duration_seconds', expr: 'mlops_modelrun_finished_timestamp_seconds - mlops_modelrun_created_timestamp_seconds' },
    ],
  };

  const ended = (phase: 'Failed' | 'Rejected' | 'RolledBack', summary: string, description: string): PromRule => ({
    alert: `ModelRun${phase}`,
    expr: `(mlops_modelrun_phase{phase="${phase}"} == 1) and on (namespace, modelrun) (time() - mlops_modelrun_finished_timestamp_seconds < ${ENDED_RUN_WINDOW_SECONDS})`,
    labels: { severity: 'warning' },
    annotations: { summary, description },
  });
  const runs: RuleGroup = {
    name: 'model-lifecycle.runs',
    rules: [
      ended('Failed', 'Run {{ $labels.modelrun }} of {{ $labels.model }} failed',
        'The run ended Failed (training, copy, deadline or infrastructure failure); the served release is unchanged. `mlops runs {{ $labels.model }}` shows its timeline.'),
      ended('Rejected', 'The health gate rejected run {{ $labels.modelrun }} of {{ $labels.model }}',
        'The trained model failed the gate and was not promoted; the served release is unchanged. `kubectl get mrun {{ $labels.modelrun }} -o yaml` shows the gate report.'),
      ended('RolledBack', 'Run {{ $labels.modelrun }} of {{ $labels.model }} was rolled back',
        'The new release failed verification on the new predictor pods and the previous release was restored.'),
      {
        alert: 'ModelRunPastDeadline',
        expr: `(time() - mlops_modelrun_deadline_timestamp_seconds > ${DEADLINE_GRACE_SECONDS}) * on (namespace, modelrun) group_left (phase) (mlops_modelrun_phase{phase=~"${IN_PROGRESS}"} == 1)`,
        for: '2m',
        labels: { severity: 'critical' },
        annotations: {
          summary: 'Run {{ $labels.modelrun }} of {{ $labels.model }} is {{ $value | humanizeDuration }} past its {{ $labels.deadline }} deadline',
          description: 'The run is still {{ $labels.phase }} although the watchdog should have failed it within a minute of the deadline: check the watchdog PingSource and function. The model stays locked until the run ends.',
        },
      },
      {
        alert: 'ModelRunDeadLettered',
        expr: `time() - mlops_modelrun_last_dead_letter_timestamp_seconds < ${DEAD_LETTER_WINDOW_SECONDS}`,
        labels: { severity: 'warning' },
        annotations: {
          summary: 'An event of run {{ $labels.modelrun }} ({{ $labels.model }}) was dead-lettered',
          description: 'Knative gave up delivering an event of this run (a 4xx answer or retries exhausted) and sent it to notify, the dead-letter sink. `kubectl get events -l mlops.dev/notification-type=dead-letter` lists them; the watchdog reconcile re-drives a run whose next step has its inputs ready.',
        },
      },
      {
        alert: 'ModelLifecycleMetricsDown',
        expr: `up{job="${KSM_JOB}"} == 0 or absent(up{job="${KSM_JOB}"})`,
        for: '10m',
        labels: { severity: 'warning' },
        annotations: {
          summary: 'The ModelRun kube-state-metrics is not scraped',
          description: 'Freshness, run and deadline alerts depend on it: check the mlops-kube-state-metrics Deployment and its ServiceMonitor.',
        },
      },
    ],
  };

  const freshness: RuleGroup = { name: 'model-lifecycle.freshness', rules: [] };
  for (const model of catalog.models) {
    const threshold = freshnessThresholdSeconds(model);
    if (threshold === undefined) continue;
    const schedule = `${model.schedule?.cron ?? ''} ${model.schedule?.timezone ?? ''}`;
    freshness.rules.push({
      alert: 'ModelStale',
      expr: `mlops:model_age_seconds{model="${model.name}"} > ${threshold} unless on (namespace, model) mlops:model_paused`,
      for: '5m',
      labels: { severity: 'warning', model: model.name },
      annotations: {
        summary: 'The served release of {{ $labels.model }} was trained {{ $value | humanizeDuration }} ago',
        description: `Older than its schedule (${schedule}) allows: longest gap ${promDuration(threshold - runBudgetSeconds(model) - FRESHNESS_GRACE_SECONDS)} + run budget ${promDuration(runBudgetSeconds(model))} + grace ${promDuration(FRESHNESS_GRACE_SECONDS)}. Check its recent runs (mlops runs ${model.name}) and whether the model is pinned (a paused model does not alert).`,
      },
    });
    freshness.rules.push({
      alert: 'ModelNeverServed',
      expr: `absent(mlops:model_trained_timestamp_seconds:max{model="${model.name}"}) unless on (model) mlops:model_paused{model="${model.name}"}`,
      for: promDuration(threshold),
      labels: { severity: 'warning', model: model.name },
      annotations: {
        summary: `${model.name} has had no Succeeded run for ${promDuration(threshold)}`,
        description: `No ModelRun of ${model.name} is Succeeded although its schedule (${schedule}) should have produced one.`,
      },
    });
  }
  return [records, runs, freshness];
}

export function renderPrometheusRule(catalog: Catalog, namespace = 'model-lifecycle'): Record<string, unknown> {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: 'model-lifecycle',
      namespace,
      labels: { 'app.kubernetes.io/name': 'model-lifecycle', 'app.kubernetes.io/part-of': 'model-lifecycle' },
    },
    spec: { groups: ruleGroups(catalog) },
  };
}

export function renderRulesFile(catalog: Catalog): string {
  return `# Generated by \`node config/monitoring/rules.ts\` from config/models.yaml; do not edit.\n${stringify(renderPrometheusRule(catalog), { lineWidth: 0 })}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(RULES_FILE, renderRulesFile(loadCatalog(process.env.MODEL_CATALOG ?? 'config/models.yaml')));
}
