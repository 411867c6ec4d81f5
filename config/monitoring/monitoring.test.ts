// Monitoring config (config/monitoring, docs/monitoring.md): every path the kube-state-metrics config reads exists in
// the ModelRun CRD schema; the PrometheusRule is the render of the catalog, passes `promtool check rules` and the
// promtool unit tests, and those tests fail when a rule changes meaningfully; the Grafana dashboard queries only
// metrics that kube-state-metrics (our config), the recording rules or faas-js-runtime (a real scrape) produce.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import faas, { type InvokerOptions } from 'faas-js-runtime';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Service, ServiceAccount } from 'kubernetes-models/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml';
import { crdVersion, loadCrd, type SchemaNode } from '../crds/crd-schema.ts';
import { loadCatalog, parseCatalog } from '../../runtime/catalog.ts';
import { evaluate, toFloat, type KsmMetric } from './ksm-eval.ts';
import { freshnessThresholdSeconds, longestGapSeconds, promDuration, renderRulesFile, ruleGroups, RULES_FILE, type RuleGroup } from './rules.ts';

const run = promisify(execFile);
const DIR = 'config/monitoring';
const crd = loadCrd('config/crds/modelrun.yaml');
const schema = crdVersion(crd, 'v1alpha1').schema?.openAPIV3Schema as SchemaNode;

// ---------------------------------------------------------------------------------------------------
// kube-state-metrics CustomResourceStateMetrics → schema paths

type Path = string[];
type MetricSpec = {
  name: string;
  each: {
    type: 'Gauge' | 'StateSet' | 'Info';
    gauge?: { path?: Path; valueFrom?: Path; labelFromKey?: string; labelsFromPath?: Record<string, Path>; nilIsZero?: boolean };
    stateSet?: { path?: Path; labelName: string; list: string[]; valueFrom?: Path; labelsFromPath?: Record<string, Path> };
    info?: { path?: Path; labelsFromPath?: Record<string, Path>; labelFromKey?: string };
  };
  labelsFromPath?: Record<string, Path>;
};
type KsmResource = { groupVersionKind: { group: string; version: string; kind: string }; metricNamePrefix: string; labelsFromPath?: Record<string, Path>; metrics: MetricSpec[] };
type KsmConfig = { kind: string; spec: { resources: KsmResource[] } };

const ksm = parseYaml(readFileSync(`${DIR}/kube-state-metrics/modelrun-metrics.yaml`, 'utf8')) as KsmConfig;

/** ObjectMeta, which a CRD's schema leaves to the API server (`metadata: {type: object}`). */
const objectMeta: SchemaNode = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    namespace: { type: 'string' },
    uid: { type: 'string' },
    creationTimestamp: { type: 'string', format: 'date-time' },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    annotations: { type: 'object', additionalProperties: { type: 'string' } },
  },
};

const SCALAR = new Set(['string', 'integer', 'number', 'boolean']);

/** The schema nodes a KSM path reaches (several when a step crosses a map of named properties). */
function walk(root: SchemaNode, path: Path, where: string, errors: string[], top = false): SchemaNode[] {
  let nodes = [root];
  path.forEach((seg, i) => {
    const at = `${where}.${path.slice(0, i + 1).join('.')}`;
    const next: SchemaNode[] = [];
    for (const node of nodes) {
      if (top && i === 0 && seg === 'metadata') { next.push(objectMeta); continue; }
      if (node.type === 'array') {
        // "0" or "[key=value]" select an element.
        if (!/^\d+$/.test(seg) && !/^\[.+=.+\]$/.test(seg)) { errors.push(`${at}: ${seg} does not index an array`); continue; }
        if (node.items) next.push(node.items); else errors.push(`${at}: array without items`);
        continue;
      }
      if (node['x-kubernetes-preserve-unknown-fields'] && !node.properties?.[seg]) { errors.push(`${at}: under a preserve-unknown-fields object, cannot be checked`); continue; }
      const prop = node.properties?.[seg];
      if (prop) { next.push(prop); continue; }
      if (typeof node.additionalProperties === 'object') { next.push(node.additionalProperties); continue; }
      errors.push(`${at}: no such field in the ModelRun schema`);
    }
    nodes = next;
  });
  return nodes;
}

/** Children an "each" path iterates over: array items, or every value of an object/map (labelFromKey). */
function elements(nodes: SchemaNode[]): SchemaNode[] {
  return nodes.flatMap((n) => {
    if (n.type === 'array' && n.items) return [n.items];
    if (n.properties) return Object.values(n.properties);
    if (typeof n.additionalProperties === 'object') return [n.additionalProperties];
    return [n];
  });
}

function isGaugeValue(n: SchemaNode, annotation: boolean): boolean {
  // KSM's Gauge takes numbers, booleans and RFC3339 strings; annotation values are strings we write as numbers or times.
  return n.type === 'integer' || n.type === 'number' || n.type === 'boolean' || (n.type === 'string' && (n.format === 'date-time' || annotation));
}

function checkLabels(base: SchemaNode[], labels: Record<string, Path> | undefined, where: string, errors: string[], top = false): void {
  for (const [label, path] of Object.entries(labels ?? {})) {
    for (const base1 of base) {
      for (const leaf of walk(base1, path, `${where} label ${label}`, errors, top)) {
        if (!SCALAR.has(leaf.type ?? '')) errors.push(`${where} label ${label}: ${path.join('.')} is not a scalar`);
      }
    }
  }
}

/** Every problem with a KSM config against a ModelRun schema; empty when all paths resolve. */
function checkKsmConfig(config: KsmConfig, root: SchemaNode): string[] {
  const errors: string[] = [];
  for (const res of config.spec.resources) {
    checkLabels([root], res.labelsFromPath, res.metricNamePrefix, errors, true);
    for (const m of res.metrics) {
      const where = `${res.metricNamePrefix}_${m.name}`;
      checkLabels([root], m.labelsFromPath, where, errors, true);
      const e = m.each;
      if (e.type === 'Gauge') {
        const g = e.gauge ?? {};
        const reached = walk(root, g.path ?? [], where, errors, true);
        const annotation = (g.path ?? []).slice(0, 2).join('.') === 'metadata.annotations';
        const iterated = g.labelFromKey !== undefined || g.valueFrom !== undefined ? elements(reached) : reached;
        checkLabels(iterated, g.labelsFromPath, where, errors);
        const values = g.valueFrom ? iterated.flatMap((n) => walk(n, g.valueFrom ?? [], `${where} valueFrom`, errors)) : iterated;
        for (const v of values) if (!isGaugeValue(v, annotation)) errors.push(`${where}: value at ${[...(g.path ?? []), ...(g.valueFrom ?? [])].join('.')} is not a number, boolean or date-time`);
      } else if (e.type === 'StateSet') {
        const s = e.stateSet;
        for (const leaf of walk(root, s?.path ?? [], where, errors, true)) {
          const allowed = (leaf.enum ?? []).map(String);
          if (JSON.stringify([...allowed].sort()) !== JSON.stringify([...(s?.list ?? [])].sort())) {
            errors.push(`${where}: list [${(s?.list ?? []).join(', ')}] differs from the schema's enum [${allowed.join(', ')}]`);
          }
        }
      } else {
        const i = e.info ?? {};
        const reached = i.path ? elements(walk(root, i.path, where, errors, true)) : [root];
        checkLabels(reached, i.labelsFromPath, where, errors, !i.path);
      }
    }
  }
  return errors;
}

/** Metric names the config makes kube-state-metrics serve. */
function ksmMetricNames(config: KsmConfig): Set<string> {
  return new Set(config.spec.resources.flatMap((r) => r.metrics.map((m) => `${r.metricNamePrefix}_${m.name}`)));
}

describe('kube-state-metrics config for ModelRuns', () => {
  test('targets the ModelRun CRD (group, served version, kind)', () => {
    expect(ksm.kind).toBe('CustomResourceStateMetrics');
    const [res] = ksm.spec.resources;
    expect(res?.groupVersionKind).toEqual({ group: crd.spec.group, version: 'v1alpha1', kind: crd.spec.names.kind });
    expect(crdVersion(crd, 'v1alpha1').served).toBe(true);
  });

  test('every path it reads resolves against the CRD schema, with gauge-able values and matching state lists', () => {
    expect(checkKsmConfig(ksm, schema)).toEqual([]);
  });

  test('reads what the dashboards and alerts need: freshness, phases, steps, gate, deadlines, dead letters', () => {
    expect([...ksmMetricNames(ksm)].sort()).toEqual(expect.arrayContaining([
      'mlops_modelrun_phase', 'mlops_modelrun_trained_timestamp_seconds', 'mlops_modelrun_finished_timestamp_seconds',
      'mlops_modelrun_step_started_timestamp_seconds', 'mlops_modelrun_step_finished_timestamp_seconds',
      'mlops_modelrun_gate_verdict', 'mlops_modelrun_deadline_timestamp_seconds', 'mlops_modelrun_last_dead_letter_timestamp_seconds',
      'mlops_modelrun_gate_baseline_served', 'mlops_modelrun_gate_baseline_value', 'mlops_modelrun_gate_baseline_threshold',
      'mlops_modelrun_gate_baseline_check', 'mlops_modelrun_gate_baseline_metric', 'mlops_modelrun_gate_baseline_reference_rows',
    ]));
  });

  test('a renamed or removed field, a new phase, or a changed type is caught', () => {
    const mutate = (edit: (s: SchemaNode) => void): string[] => {
      const copy = structuredClone(schema);
      edit(copy);
      return checkKsmConfig(ksm, copy);
    };
    const status = (s: SchemaNode): SchemaNode => s.properties?.status as SchemaNode;
    expect(mutate((s) => { delete status(s).properties?.finishedAt; })).toEqual(['mlops_modelrun_finished_timestamp_seconds.status.finishedAt: no such field in the ModelRun schema']);
    expect(mutate((s) => {
      const training = (status(s).properties?.steps as SchemaNode).properties?.training as SchemaNode;
      const props = training.properties ?? {};
      props.finishedAt = props.finished as SchemaNode;
      delete props.finished;
    })).toEqual(expect.arrayContaining([expect.stringContaining('status.steps.training.finished: no such field')]));
    expect(mutate((s) => { (status(s).properties?.phase as SchemaNode).enum?.push('Paused'); })).toEqual([expect.stringContaining('mlops_modelrun_phase: list')]);
    expect(mutate((s) => { ((status(s).properties?.artifact as SchemaNode).properties?.bytes as SchemaNode).type = 'string'; }))
      .toEqual([expect.stringContaining('mlops_modelrun_artifact_bytes: value at status.artifact.bytes')]);
    expect(mutate((s) => { delete (status(s).properties?.deadlines as SchemaNode).properties; })).toEqual(expect.arrayContaining([expect.stringContaining('mlops_modelrun_deadline_timestamp_seconds')]));
    // The baseline comparison (status.gate.baseline): typed fields, not the preserve-unknown report.
    const baseline = (s: SchemaNode): SchemaNode => ((status(s).properties?.gate as SchemaNode).properties?.baseline as SchemaNode);
    const baselineItem = (s: SchemaNode, list: string): SchemaNode => (baseline(s).properties?.[list] as SchemaNode).items as SchemaNode;
    expect(mutate((s) => { delete baselineItem(s, 'checks').properties?.threshold; })).toEqual(['mlops_modelrun_gate_baseline_threshold valueFrom.threshold: no such field in the ModelRun schema']);
    expect(mutate((s) => { (baselineItem(s, 'checks').properties?.value as SchemaNode).type = 'string'; })).toEqual([expect.stringContaining('mlops_modelrun_gate_baseline_value: value at status.gate.baseline.checks.value')]);
    expect(mutate((s) => { delete baselineItem(s, 'metrics').properties?.output; })).toEqual(['mlops_modelrun_gate_baseline_metric label output.output: no such field in the ModelRun schema']);
    expect(mutate((s) => { (baseline(s).properties?.served as SchemaNode).enum?.push('unknown'); })).toEqual([expect.stringContaining('mlops_modelrun_gate_baseline_served: list')]);
    expect(mutate((s) => { (status(s).properties?.gate as SchemaNode).properties = { ...((status(s).properties?.gate as SchemaNode).properties ?? {}), baseline: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } }; }))
      .toEqual(expect.arrayContaining([expect.stringContaining('under a preserve-unknown-fields object, cannot be checked')]));
  });
});

// ---------------------------------------------------------------------------------------------------
// PrometheusRule

type PrometheusRule = { apiVersion: string; kind: string; metadata: { name: string; namespace: string }; spec: { groups: RuleGroup[] } };
const shipped = parseYaml(readFileSync(RULES_FILE, 'utf8')) as PrometheusRule;
const RECORDED = new Set(shipped.spec.groups.flatMap((g) => g.rules.map((r) => r.record).filter((r): r is string => r !== undefined)));

/** Metric names a PromQL expression selects: strings, matchers, ranges, label lists and function calls removed. */
function metricNames(expr: string): string[] {
  const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = stripped.slice((m.index ?? 0) + m[0].length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

async function promtool(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** A temp dir with the rule groups (optionally edited) and the promtool test files, as `promtool test rules` wants. */
function ruleDir(groups: RuleGroup[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'mlops-rules-'));
  writeFileSync(join(dir, 'prometheusrule.groups.yaml'), stringify({ groups }, { lineWidth: 0 }));
  for (const f of ['rules.test.yaml', 'freshness.test.yaml']) copyFileSync(`${DIR}/tests/${f}`, join(dir, f));
  return dir;
}

function editExpr(groups: RuleGroup[], name: string, edit: (expr: string) => string): RuleGroup[] {
  const copy = structuredClone(groups);
  let found = 0;
  for (const g of copy) for (const r of g.rules) if (r.alert === name || r.record === name) { const next = edit(r.expr); if (next !== r.expr) found++; r.expr = next; }
  if (found === 0) throw new Error(`edit of ${name} changed nothing`);
  return copy;
}

describe('PrometheusRule', () => {
  const dirs: string[] = [];
  afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  test('the committed file is the render of config/models.yaml (`npx node config/monitoring/rules.ts`)', () => {
    expect(readFileSync(RULES_FILE, 'utf8')).toBe(renderRulesFile(loadCatalog('config/models.yaml')));
    expect(shipped.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(shipped.kind).toBe('PrometheusRule');
  });

  test('freshness thresholds follow each model\'s schedule and deadlines; unscheduled models get no freshness alert', () => {
    expect(longestGapSeconds('0 2 * * 0', 'UTC')).toBe(7 * 86400);
    expect(longestGapSeconds('0 */6 * * *', 'UTC')).toBe(6 * 3600);
    // Weekdays only: Friday to Monday is the longest gap, one hour longer over the weekend the clocks go back.
    expect(longestGapSeconds('30 1 * * 1-5', 'Europe/Berlin')).toBe(73 * 3600);
    expect(longestGapSeconds('30 1 * * 1-5', 'UTC')).toBe(72 * 3600);
    const catalog = parseCatalog(`
models:
  - name: weekly
    inferenceService: weekly
    notebook: { gitUrl: https://example.com/r.git, gitRef: main, path: a.ipynb, image: img }
    schedule: { cron: "0 2 * * 0" }
    features: { count: 3 }
    output: { kind: regression, width: 1 }
  - name: manual-only
    inferenceService: manual-only
    notebook: { gitUrl: https://example.com/r.git, gitRef: main, path: b.ipynb, image: img }
    features: { count: 3 }
    output: { kind: regression, width: 1 }
`);
    const [weekly, manual] = catalog.models;
    // 7 d + (240 + 30 + 15 + 10 + 15 + 15) min run budget + 1 h grace.
    expect(freshnessThresholdSeconds(weekly!)).toBe(7 * 86400 + 325 * 60 + 3600);
    expect(freshnessThresholdSeconds(manual!)).toBeUndefined();
    const stale = ruleGroups(catalog).flatMap((g) => g.rules).filter((r) => r.alert === 'ModelStale' || r.alert === 'ModelNeverServed');
    expect(stale.map((r) => [r.alert, r.labels?.model, r.for])).toEqual([
      ['ModelStale', 'weekly', '5m'], ['ModelNeverServed', 'weekly', promDuration(7 * 86400 + 325 * 60 + 3600)],
    ]);
    expect(promDuration(627900)).toBe('174h25m');
  });

  test('rules read only metrics kube-state-metrics serves for our config, recorded series, or `up`', () => {
    // kube_configmap_labels: the built-in configmaps collector our kube-state-metrics also runs (its args are checked
    // below: --resources=configmaps with the mlops.dev/* labels allowlisted).
    const known = new Set([...ksmMetricNames(ksm), ...RECORDED, 'up', 'kube_configmap_labels']);
    const unknown = shipped.spec.groups.flatMap((g) => g.rules.flatMap((r) => metricNames(r.expr).filter((n) => !known.has(n)).map((n) => `${r.alert ?? r.record ?? ''}: ${n}`)));
    expect(unknown).toEqual([]);
  });

  test('promtool check rules and promtool test rules pass on the shipped rules', async () => {
    const dir = ruleDir(shipped.spec.groups);
    dirs.push(dir);
    const check = await promtool(['check', 'rules', 'prometheusrule.groups.yaml'], dir);
    expect(check.out).toContain('SUCCESS');
    expect(check.code).toBe(0);
    const tested = await promtool(['test', 'rules', 'rules.test.yaml', 'freshness.test.yaml'], dir);
    expect(tested.out).not.toContain('FAILED');
    expect(tested.code).toBe(0);
  }, 240_000);

  test('the unit tests fail when a rule changes meaningfully', async () => {
    const mutants: Array<[string, RuleGroup[]]> = [
      ['stuck-run alert also counts finished runs', editExpr(shipped.spec.groups, 'ModelRunPastDeadline', (e) => e.replace(/phase=~"[^"]+"/, 'phase=~".+"'))],
      ['ended-run window 12 h instead of 6 h', editExpr(shipped.spec.groups, 'ModelRunFailed', (e) => e.replace('< 21600', '< 43200'))],
      ['deadline grace 0 s', editExpr(shipped.spec.groups, 'ModelRunPastDeadline', (e) => e.replace('> 300', '> 0'))],
      ['dead letters never expire', editExpr(shipped.spec.groups, 'ModelRunDeadLettered', () => 'mlops_modelrun_last_dead_letter_timestamp_seconds > 0')],
      ['step duration without the outcome', editExpr(shipped.spec.groups, 'mlops:modelrun_step_duration_seconds', (e) => e.replace(' group_left', ''))],
    ];
    for (const [what, groups] of mutants) {
      const dir = ruleDir(groups);
      dirs.push(dir);
      const tested = await promtool(['test', 'rules', 'rules.test.yaml'], dir);
      expect([what, tested.code !== 0 && tested.out.includes('FAILED')]).toEqual([what, true]);
    }
  }, 240_000);

  test('the freshness tests fail when freshness ignores the phase or a pause', async () => {
    const mutants: Array<[string, RuleGroup[]]> = [
      ['trained-at of any run, not only Succeeded ones', editExpr(shipped.spec.groups, 'mlops:model_trained_timestamp_seconds:max', () => 'max by (namespace, model) (mlops_modelrun_trained_timestamp_seconds)')],
      ['a paused model is not excluded from ModelStale', editExpr(shipped.spec.groups, 'ModelStale', (e) => e.replace(/ unless on \(namespace, model\) mlops:model_paused$/, ''))],
      ['a paused model is not excluded from ModelNeverServed', editExpr(shipped.spec.groups, 'ModelNeverServed', (e) => e.replace(/ unless on \(model\) mlops:model_paused\{model="[^"]+"\}$/, ''))],
    ];
    for (const [what, groups] of mutants) {
      const dir = ruleDir(groups);
      dirs.push(dir);
      const tested = await promtool(['test', 'rules', 'freshness.test.yaml'], dir);
      expect([what, tested.code !== 0 && tested.out.includes('FAILED')]).toEqual([what, true]);
    }
  }, 300_000);
});

// ---------------------------------------------------------------------------------------------------
// Grafana dashboard

type Panel = { type: string; title: string; targets?: Array<{ expr: string }>; panels?: Panel[] };
type Dashboard = { title: string; uid: string; panels: Panel[]; templating: { list: Array<{ name: string; query?: unknown; definition?: string }> } };
const dashboard = JSON.parse(readFileSync(`${DIR}/grafana-dashboard.json`, 'utf8')) as Dashboard;
const exprs = (): Array<{ title: string; expr: string }> =>
  dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
/** Grafana variables replaced by values Prometheus can parse. */
const concrete = (expr: string): string => expr.replace(/\$__rate_interval/g, '5m').replace(/\$(model|function)/g, '.*');

describe('Grafana dashboard', () => {
  let faasMetrics: Set<string>;
  let server: Server;
  let cfgDir: string;

  // The names faas-js-runtime really serves: start a function with it, invoke it once, scrape /metrics.
  beforeAll(async () => {
    cfgDir = mkdtempSync(join(tmpdir(), 'mlops-faas-'));
    // The runtime's typings omit `config` and type logLevel as a numeric enum; these are the options it reads
    // (index.js loadConfig): a string port '0' binds a free port, `config` a directory without a func.yaml.
    const options = { port: '0', config: cfgDir, logLevel: 'fatal' };
    server = await faas.start(() => ({ statusCode: 200, body: 'ok' }), options as unknown as InvokerOptions);
    const addr = server.address();
    const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    expect((await fetch(`${base}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(200);
    const text = await (await fetch(`${base}/metrics`)).text();
    faasMetrics = new Set([...text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)/gm)].map((m) => m[1] ?? ''));
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(cfgDir, { recursive: true, force: true });
  });

  test('faas-js-runtime serves the metrics the dashboard reads per function', () => {
    for (const n of ['faas_invocations', 'faas_errors', 'faas_execution_latency_bucket', 'faas_cold_start_latency_sum', 'faas_queue_latency_bucket']) expect(faasMetrics).toContain(n);
  });

  test('every query parses and reads only kube-state-metrics (our config), recorded or faas-js-runtime metrics', async () => {
    const all = exprs();
    expect(all.length).toBeGreaterThan(10);
    const known = new Set([...ksmMetricNames(ksm), ...RECORDED, ...faasMetrics]);
    const vars = dashboard.templating.list.map((v) => v.definition ?? '').filter(Boolean);
    const unknown = [...all.map((e) => e.expr), ...vars.map((d) => d.replace(/^label_values\(([^,]+),.*$/, '$1'))]
      .flatMap((e) => metricNames(concrete(e)).filter((n) => !known.has(n)).map((n) => `${e}: ${n}`));
    expect(unknown).toEqual([]);
    // promtool parses every query (as recording rules).
    const dir = mkdtempSync(join(tmpdir(), 'mlops-dash-'));
    try {
      writeFileSync(join(dir, 'q.yaml'), stringify({ groups: [{ name: 'dashboard', rules: all.map((e, i) => ({ record: `dashboard:q${i}`, expr: concrete(e.expr) })) }] }));
      const check = await promtool(['check', 'rules', 'q.yaml'], dir);
      expect(check.out).toContain('SUCCESS');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('covers freshness per model, runs by outcome, step durations, gate verdicts and per-function traffic', () => {
    const text = exprs().map((e) => e.expr).join('\n');
    for (const needle of ['mlops:model_age_seconds', 'mlops_modelrun_phase', 'mlops:modelrun_step_duration_seconds', 'mlops_modelrun_gate_verdict', 'mlops_modelrun_gate_baseline_value', 'mlops_modelrun_gate_baseline_threshold', 'mlops_modelrun_gate_baseline_metric', 'faas_invocations', 'faas_execution_latency_bucket', 'faas_errors']) {
      expect(text).toContain(needle);
    }
  });

  test('the metric-name extractor sees through PromQL syntax', () => {
    expect(metricNames('sum by (faas_name, le) (rate(faas_execution_latency_bucket{faas_name=~"a|b"}[5m]))')).toEqual(['faas_execution_latency_bucket']);
    expect(metricNames('(a_b > 3) * on (namespace, modelrun) group_left (phase) (c:d{x="y"} == 1) and time() - e')).toEqual(['a_b', 'c:d', 'e']);
  });
});

describe('kustomization', () => {
  test('`kubectl kustomize config/monitoring` builds every object, restricted-compliant, with the KSM config mounted', async () => {
    const { stdout } = await run('kubectl', ['kustomize', DIR], { maxBuffer: 16 * 1024 * 1024 });
    const objs = parseAllDocuments(stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string; namespace?: string }; spec?: Record<string, unknown>; data?: Record<string, string> });
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(expect.arrayContaining([
      'ClusterRole/mlops-kube-state-metrics', 'ClusterRoleBinding/mlops-kube-state-metrics', 'Deployment/mlops-kube-state-metrics',
      'PodMonitor/model-lifecycle-functions', 'PrometheusRule/model-lifecycle', 'Service/mlops-kube-state-metrics',
      'ServiceAccount/mlops-kube-state-metrics', 'ServiceMonitor/mlops-kube-state-metrics', 'ConfigMap/model-lifecycle-dashboard',
    ]));
    const deployment = objs.find((o) => o.kind === 'Deployment') as unknown as {
      spec: { template: { spec: { securityContext: Record<string, unknown>; volumes: Array<{ configMap: { name: string } }>; containers: Array<{ args: string[]; image: string; securityContext: Record<string, unknown> }> } } };
    };
    const pod = deployment.spec.template.spec;
    const [container] = pod.containers;
    expect(container?.image).toMatch(/^registry\.k8s\.io\/kube-state-metrics\/kube-state-metrics:v2\./);
    expect(container?.args).toEqual(expect.arrayContaining(['--custom-resource-state-config-file=/etc/kube-state-metrics/modelrun-metrics.yaml']));
    // Built-ins: only the configmaps collector, and only the day-2 control labels on its labels metric (docs/day2.md).
    expect(container?.args).toEqual(expect.arrayContaining(['--resources=configmaps', '--metric-labels-allowlist=configmaps=[mlops.dev/model,mlops.dev/paused,mlops.dev/pinned]']));
    expect(container?.args).not.toContain('--custom-resource-state-only=true');
    expect(container?.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    // The mounted ConfigMap (name with kustomize's hash) holds exactly the config the schema test checked.
    const configMap = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === pod.volumes[0]?.configMap.name);
    expect(parseYaml(configMap?.data?.['modelrun-metrics.yaml'] ?? '')).toEqual(ksm);
    const rules = objs.find((o) => o.kind === 'ClusterRole') as unknown as { rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> };
    expect(rules.rules).toEqual([
      { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], verbs: ['list', 'watch'] },
      { apiGroups: [crd.spec.group], resources: [crd.spec.names.plural], verbs: ['list', 'watch'] },
      { apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch'] },
    ]);
    for (const o of objs) if (o.kind !== 'ClusterRole' && o.kind !== 'ClusterRoleBinding') expect([o.kind, o.metadata.namespace]).toEqual([o.kind, 'model-lifecycle']);
    // Core kinds against the Kubernetes schemas (the monitoring.coreos.com kinds have no model package here).
    const validators: Record<string, (o: unknown) => void> = {
      Deployment: (o) => new Deployment(o as never).validate(),
      Service: (o) => new Service(o as never).validate(),
      ServiceAccount: (o) => new ServiceAccount(o as never).validate(),
      ConfigMap: (o) => new ConfigMap(o as never).validate(),
      ClusterRole: (o) => new ClusterRole(o as never).validate(),
      ClusterRoleBinding: (o) => new ClusterRoleBinding(o as never).validate(),
    };
    let validated = 0;
    for (const o of objs) { const v = validators[o.kind]; if (v) { v(o); validated++; } }
    expect(validated).toBe(7);
  });
});

// ---------------------------------------------------------------------------------------------------
// ksm-eval.ts (used by modelruns.test.ts) against kube-state-metrics' documented examples:
// kubernetes/kube-state-metrics docs/metrics/extend/customresourcestate-metrics.md (commit 0bc6eaa9).

describe('ksm-eval follows the documented kube-state-metrics examples', () => {
  const foo = {
    kind: 'Foo', apiVersion: 'myteam.io/v1',
    metadata: { annotations: { bar: 'baz', qux: 'quxx' }, labels: { foo: 'bar' }, name: 'foo' },
    spec: { version: 'v1.2.3', order: [{ id: 1, value: true }, { id: 3, value: false }], replicas: 1 },
    status: {
      phase: 'Pending', active: { 'type-a': 1, 'type-b': 3 },
      conditions: [{ name: 'a', value: 45 }, { name: 'b', value: 66 }],
      sub: { 'type-a': { active: 1, ready: 2 }, 'type-b': { active: 3, ready: 4 } },
      uptime: 43.21,
    },
  };
  const gvk = { group: 'myteam.io', version: 'v1', kind: 'Foo' };
  const sample = (metrics: KsmMetric[]): Array<[Record<string, string>, number]> =>
    evaluate({ groupVersionKind: gvk, metricNamePrefix: 'kube_customresource', labelsFromPath: { name: ['metadata', 'name'] }, metrics }, [foo])
      .map((s) => {
        const { customresource_group: g, customresource_kind: k, customresource_version: v, ...rest } = s.labels;
        expect([g, k, v]).toEqual(['myteam.io', 'Foo', 'v1']);
        return [rest, s.value];
      });

  test('single values, objects with labelFromKey and valueFrom, arrays, list lookups', () => {
    expect(sample([{ name: 'uptime', each: { type: 'Gauge', gauge: { path: ['status', 'uptime'] } } }])).toEqual([[{ name: 'foo' }, 43.21]]);
    expect(sample([{ name: 'ready_count', labelsFromPath: { foo: ['metadata', 'labels', 'foo'] }, each: { type: 'Gauge', gauge: { path: ['status', 'sub'], labelFromKey: 'type', labelsFromPath: { active: ['active'] }, valueFrom: ['ready'] } } }]))
      .toEqual([[{ name: 'foo', foo: 'bar', type: 'type-a', active: '1' }, 2], [{ name: 'foo', foo: 'bar', type: 'type-b', active: '3' }, 4]]);
    expect(sample([{ name: 'active', each: { type: 'Gauge', gauge: { path: ['status', 'active'], labelFromKey: 'type' } } }]))
      .toEqual([[{ name: 'foo', type: 'type-a' }, 1], [{ name: 'foo', type: 'type-b' }, 3]]);
    expect(sample([{ name: 'cond', each: { type: 'Gauge', gauge: { path: ['status', 'conditions'], labelsFromPath: { name: ['name'] }, valueFrom: ['value'] } } }]))
      .toEqual([[{ name: 'a' }, 45], [{ name: 'b' }, 66]]);
    expect(sample([{ name: 'a', each: { type: 'Gauge', gauge: { path: ['status', 'conditions', '[name=a]', 'value'] } } }])).toEqual([[{ name: 'foo' }, 45]]);
    expect(sample([{ name: 'order', each: { type: 'Gauge', gauge: { path: ['spec', 'order', '0', 'value'] } } }])).toEqual([[{ name: 'foo' }, 1]]);
  });

  test('StateSet, Info, missing values and nilIsZero', () => {
    expect(sample([{ name: 'status_phase', each: { type: 'StateSet', stateSet: { labelName: 'phase', path: ['status', 'phase'], list: ['Pending', 'Bar', 'Baz'] } } }]))
      .toEqual([[{ name: 'foo', phase: 'Pending' }, 1], [{ name: 'foo', phase: 'Bar' }, 0], [{ name: 'foo', phase: 'Baz' }, 0]]);
    expect(sample([{ name: 'version', each: { type: 'Info', info: { labelsFromPath: { version: ['spec', 'version'] } } } }])).toEqual([[{ name: 'foo', version: 'v1.2.3' }, 1]]);
    expect(sample([{ name: 'missing', each: { type: 'Gauge', gauge: { path: ['status', 'nope'] } } }])).toEqual([]);
    expect(sample([{ name: 'missing', each: { type: 'Gauge', gauge: { path: ['status', 'nope'], nilIsZero: true } } }])).toEqual([[{ name: 'foo' }, 0]]);
  });

  test('values: RFC3339 with or without fractions to Unix seconds, numbers and booleans as text', () => {
    expect([toFloat('2025-01-05T02:03:04Z'), toFloat('2025-01-05T02:03:04.567Z'), toFloat('3'), toFloat('True'), toFloat('no'), toFloat('x')])
      .toEqual([1736042584, 1736042584, 3, 1, 0, undefined]);
  });
});
