// `npm run bench`: builds dist/ when missing or stale, runs the five measurements (each repeated, baselines in
// the same run), writes bench/out/results.json and bench/out/table.md; BENCH_RECORD=1 also updates the tracked
// bench/results.json and the table in bench/README.md. Sizes: BENCH_QUICK=1 for a smoke run.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aggregationOnce, numericLeaves } from './aggregation.ts';
import { ensureBuild } from './build.ts';
import { driftStorm, type DriftStormResult } from './drift.ts';
import { coldStartOnce, startEmulatorProcess, warmOnce, type ColdStartSample, type Target, type WarmSample } from './latency.ts';
import { reconcileTick, type ReconcileTickResult } from './reconcile.ts';
import { replaceTable, renderTable, type BenchResults } from './report.ts';
import { DEFAULT_POD_MODEL, costVariants } from './cost.ts';
import { SCENARIOS, TEKTON_POD_OVERHEAD_MS, TEKTON_TASKS, scenarioRun, type ScenarioRunResult } from './scenarios.ts';
import { ratio, round, summarize, type Summary } from './stats.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quick = process.env.BENCH_QUICK === '1';
const plan = quick
  ? { cold: 2, warmRuns: 1, warmup: 50, sequential: 200, concurrency: 16, concurrentRequests: 200, scenarioRuns: 1, driftRuns: 1, alerts: 100, models: 20, aggregationRuns: 1, nvjs: 10_000, reconcileRuns: 1 }
  : { cold: 7, warmRuns: 5, warmup: 200, sequential: 2_000, concurrency: 16, concurrentRequests: 2_000, scenarioRuns: 3, driftRuns: 5, alerts: 1_000, models: 20, aggregationRuns: 5, nvjs: 10_000, reconcileRuns: 3 };

const say = (line: string): void => { process.stdout.write(`${line}\n`); };
const mib = (kib: number): number => kib / 1024;

function git(args: string[]): string {
  try { return execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim(); } catch { return 'unknown'; }
}

async function main(): Promise<void> {
  const began = performance.now();
  const loadAverageAtStart = loadavg().map((x) => round(x, 2));
  const build = ensureBuild(root, ['start-training'], say);

  // 1 + 2: the bundled step on its skip path against the bare echo, interleaved so load drifts hit both alike.
  const cluster = await startEmulatorProcess(root);
  const ctx = { root, cluster };
  const targets = ['echo', 'reads', 'start-training', 'start-training-unhandled'] as const;
  const cold: Record<Target, ColdStartSample[]> = { echo: [], reads: [], 'start-training': [], 'start-training-unhandled': [] };
  const warm: Record<Target, WarmSample[]> = { echo: [], reads: [], 'start-training': [], 'start-training-unhandled': [] };
  try {
    // One unmeasured start each: the first spawn pays for cold file caches, which a pod start does not.
    await coldStartOnce('echo', ctx);
    await coldStartOnce('start-training', ctx);
    for (let i = 0; i < plan.cold; i++) {
      for (const target of targets) {
        const s = await coldStartOnce(target, ctx);
        cold[target].push(s);
        say(`cold start ${target} #${i + 1}: ${round(s.coldStartMs, 1)} ms, RSS ${round(mib(s.rssKiB), 1)} MiB`);
      }
    }
    for (let i = 0; i < plan.warmRuns; i++) {
      for (const target of targets) {
        const s = await warmOnce(target, ctx, plan);
        warm[target].push(s);
        say(`warm ${target} #${i + 1}: p50 ${round(s.p50Ms, 2)} ms, p99 ${round(s.p99Ms, 2)} ms, ${round(s.throughputPerSec, 0)}/s at ${plan.concurrency}`);
      }
    }
  } finally {
    await cluster.close();
  }
  const coldOf = (t: Target) => ({ coldStartMs: summarize(cold[t].map((s) => s.coldStartMs)), rssMiB: summarize(cold[t].map((s) => mib(s.rssKiB))) });
  const warmOf = (t: Target) => ({ p50Ms: summarize(warm[t].map((s) => s.p50Ms)), p99Ms: summarize(warm[t].map((s) => s.p99Ms)), throughputPerSec: summarize(warm[t].map((s) => s.throughputPerSec)) });
  const coldEcho = coldOf('echo');
  const coldStep = coldOf('start-training');
  const warmEcho = warmOf('echo');
  const warmStep = warmOf('start-training');
  const coldUnhandled = coldOf('start-training-unhandled');
  const warmUnhandled = warmOf('start-training-unhandled');
  const coldReads = coldOf('reads');
  const warmReads = warmOf('reads');
  const coldRatio = {
    coldStart: round(ratio(coldStep.coldStartMs.median, coldEcho.coldStartMs.median), 3), rss: round(ratio(coldStep.rssMiB.median, coldEcho.rssMiB.median), 3),
    unhandledColdStart: round(ratio(coldUnhandled.coldStartMs.median, coldEcho.coldStartMs.median), 3), unhandledRss: round(ratio(coldUnhandled.rssMiB.median, coldEcho.rssMiB.median), 3),
  };
  const warmRatio = {
    p50: round(ratio(warmStep.p50Ms.median, warmEcho.p50Ms.median), 3), p99: round(ratio(warmStep.p99Ms.median, warmEcho.p99Ms.median), 3),
    throughput: round(ratio(warmStep.throughputPerSec.median, warmEcho.throughputPerSec.median), 3),
    unhandledP50: round(ratio(warmUnhandled.p50Ms.median, warmEcho.p50Ms.median), 3), unhandledP99: round(ratio(warmUnhandled.p99Ms.median, warmEcho.p99Ms.median), 3),
    unhandledThroughput: round(ratio(warmUnhandled.throughputPerSec.median, warmEcho.throughputPerSec.median), 3),
    // Against the floor: the same two API reads in a bare faas-js-runtime function (bench/reads/).
    vsReadsP50: round(ratio(warmStep.p50Ms.median, warmReads.p50Ms.median), 3), vsReadsP99: round(ratio(warmStep.p99Ms.median, warmReads.p99Ms.median), 3),
  };

  // 3: full runs per scenario.
  let scenarios: BenchResults['scenarios'];
  try {
    const items = [];
    const failures: string[] = [];
    for (const scenario of SCENARIOS) {
      const runs: ScenarioRunResult[] = [];
      for (let i = 0; i < plan.scenarioRuns; i++) {
        try {
          const r = await scenarioRun({ root, scenario });
          runs.push(r);
          say(`scenario ${scenario} #${i + 1}: ${r.phase} in ${round(r.wallMs, 0)} ms, functions ${round(r.functionMs, 0)} ms, ${r.apiCalls} API calls`);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') throw err;
          failures.push(`${scenario}: ${(err as Error).message}`);
          say(`scenario ${scenario} #${i + 1} failed: ${(err as Error).message}`);
        }
      }
      const last = runs[runs.length - 1];
      if (!last) continue;
      items.push({
        scenario, phase: last.phase, expectedPhase: last.expectedPhase, asExpected: runs.every((r) => r.phase === r.expectedPhase),
        wallMs: summarize(runs.map((r) => r.wallMs)), functionMs: summarize(runs.map((r) => r.functionMs)), apiCalls: summarize(runs.map((r) => r.apiCalls)),
        functionMsByStep: Object.fromEntries(Object.entries(last.functionMsByStep).map(([k, v]) => [k, round(v, 0)])), apiCallsByStep: last.apiCallsByStep, deliveries: last.deliveries, gateSimulated: runs.some((r) => r.gateSimulated),
        jobPods: summarize(runs.map((r) => r.trace.pods.filter((p) => p.kind === 'job').length)),
        cost: runs.map((r) => costVariants(r.trace)),
      });
    }
    scenarios = { status: 'measured', runsPerScenario: plan.scenarioRuns, tektonBaselineMs: TEKTON_TASKS * TEKTON_POD_OVERHEAD_MS, podModel: DEFAULT_POD_MODEL, items, failures };
  } catch (err) {
    scenarios = { status: 'unavailable', reason: `dev/local.ts could not start: ${(err as Error).message}` };
    say(`scenarios not measured: ${scenarios.reason}`);
  }

  // 4: the drift storm.
  const storms: DriftStormResult[] = [];
  for (let i = 0; i < plan.driftRuns; i++) {
    const r = await driftStorm({ root, alerts: plan.alerts, models: plan.models, seed: 42 + i });
    storms.push(r);
    say(`drift storm #${i + 1}: ${r.modelRuns} runs, ${r.notebookValidationJobs} NVJs, ${r.skipped} skips, ${r.brokerRetries} retries, ${round(r.wallMs, 0)} ms`);
  }

  // 5: Argo CD aggregation (bench/argocd-aggregation.ts).
  let aggregation: BenchResults['aggregation'];
  const first = await aggregationOnce(plan.nvjs);
  if (first.status !== 'measured') {
    aggregation = first;
    say(`aggregation: ${first.status} (${first.reason})`);
  } else {
    const samples = [first];
    for (let i = 1; i < plan.aggregationRuns; i++) {
      const s = await aggregationOnce(plan.nvjs);
      if (s.status === 'measured') samples.push(s);
    }
    const leaves = samples.map((s) => numericLeaves(s.figures));
    const figures: Record<string, Summary> = {};
    for (const key of Object.keys(leaves[0] ?? {})) figures[key] = summarize(leaves.map((l) => l[key] ?? Number.NaN).filter((x) => !Number.isNaN(x)));
    aggregation = { status: 'measured', n: plan.nvjs, runs: samples.length, figures, last: samples[samples.length - 1]?.figures ?? {} };
    say(`aggregation: ${JSON.stringify(figures)}`);
  }

  // 6: one watchdog tick (deadlines, catch-up, reconcile) over 1,000 catalog models, with 100 and with 0 runs in flight.
  const ticks: Record<'busy' | 'idle', ReconcileTickResult[]> = { busy: [], idle: [] };
  for (let i = 0; i < plan.reconcileRuns; i++) {
    for (const [key, unfinished] of [['busy', 100], ['idle', 0]] as const) {
      const r = await reconcileTick(root, { models: 1_000, unfinished });
      ticks[key].push(r);
      say(`watchdog tick, 1000 models, ${unfinished} unfinished: ${r.reads} reads (${r.lists} list pages), ${r.writes} writes, ${r.eventsSent} events, ${round(r.ms, 0)} ms`);
    }
  }
  const tickOf = (xs: ReconcileTickResult[]) => ({
    models: xs[0]?.models ?? 0, unfinished: xs[0]?.unfinished ?? 0, status: xs.map((x) => x.status),
    reads: summarize(xs.map((x) => x.reads)), lists: summarize(xs.map((x) => x.lists)), gets: summarize(xs.map((x) => x.gets)), writes: summarize(xs.map((x) => x.writes)),
    ms: summarize(xs.map((x) => x.ms)), listsByResource: xs[xs.length - 1]?.listsByResource ?? {}, eventTypes: xs[xs.length - 1]?.eventTypes ?? {},
  });

  const results: BenchResults = {
    meta: {
      node: process.version, date: new Date().toISOString(), commit: git(['rev-parse', 'HEAD']), dirty: git(['status', '--porcelain']) !== '',
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: round(totalmem() / 2 ** 30, 1), loadAverageAtStart },
      durationMs: Math.round(performance.now() - began), build,
    },
    coldStart: {
      runs: plan.cold, echo: coldEcho, reads: coldReads, startTraining: coldStep, startTrainingUnhandled: coldUnhandled, ratio: coldRatio, target: { coldStart: 1.25, rss: 1.3 },
      meets: { coldStart: coldRatio.coldStart <= 1.25, rss: coldRatio.rss <= 1.3 },
    },
    warm: {
      runs: plan.warmRuns, warmup: plan.warmup, sequential: plan.sequential, concurrency: plan.concurrency, concurrentRequests: plan.concurrentRequests,
      echo: warmEcho, reads: warmReads, startTraining: warmStep, startTrainingUnhandled: warmUnhandled, ratio: warmRatio,
      target: { p99: 2, p99VsReads: 1.2 }, meets: { p99: warmRatio.p99 <= 2, p99VsReads: warmRatio.vsReadsP99 <= 1.2 },
    },
    scenarios,
    driftStorm: {
      runs: storms.length, alerts: plan.alerts, models: plan.models, clientConcurrency: storms[0]?.clientConcurrency ?? 100,
      exactlyOneRunPerModel: storms.every((s) => s.modelRuns === plan.models && s.notebookValidationJobs === plan.models && s.modelsWithOneRun === plan.models),
      modelRuns: storms.map((s) => s.modelRuns), notebookValidationJobs: storms.map((s) => s.notebookValidationJobs),
      skipped: storms.map((s) => s.skipped), brokerRetries: storms.map((s) => s.brokerRetries),
      intakeMs: summarize(storms.map((s) => s.intakeMs)), wallMs: summarize(storms.map((s) => s.wallMs)), apiCalls: summarize(storms.map((s) => s.apiCalls)),
    },
    aggregation,
    reconcile: { runs: plan.reconcileRuns, busy: tickOf(ticks.busy), idle: tickOf(ticks.idle) },
  };
  // Figures go to bench/out/ (untracked); BENCH_RECORD=1 also records them in bench/results.json and bench/README.md.
  const outDir = join(root, 'bench');
  mkdirSync(join(outDir, 'out'), { recursive: true });
  const resultsPath = join(outDir, 'out', quick ? 'results.quick.json' : 'results.json');
  writeFileSync(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
  const table = renderTable(results);
  writeFileSync(join(outDir, 'out', quick ? 'table.quick.md' : 'table.md'), `${table}\n`);
  if (!quick && process.env.BENCH_RECORD === '1') {
    writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    const readmePath = join(outDir, 'README.md');
    const readme = existsSync(readmePath) ? readFileSync(readmePath, 'utf8') : '# Benchmarks\n';
    writeFileSync(readmePath, replaceTable(readme, table));
  }
  say('');
  say(table);
  say('');
  say(`results: ${resultsPath}`);
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
