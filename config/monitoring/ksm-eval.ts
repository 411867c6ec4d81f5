// What kube-state-metrics serves for a CustomResourceStateMetrics config and a list of objects, for tests: the
// same path, map/array iteration, label and value rules as kubernetes/kube-state-metrics
// pkg/customresourcestate/registry_factory.go (compiledGauge/compiledStateSet/compiledInfo.Values, addPathLabels,
// toFloat64) for the features modelrun-metrics.yaml uses. Not a replacement for running kube-state-metrics.

type Path = string[];
type Labels = Record<string, string>;
export type Sample = { name: string; labels: Labels; value: number };

type GaugeSpec = { path?: Path; valueFrom?: Path; labelFromKey?: string; labelsFromPath?: Record<string, Path>; nilIsZero?: boolean };
type StateSetSpec = { path?: Path; labelName: string; list: string[]; valueFrom?: Path; labelsFromPath?: Record<string, Path> };
type InfoSpec = { path?: Path; labelsFromPath?: Record<string, Path>; labelFromKey?: string };
export type KsmMetric = {
  name: string;
  commonLabels?: Labels;
  labelsFromPath?: Record<string, Path>;
  each: { type: 'Gauge' | 'StateSet' | 'Info'; gauge?: GaugeSpec; stateSet?: StateSetSpec; info?: InfoSpec };
};
export type KsmResource = {
  groupVersionKind: { group: string; version: string; kind: string };
  metricNamePrefix: string;
  commonLabels?: Labels;
  labelsFromPath?: Record<string, Path>;
  metrics: KsmMetric[];
};

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** valuePath.Get: map keys, array indexes, `[key=value]` list lookups; undefined once anything is missing. */
export function get(obj: unknown, path: Path): unknown {
  let cur: unknown = obj;
  for (const part of path) {
    if (cur === undefined || cur === null) return undefined;
    const lookup = /^\[(.+?)=(.*)\]$/.exec(part);
    if (lookup) {
      cur = Array.isArray(cur) ? cur.find((e) => isMap(e) && String(e[lookup[1] ?? '']) === lookup[2]) : undefined;
    } else if (isMap(cur)) {
      cur = cur[part];
    } else if (Array.isArray(cur)) {
      cur = /^-?\d+$/.test(part) ? cur.at(Number(part)) : undefined;
    } else {
      cur = undefined;
    }
  }
  return cur ?? undefined;
}

/** toFloat64 for the types our objects hold: booleans, numbers, true/false/yes/no, RFC3339 (Unix seconds), numbers as text. */
export function toFloat(value: unknown): number | undefined {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return undefined;
  const lower = value.toLowerCase();
  if (lower === 'true' || lower === 'yes') return 1;
  if (lower === 'false' || lower === 'no' || lower === 'unknown') return 0;
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value)) return Math.floor(Date.parse(value) / 1000);
  const n = Number(value);
  return value.trim() !== '' && Number.isFinite(n) ? n : undefined;
}

function addPathLabels(obj: unknown, labels: Record<string, Path> | undefined, out: Labels): void {
  for (const [name, path] of Object.entries(labels ?? {})) {
    const v = get(obj, path);
    if (v === undefined || v === null) continue;
    // Go's fmt %v of a scalar; objects are not label values in our config.
    out[name] = typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  }
}

function gaugeValue(it: unknown, g: GaugeSpec): number | undefined {
  const got = get(it, g.valueFrom ?? []);
  if (got === undefined) return g.nilIsZero ? 0 : undefined;
  return toFloat(got);
}

function values(metric: KsmMetric, obj: unknown): Array<{ labels: Labels; value: number }> {
  const out: Array<{ labels: Labels; value: number }> = [];
  const e = metric.each;
  if (e.type === 'Gauge') {
    const g = e.gauge ?? {};
    const v = get(obj, g.path ?? []);
    if (isMap(v) && (g.labelFromKey !== undefined || g.valueFrom !== undefined)) {
      for (const [key, it] of Object.entries(v)) {
        const value = gaugeValue(it, g);
        if (value === undefined) continue;
        const labels: Labels = {};
        if (g.labelFromKey) labels[g.labelFromKey] = key;
        addPathLabels(it, g.labelsFromPath, labels);
        addPathLabels(v, g.labelsFromPath, labels);
        out.push({ labels, value });
      }
    } else if (Array.isArray(v)) {
      for (const it of v) {
        const value = gaugeValue(it, g);
        if (value === undefined) continue;
        const labels: Labels = {};
        addPathLabels(it, g.labelsFromPath, labels);
        out.push({ labels, value });
      }
    } else {
      const value = v === undefined ? (g.nilIsZero ? 0 : undefined) : gaugeValue(v, g);
      if (value !== undefined) {
        const labels: Labels = {};
        addPathLabels(v, g.labelsFromPath, labels);
        out.push({ labels, value });
      }
    }
  } else if (e.type === 'StateSet') {
    const s = e.stateSet;
    const current = get(get(obj, s?.path ?? []), s?.valueFrom ?? []);
    if (typeof current === 'string' && s) {
      for (const entry of s.list) out.push({ labels: { [s.labelName]: entry }, value: current === entry ? 1 : 0 });
    }
  } else {
    const i = e.info ?? {};
    const labels: Labels = {};
    addPathLabels(get(obj, i.path ?? []), i.labelsFromPath, labels);
    if (Object.keys(labels).length > 0) out.push({ labels, value: 1 });
  }
  return out;
}

/** Every sample kube-state-metrics would serve for these objects of the resource's kind. */
export function evaluate(resource: KsmResource, objects: readonly unknown[]): Sample[] {
  const { group, version, kind } = resource.groupVersionKind;
  const samples: Sample[] = [];
  for (const obj of objects) {
    for (const metric of resource.metrics) {
      const base: Labels = { ...resource.commonLabels, ...metric.commonLabels };
      addPathLabels(obj, resource.labelsFromPath, base);
      addPathLabels(obj, metric.labelsFromPath, base);
      for (const v of values(metric, obj)) {
        samples.push({
          name: `${resource.metricNamePrefix}_${metric.name}`,
          labels: { ...base, ...v.labels, customresource_group: group, customresource_version: version, customresource_kind: kind },
          value: v.value,
        });
      }
    }
  }
  return samples;
}
