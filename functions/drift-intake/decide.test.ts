import { parseAlertmanagerWebhook, type AlertmanagerWebhook } from '../../events/index.ts';
import { parseCatalog } from '../../runtime/catalog.ts';
import { decide, driftEventId, type DriftAction } from './decide.ts';

const catalog = parseCatalog(`
defaults:
  notebook: { gitUrl: https://github.com/example/models.git, gitRef: main, image: img }
  features: { count: 5 }
  output: { kind: regression, width: 5 }
models:
  - name: anomaly-detector
    inferenceService: anomaly-detector
    notebook: { path: nb/anomaly.ipynb }
  - name: predictive-analytics
    inferenceService: predictive-analytics
    notebook: { path: nb/predictive.ipynb }
    drift: { alerts: [ModelDriftDetected, FeatureSkew] }
  - name: churn
    inferenceService: churn
    notebook: { path: nb/churn.ipynb }
    drift: { alerts: [ChurnDrift], modelLabel: ml_model }
  - name: paused
    inferenceService: paused
    enabled: false
    notebook: { path: nb/paused.ipynb }
`);

const GROUP = '{}/{alertname="ModelDriftDetected"}:{alertname="ModelDriftDetected"}';
const T0 = '2024-04-02T09:58:30.123456789Z';

interface AlertIn { status?: 'firing' | 'resolved'; labels: Record<string, string>; annotations?: Record<string, string>; fingerprint?: string; startsAt?: string; generatorURL?: string }

function webhook(alerts: AlertIn[], groupKey = GROUP): AlertmanagerWebhook {
  const parsed = parseAlertmanagerWebhook({
    version: '4', groupKey, status: 'firing', receiver: 'model-lifecycle',
    alerts: alerts.map((a, i) => ({ status: a.status ?? 'firing', labels: a.labels, annotations: a.annotations ?? {}, startsAt: a.startsAt ?? T0, generatorURL: a.generatorURL ?? '', fingerprint: a.fingerprint ?? `fp${i}` })),
  });
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.value;
}

const drift = (model: string, extra: Record<string, string> = {}): Record<string, string> => ({ alertname: 'ModelDriftDetected', model, ...extra });

function request(model: string, fingerprint: string, provenance: Record<string, string> = {}, rest: Record<string, unknown> = {}): DriftAction {
  return {
    kind: 'request-training',
    id: driftEventId(fingerprint, T0, model),
    data: { model, trigger: 'drift', requestedBy: 'alertmanager', ...rest, provenance: { alertFingerprint: fingerprint, alertName: 'ModelDriftDetected', groupKey: GROUP, startsAt: T0, ...provenance } },
  };
}

const rows: Array<[string, AlertIn[], DriftAction[]]> = [
  ['a firing drift alert naming a model', [{ labels: drift('anomaly-detector'), fingerprint: 'a1', generatorURL: 'http://prom/graph', annotations: { summary: 'Input drift', description: 'PSI 0.31\n> 0.2' } }],
    [request('anomaly-detector', 'a1', { generatorURL: 'http://prom/graph' }, { reason: 'Input drift: PSI 0.31 > 0.2' })]],
  ['description alone is the reason', [{ labels: drift('anomaly-detector'), fingerprint: 'a1', annotations: { description: 'PSI high' } }],
    [request('anomaly-detector', 'a1', {}, { reason: 'PSI high' })]],
  ['a resolved alert is ignored', [{ status: 'resolved', labels: drift('anomaly-detector'), fingerprint: 'r1' }],
    [{ kind: 'ignore', reason: 'resolved', fingerprint: 'r1' }]],
  ['an alert name no model watches is unrelated', [{ labels: { alertname: 'KubePodCrashLooping', model: 'anomaly-detector' }, fingerprint: 'u1' }],
    [{ kind: 'ignore', reason: 'unrelated', fingerprint: 'u1' }]],
  ['an alert without alertname is unrelated', [{ labels: { model: 'anomaly-detector' }, fingerprint: 'u2' }],
    [{ kind: 'ignore', reason: 'unrelated', fingerprint: 'u2' }]],
  ['a disabled model is ignored', [{ labels: drift('paused'), fingerprint: 'd1' }],
    [{ kind: 'ignore', reason: 'disabled', fingerprint: 'd1', model: 'paused' }]],
  ['a per-model alert name and model label', [{ labels: { alertname: 'ChurnDrift', ml_model: 'churn', model: 'anomaly-detector' }, fingerprint: 'c1' }],
    [request('churn', 'c1', { alertName: 'ChurnDrift' })]],
  ['a second alert name of one model', [{ labels: { alertname: 'FeatureSkew', model: 'predictive-analytics' }, fingerprint: 'f1' }],
    [request('predictive-analytics', 'f1', { alertName: 'FeatureSkew' })]],
  ['the same alert twice in one payload is one request', [{ labels: drift('anomaly-detector'), fingerprint: 'a1' }, { labels: drift('anomaly-detector'), fingerprint: 'a1' }],
    [request('anomaly-detector', 'a1')]],
  ['a mixed group: unknown models are counted next to the accepted one', [
    { labels: drift('anomaly-detector'), fingerprint: 'a1' },
    { labels: drift('no-such-model'), fingerprint: 'x1' },
    { status: 'resolved', labels: drift('predictive-analytics'), fingerprint: 'r1' },
    { labels: drift('../x'), fingerprint: 'x2' },
  ], [
    request('anomaly-detector', 'a1'),
    { kind: 'ignore', reason: 'unknown-model', fingerprint: 'x1' },
    { kind: 'ignore', reason: 'resolved', fingerprint: 'r1' },
    { kind: 'ignore', reason: 'unknown-model', fingerprint: 'x2' },
  ]],
  ['only an unknown model: refused as a rule (422)', [{ labels: drift('no-such-model'), fingerprint: 'x1' }],
    [{ kind: 'refuse', error: 'permanent', message: 'no firing alert names an enabled catalog model: alert "x1" names unknown model "no-such-model"' }]],
  ['only a missing model label: refused (422)', [{ labels: { alertname: 'ModelDriftDetected' }, fingerprint: 'x1' }],
    [{ kind: 'refuse', error: 'permanent', message: 'no firing alert names an enabled catalog model: alert "x1" has no "model" label' }]],
  ['a traversal-looking model name: refused as malformed (400)', [{ labels: drift('../x'), fingerprint: 'x1' }],
    [{ kind: 'refuse', error: 'invalid', message: 'no firing alert names an enabled catalog model: alert "x1" names unknown model "../x"' }]],
  ['a shell-looking model name: refused as malformed (400)', [{ labels: drift('a;rm -rf /'), fingerprint: 'x1' }, { status: 'resolved', labels: drift('anomaly-detector'), fingerprint: 'r1' }],
    [{ kind: 'refuse', error: 'invalid', message: 'no firing alert names an enabled catalog model: alert "x1" names unknown model "a;rm -rf /"' }]],
  ['resolved and unrelated only: nothing to do, not an error', [{ status: 'resolved', labels: drift('no-such-model'), fingerprint: 'r1' }, { labels: { alertname: 'Other' }, fingerprint: 'u1' }],
    [{ kind: 'ignore', reason: 'resolved', fingerprint: 'r1' }, { kind: 'ignore', reason: 'unrelated', fingerprint: 'u1' }]],
  ['an empty alert list', [], []],
];

describe('drift-intake decide', () => {
  test.each(rows)('%s', (_name, alerts, expected) => {
    expect(decide(webhook(alerts), catalog)).toEqual(expected);
  });

  test('long annotations, group keys and URLs are cut to what the event schema allows', () => {
    const [action] = decide(webhook([{ labels: drift('anomaly-detector'), fingerprint: 'a1', annotations: { summary: 's'.repeat(5000) }, generatorURL: `http://p/${'u'.repeat(3000)}` }], `g${'k'.repeat(5000)}`), catalog);
    if (action?.kind !== 'request-training') throw new Error('expected a request');
    expect(action.data.reason).toHaveLength(1024);
    expect(action.data.provenance?.groupKey).toHaveLength(2048);
    expect(action.data.provenance?.generatorURL).toHaveLength(2048);
  });

  test('ids: same fingerprint and startsAt → same id; a new firing (new startsAt) → a new id', () => {
    const a = driftEventId('a1', T0, 'anomaly-detector');
    expect(a).toMatch(/^drift-[0-9a-f]{32}$/);
    expect(driftEventId('a1', T0, 'anomaly-detector')).toBe(a);
    expect(driftEventId('a1', '2024-04-03T00:00:00Z', 'anomaly-detector')).not.toBe(a);
    expect(driftEventId('a2', T0, 'anomaly-detector')).not.toBe(a);
  });

  test('more than three unknown models are summarised', () => {
    const [action] = decide(webhook(['m1', 'm2', 'm3', 'm4', 'm5'].map((m) => ({ labels: drift(m), fingerprint: m }))), catalog);
    expect(action).toEqual({ kind: 'refuse', error: 'permanent', message: 'no firing alert names an enabled catalog model: alert "m1" names unknown model "m1"; alert "m2" names unknown model "m2"; alert "m3" names unknown model "m3" (+2 more)' });
  });
});
