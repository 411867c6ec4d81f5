// results.json → the Markdown table in bench/README.md (between the markers; the text above them is kept).
import type { CostVariants, OldDesignCost, PodModel, RunCost } from './cost.ts';
import type { Summary } from './stats.ts';
import { round, summarize } from './stats.ts';

export const TABLE_START = '<!-- bench:results:start -->';
export const TABLE_END = '<!-- bench:results:end -->';


export interface BenchResults {
  meta: {
    node: string; date: string; commit: string; dirty: boolean;
    machine: { cpus: number; cpuModel: string; memoryGiB: number; loadAverageAtStart: number[] };
    durationMs: number; build: string;
  };
  coldStart: {
    runs: number;
    echo: { coldStartMs: Summary; rssMiB: Summary };
    /** The floor for the skip path: a bare faas-js-runtime function making the same two API reads (bench/reads/). */
    reads?: { coldStartMs: Summary; rssMiB: Summary };
    startTraining: { coldStartMs: Summary; rssMiB: Summary };
    /** Diagnostic: the same bundle answering an event type it does not handle (204, no API call). */
    startTrainingUnhandled: { coldStartMs: Summary; rssMiB: Summary };
    ratio: { coldStart: number; rss: number; unhandledColdStart: number; unhandledRss: number };
    target: { coldStart: number; rss: number };
    meets: { coldStart: boolean; rss: boolean };
  };
  warm: {
    runs: number; warmup: number; sequential: number; concurrency: number; concurrentRequests: number;
    echo: { p50Ms: Summary; p99Ms: Summary; throughputPerSec: Summary };
    reads?: { p50Ms: Summary; p99Ms: Summary; throughputPerSec: Summary };
    startTraining: { p50Ms: Summary; p99Ms: Summary; throughputPerSec: Summary };
    startTrainingUnhandled: { p50Ms: Summary; p99Ms: Summary; throughputPerSec: Summary };
    ratio: { p50: number; p99: number; throughput: number; unhandledP50: number; unhandledP99: number; unhandledThroughput: number; vsReadsP50?: number; vsReadsP99?: number };
    target: { p99: number; p99VsReads?: number };
    meets: { p99: boolean; p99VsReads?: boolean };
  };
  scenarios:
    | { status: 'unavailable'; reason: string }
    | {
      status: 'measured'; runsPerScenario: number; tektonBaselineMs: number; podModel?: PodModel;
      items: Array<{
        scenario: string; phase: string; expectedPhase: string | undefined; asExpected: boolean;
        wallMs: Summary; functionMs: Summary; functionMsByStep: Record<string, number>; apiCalls: Summary; apiCallsByStep: Record<string, number>; deliveries: number;
        gateSimulated: boolean;
        /** Job pods the simulated Job controller started for the run. */
        jobPods?: Summary;
        /** The real-cluster cost model over each run's trace (bench/cost.ts). */
        cost?: CostVariants[];
      }>;
      failures: string[];
    };
  driftStorm: {
    runs: number; alerts: number; models: number; clientConcurrency: number;
    exactlyOneRunPerModel: boolean;
    modelRuns: number[]; notebookValidationJobs: number[]; skipped: number[]; brokerRetries: number[];
    intakeMs: Summary; wallMs: Summary; apiCalls: Summary;
  };
  /** One watchdog tick over a big catalog (bench/reconcile.ts). */
  reconcile?: { runs: number; busy: ReconcileTickFigures; idle: ReconcileTickFigures };
  aggregation:
    | { status: 'failed'; reason: string }
    | { status: 'measured'; n: number; runs: number; figures: Record<string, Summary>; last: Record<string, unknown> };
}

export interface ReconcileTickFigures {
  models: number; unfinished: number; status: number[];
  reads: Summary; lists: Summary; gets: Summary; writes: Summary; ms: Summary;
  listsByResource: Record<string, number>; eventTypes: Record<string, number>;
}

const fmt = (n: number, digits = 1): string => String(round(n, digits));
const cell = (s: Summary, digits = 1, unit = ''): string => `${fmt(s.median, digits)}${unit} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
const verdict = (ok: boolean): string => (ok ? 'meets' : '**misses**');

export function renderTable(r: BenchResults): string {
  const lines: string[] = [];
  const m = r.meta;
  lines.push(`Run ${m.date} on ${m.machine.cpus} cores (${m.machine.cpuModel}, ${m.machine.memoryGiB} GiB), Node ${m.node}, commit \`${m.commit.slice(0, 10)}\`${m.dirty ? ' (uncommitted changes)' : ''}; load average at start ${m.machine.loadAverageAtStart.map((x) => fmt(x, 2)).join(' / ')}; the suite took ${fmt(m.durationMs / 1000, 0)} s.`);
  lines.push('Cells are median (min–max) over the runs shown; ratios are medians over medians, baseline measured in the same run.');
  lines.push('');
  lines.push('| # | figure | ours | baseline (same run) | ratio | target | verdict |');
  lines.push('|---|---|---|---|---|---|---|');
  const c = r.coldStart;
  lines.push(`| 1 | cold start, spawn → first event answered (${c.runs} runs) | ${cell(c.startTraining.coldStartMs, 0, ' ms')} | echo ${cell(c.echo.coldStartMs, 0, ' ms')} | ${fmt(c.ratio.coldStart, 2)}× | ≤ ${c.target.coldStart}× | ${verdict(c.meets.coldStart)} |`);
  lines.push(`| 1 | RSS after the first answer | ${cell(c.startTraining.rssMiB, 1, ' MiB')} | echo ${cell(c.echo.rssMiB, 1, ' MiB')} | ${fmt(c.ratio.rss, 2)}× | ≤ ${c.target.rss}× | ${verdict(c.meets.rss)} |`);
  lines.push(`| 1 | diagnostic: the same bundle, an event type it does not handle (204, no API call): cold start / RSS | ${cell(c.startTrainingUnhandled.coldStartMs, 0, ' ms')} / ${cell(c.startTrainingUnhandled.rssMiB, 1, ' MiB')} | echo (above) | ${fmt(c.ratio.unhandledColdStart, 2)}× / ${fmt(c.ratio.unhandledRss, 2)}× | — | — |`);
  if (c.reads) lines.push(`| 1 | diagnostic: the reads baseline (bench/reads/): cold start / RSS | ${cell(c.reads.coldStartMs, 0, ' ms')} / ${cell(c.reads.rssMiB, 1, ' MiB')} | echo (above) | — | — | — |`);
  const w = r.warm;
  lines.push(`| 2 | warm latency p50, skip path (${w.sequential} sequential × ${w.runs} runs) | ${cell(w.startTraining.p50Ms, 2, ' ms')} | echo ${cell(w.echo.p50Ms, 2, ' ms')} | ${fmt(w.ratio.p50, 2)}× | — | — |`);
  lines.push(`| 2 | warm latency p99, skip path | ${cell(w.startTraining.p99Ms, 2, ' ms')} | echo ${cell(w.echo.p99Ms, 2, ' ms')} | ${fmt(w.ratio.p99, 2)}× | ≤ ${w.target.p99}× | ${verdict(w.meets.p99)} |`);
  if (w.reads && w.ratio.vsReadsP99 !== undefined) {
    lines.push(`| 2 | warm latency p50 / p99, skip path against the same two API reads in a bare faas-js-runtime function | ${cell(w.startTraining.p50Ms, 2, ' ms')} / ${cell(w.startTraining.p99Ms, 2, ' ms')} | reads ${cell(w.reads.p50Ms, 2, ' ms')} / ${cell(w.reads.p99Ms, 2, ' ms')} | ${fmt(w.ratio.vsReadsP50 ?? Number.NaN, 2)}× / ${fmt(w.ratio.vsReadsP99, 2)}× | p99 ≤ ${w.target.p99VsReads ?? 1.2}× | ${verdict(w.meets.p99VsReads ?? false)} |`);
  }
  lines.push(`| 2 | throughput at concurrency ${w.concurrency} (${w.concurrentRequests} requests) | ${cell(w.startTraining.throughputPerSec, 0, '/s')} | echo ${cell(w.echo.throughputPerSec, 0, '/s')} | ${fmt(w.ratio.throughput, 2)}× | — | — |`);
  lines.push(`| 2 | diagnostic: unhandled event (204, no API call): p50 / p99 / throughput | ${cell(w.startTrainingUnhandled.p50Ms, 2, ' ms')} / ${cell(w.startTrainingUnhandled.p99Ms, 2, ' ms')} / ${cell(w.startTrainingUnhandled.throughputPerSec, 0, '/s')} | echo (above) | ${fmt(w.ratio.unhandledP50, 2)}× / ${fmt(w.ratio.unhandledP99, 2)}× / ${fmt(w.ratio.unhandledThroughput, 2)}× | — | — |`);
  const s = r.scenarios;
  if (s.status === 'unavailable') {
    lines.push(`| 3 | full runs through \`startLocal\` | not measured: ${s.reason} | — | — | — | — |`);
  } else {
    for (const it of s.items) {
      const steps = Object.entries(it.apiCallsByStep).map(([k, v]) => `${k} ${v}`).join(', ');
      lines.push(`| 3 | ${it.scenario} → ${it.phase}${it.asExpected ? '' : ` (expected ${it.expectedPhase ?? '?'})`}: API calls by functions (${steps}) | ${cell(it.apiCalls, 0)} calls | — | — | bounded | ${it.asExpected ? 'reported' : '**wrong phase**'} |`);
      lines.push(`| 3 | ${it.scenario}: wall time first event → terminal phase (${s.runsPerScenario} runs; includes simulated controllers${it.gateSimulated ? ', stand-in model' : ', real sklearn training and Job scripts'}) | ${cell(it.wallMs, 0, ' ms')} | Tekton ${tektonCell(s.tektonBaselineMs)} | ${fmt(it.wallMs.median / s.tektonBaselineMs, 3)}× | — | — |`);
      if (it.jobPods) lines.push(`| 3 | ${it.scenario}: function invocations (broker deliveries) / Job pods started | ${it.deliveries} / ${cell(it.jobPods, 0)} | — | — | — | — |`);
      lines.push(`| 3 | ${it.scenario}: the functions' own time (sum of ${it.deliveries} delivery answer times) | ${cell(it.functionMs, 0, ' ms')} | Tekton ${tektonCell(s.tektonBaselineMs)} | ${fmt(it.functionMs.median / s.tektonBaselineMs, 3)}× | well under 1 s | ${verdict(it.functionMs.median < 1000)} |`);
    }
    const failed = new Map<string, number>();
    for (const f of s.failures) failed.set(f, (failed.get(f) ?? 0) + 1);
    for (const [f, n] of failed) lines.push(`| 3 | run failed${n > 1 ? ` (× ${n})` : ''} | ${f.replace(/\|/g, '\\|').slice(0, 200)} | — | — | — | **not measured** |`);
  }
  const d = r.driftStorm;
  const counts = (xs: number[]): string => [...new Set(xs)].join('/');
  lines.push(`| 4 | ${d.alerts} concurrent drift alerts over ${d.models} models (client limit ${d.clientConcurrency}, ${d.runs} runs): ModelRuns / NVJs created | ${counts(d.modelRuns)} / ${counts(d.notebookValidationJobs)} | — | — | exactly ${d.models} | ${verdict(d.exactlyOneRunPerModel)} |`);
  lines.push(`| 4 | drift storm: explicit skips / broker retries | ${counts(d.skipped)} / ${counts(d.brokerRetries)} | — | — | ${d.alerts - d.models} skips | ${verdict(d.skipped.every((x) => x === d.alerts - d.models))} |`);
  lines.push(`| 4 | drift storm: wall time to broker idle (all answered by intake in ${fmt(d.intakeMs.median, 0)} ms) | ${cell(d.wallMs, 0, ' ms')} | — | — | — | — |`);
  lines.push(`| 4 | drift storm: API calls | ${cell(d.apiCalls, 0)} | — | — | — | — |`);
  const a = r.aggregation;
  if (a.status !== 'measured') lines.push(`| 5 | 10,000 NVJs aggregated for Argo CD | ${a.status}: ${a.reason} | — | — | < 1 s, O(N/page) lists | ${a.status} |`);
  else {
    const reportedN = a.figures.n?.median;
    if (reportedN !== undefined && reportedN !== a.n) lines.push(`| 5 | Argo CD aggregation: NVJs counted | ${fmt(reportedN, 0)} of ${a.n} created | — | — | all ${a.n} | **misses** |`);
    for (const [k, v] of Object.entries(a.figures)) if (k !== 'n') lines.push(`| 5 | ${a.n} NVJs aggregated for Argo CD: ${k} (${a.runs} runs) | ${cell(v, 2)} | — | — | ${/ms|time/i.test(k) ? '< 1000 ms' : /list/i.test(k) ? `O(N/page)` : '—'} | ${/ms$|Ms$/.test(k) ? verdict(v.median < 1000) : '—'} |`);
  }
  const rc = r.reconcile;
  if (rc) {
    for (const t of [rc.busy, rc.idle]) {
      const lists = Object.entries(t.listsByResource).map(([k, v]) => `${k} ${v}`).join(', ');
      const events = Object.entries(t.eventTypes).map(([k, v]) => `${v} ${k}`).join(', ') || 'none';
      lines.push(`| 6 | watchdog tick, ${t.models} catalog models, ${t.unfinished} unfinished runs (${rc.runs} runs): reads = gets + list pages (${lists}) / writes; events sent: ${events} | ${cell(t.reads, 0)} = ${cell(t.gets, 0)} + ${cell(t.lists, 0)} / ${cell(t.writes, 0)} | — | — | bounded lists, O(runs) memory | ${verdict(t.status.every((x) => x === 204))} |`);
      lines.push(`| 6 | watchdog tick, ${t.unfinished} unfinished: answer time | ${cell(t.ms, 0, ' ms')} | — | — | — | — |`);
    }
  }
  const cost = renderCostTable(r);
  if (cost) lines.push('', '**What a real cluster would pay** (modeled from each run\'s counts; the model and its sources are above):', '', cost);
  return lines.join('\n');
}

const med = (xs: number[]): number => summarize(xs).median;
const secs = (ms: number | undefined): string => (ms === undefined ? '—' : `${fmt(ms / 1000, 1)} s`);

function oursRow(scenario: string, label: string, runs: RunCost[]): string {
  const p = (f: (c: RunCost) => number): string => fmt(med(runs.map(f)), 0);
  const concluded = runs.map((c) => c.trainingToConcludedMs).filter((x): x is number => x !== undefined);
  const cold = runs[runs.length - 1]?.coldStartsByStep ?? {};
  const where = Object.entries(cold).map(([k, v]) => `${k} ${v}`).join(', ');
  return `| ${scenario} | ${label} | ${p((c) => c.podsStarted.total)} (${p((c) => c.podsStarted.functions)} function + ${p((c) => c.podsStarted.jobs)} Job + ${p((c) => c.podsStarted.predictors)} predictor + ${p((c) => c.podsStarted.training)} training) | ${p((c) => c.invocations)} | ${p((c) => c.coldStarts)} (${where}) | ${p((c) => c.podSeconds)} | ${concluded.length ? secs(med(concluded)) : '—'} |`;
}

function oldRow(scenario: string, label: string, runs: OldDesignCost[]): string {
  const p = (f: (c: OldDesignCost) => number): string => fmt(med(runs.map(f)), 0);
  const concluded = runs.map((c) => c.trainingToConcludedMs).filter((x): x is number => x !== undefined);
  return `| ${scenario} | ${label} | ${p((c) => c.podsStarted)} (${p((c) => c.taskPods)} task pod(s) + training + predictors) + 1 always-on EventListener | — (task pods, no functions) | 0 | ${p((c) => c.podSeconds)} + 86,400 per day for the EventListener | ${concluded.length ? secs(med(concluded)) : '—'} |`;
}

/** The modeled real-cluster cost per scenario (bench/cost.ts), beside the design it replaces. */
export function renderCostTable(r: BenchResults): string {
  const s = r.scenarios;
  if (s.status !== 'measured' || !s.podModel) return '';
  const m = s.podModel;
  const lines = [
    `Model: Knative cold start ${fmt(m.coldStartMs / 1000, 1)} s, Job / predictor pod start ${fmt(m.jobPodStartMs / 1000, 1)} s, old task pod ${fmt(m.taskPodStartMs / 1000, 1)} s, a function pod kept ${fmt(m.scaleToZeroAfterMs / 1000, 0)} s after its last request, training ${fmt(m.trainingMs / 60_000, 0)} min; "long Jobs" add 120 s to every Job's work. Pod-seconds exclude the training pod and the serving predictor pods.`,
    '',
    '| scenario | design | pods started | function invocations | cold starts | pod-seconds | training finished → concluded |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const it of s.items) {
    const c = it.cost ?? [];
    if (c.length === 0) continue;
    lines.push(oursRow(it.scenario, 'ours', c.map((v) => v.ours)));
    lines.push(oursRow(it.scenario, 'ours, `--warm-steps`', c.map((v) => v.warm)));
    lines.push(oursRow(it.scenario, 'ours, long Jobs', c.map((v) => v.longJobs)));
    lines.push(oursRow(it.scenario, 'ours, long Jobs, `--warm-steps`', c.map((v) => v.longJobsWarm)));
    lines.push(oldRow(it.scenario, 'old (Tekton, modeled)', c.map((v) => v.old)));
    lines.push(oldRow(it.scenario, 'old, long Jobs', c.map((v) => v.oldLongJobs)));
  }
  return lines.join('\n');
}

function tektonCell(ms: number): string {
  return `≈ ${fmt(ms / 1000, 0)} s pod overhead`;
}

/** README text with the table between the markers replaced (appended with markers when absent). */
export function replaceTable(readme: string, table: string): string {
  const block = `${TABLE_START}\n${table}\n${TABLE_END}`;
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start >= 0 && end > start) return readme.slice(0, start) + block + readme.slice(end + TABLE_END.length);
  return `${readme.replace(/\s*$/, '')}\n\n${block}\n`;
}
