import { loadCatalog } from '../../runtime/catalog.ts';
import { runNameFor } from '../../runtime/labels.ts';
import { decide, eventName, inputOf, nextTriggerStatus, outcomeEvent, shouldRecompute, type ArgoAction } from './decide.ts';
import { summariseModels, summariseNotebooks } from './status.ts';
import { parseTriggers, type TargetKind, type TargetRecord, type TriggerAction, type TriggerStatus, type TriggerTarget } from './triggers.ts';

const catalog = loadCatalog('config/models.yaml');
const NOW = new Date('2026-11-22T10:00:00.000Z');
const DONE_AT = '2026-11-22T09:59:00.000Z';

interface NvjOpts { phase?: string; annotations?: Record<string, string>; labels?: Record<string, string>; subPath?: string | null; claim?: string }
function nvj(o: NvjOpts = {}) {
  const mount = o.subPath === null ? { name: 'models', mountPath: '/mnt/models' } : { name: 'models', mountPath: '/mnt/models', subPath: o.subPath ?? '.runs/nb-1' };
  return {
    apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob',
    metadata: { name: 'nb-1', namespace: 'mlops', uid: 'uid-1', labels: o.labels ?? {}, annotations: o.annotations ?? {} },
    spec: { podConfig: { volumes: [{ name: 'models', persistentVolumeClaim: { claimName: o.claim ?? 'model-storage-pvc' } }], volumeMounts: [mount] } },
    status: o.phase ? { phase: o.phase, message: 'done', ...(o.phase === 'Succeeded' || o.phase === 'Failed' ? { completionTime: DONE_AT } : {}) } : {},
  };
}
const d = (o: NvjOpts = {}, deleted = false): ArgoAction[] => decide(inputOf(nvj(o), catalog, NOW, 'mlops', deleted));

const PART_OF = { 'app.kubernetes.io/part-of': 'model-serving' };
const trig = (yaml: string) => ({ 'mlops.dev/on-success-trigger': yaml });
const isvc = (name: string) => `- {apiVersion: serving.kserve.io/v1beta1, kind: InferenceService, name: ${name}, action: restart}`;
const APP_SYNC = '- {apiVersion: argoproj.io/v1alpha1, kind: Application, name: model-serving, action: sync}';
const APP_REFRESH = '- {apiVersion: argoproj.io/v1alpha1, kind: Application, name: model-serving, action: refresh}';
const DEPLOY = '- {apiVersion: apps/v1, kind: Deployment, name: web, action: restart}';
const okEvent = { kind: 'phase-event', event: { name: 'nb-1.validation-success', type: 'Normal', reason: 'ValidationSucceeded', notificationType: 'validation-success', message: 'notebook validation nb-1 succeeded: done' } } as const;
const failEvent = { kind: 'phase-event', event: { name: 'nb-1.validation-failure', type: 'Warning', reason: 'ValidationFailed', notificationType: 'validation-failure', message: 'notebook validation nb-1 failed: done' } } as const;
const appStatus = (force: boolean) => ({ kind: 'app-status', app: 'model-serving', namespace: 'argocd', nvjNamespace: 'mlops', force }) as const;
const target = (kind: TargetKind, name: string, action: TriggerAction, namespace: string, apiVersion: string): TriggerTarget => ({ apiVersion, kind, name, namespace, action });
const appTarget = (action: TriggerAction) => target('Application', 'model-serving', action, 'argocd', 'argoproj.io/v1alpha1');
const status = (s: TriggerStatus) => ({ 'mlops.dev/trigger-status': JSON.stringify(s) });
const rec = (index: number, outcome: TargetRecord['outcome']): TargetRecord => ({ index, kind: 'Application', name: 'model-serving', namespace: 'argocd', action: 'sync', outcome, message: 'm', at: DONE_AT });
const invalid = (problem: string): ArgoAction[] => [okEvent,
  { kind: 'trigger-invalid', problem, event: { name: 'nb-1.trigger-invalid', type: 'Warning', reason: 'TriggerFailed', notificationType: 'trigger-failure', message: `invalid mlops.dev/on-success-trigger on nb-1: ${problem}; nothing was triggered` } },
  { kind: 'record', annotations: { 'mlops.dev/trigger-status': JSON.stringify({ state: 'invalid', error: problem, updatedAt: NOW.toISOString(), targets: [] }), 'mlops.dev/recorded-phase': 'Succeeded' } }];
const adKey = 'argocd-sync/mlops/nb-1/uid-1/0';

const cases: Array<[string, ArgoAction[], ArgoAction[]]> = [
  ['running NVJ outside any Application: nothing', d({ phase: 'Running' }), [{ kind: 'ignore', reason: 'phase Running is not terminal and the NVJ is not part of an Application' }]],
  ['running NVJ of an Application: debounced status', d({ phase: 'ValidationRunning', labels: PART_OF }), [appStatus(false)]],
  ['deleted NVJ of an Application: debounced status', d({ phase: 'Succeeded', labels: PART_OF }, true), [appStatus(false)]],
  ['succeeded, plain: event and record', d({ phase: 'Succeeded' }), [okEvent, { kind: 'record', annotations: { 'mlops.dev/recorded-phase': 'Succeeded' } }]],
  ['failed, part of an app: event, forced status, record', d({ phase: 'Failed', labels: PART_OF }), [failEvent, appStatus(true), { kind: 'record', annotations: { 'mlops.dev/recorded-phase': 'Failed' } }]],
  ['already recorded: only the debounced status', d({ phase: 'Succeeded', labels: PART_OF, annotations: { 'mlops.dev/recorded-phase': 'Succeeded' } }), [appStatus(false)]],
  ['already recorded, no app: nothing', d({ phase: 'Failed', annotations: { 'mlops.dev/recorded-phase': 'Failed' } }), [{ kind: 'ignore', reason: 'Failed already recorded' }]],
  ['wave succeeded: complete + completion time', d({ phase: 'Succeeded', annotations: { 'argocd.argoproj.io/sync-wave': '2' } }),
    [okEvent, { kind: 'record', annotations: { 'mlops.dev/wave-complete': 'true', 'mlops.dev/completion-time': DONE_AT, 'mlops.dev/recorded-phase': 'Succeeded' } }]],
  ['wave failed: failed + failure time', d({ phase: 'Failed', annotations: { 'argocd.argoproj.io/sync-wave': '2' } }),
    [failEvent, { kind: 'record', annotations: { 'mlops.dev/wave-failed': 'true', 'mlops.dev/failure-time': DONE_AT, 'mlops.dev/recorded-phase': 'Failed' } }]],
  ['wave re-run that succeeds clears the failure', d({ phase: 'Succeeded', annotations: { 'argocd.argoproj.io/sync-wave': '2', 'mlops.dev/wave-failed': 'true', 'mlops.dev/recorded-phase': 'Failed' } }),
    [okEvent, { kind: 'record', annotations: { 'mlops.dev/wave-complete': 'true', 'mlops.dev/completion-time': DONE_AT, 'mlops.dev/wave-failed': null, 'mlops.dev/failure-time': null, 'mlops.dev/recorded-phase': 'Succeeded' } }]],
  ['triggers are ignored on a failed NVJ', d({ phase: 'Failed', annotations: trig(APP_SYNC) }), [failEvent, { kind: 'record', annotations: { 'mlops.dev/recorded-phase': 'Failed' } }]],
  ['each action kind', d({ phase: 'Succeeded', annotations: trig([isvc('anomaly-detector'), DEPLOY, APP_SYNC, APP_REFRESH].join('\n')) }), [okEvent,
    { kind: 'restart-isvc', index: 0, target: target('InferenceService', 'anomaly-detector', 'restart', 'mlops', 'serving.kserve.io/v1beta1'), model: 'anomaly-detector',
      run: runNameFor('anomaly-detector', adKey), idempotencyKey: adKey, profile: 'cpu', artifactPath: '.runs/nb-1/anomaly-detector/model.pkl', completedAt: DONE_AT, lockSeconds: (30 + 15 + 10 + 15 + 15) * 60 },
    { kind: 'restart-deployment', index: 1, target: target('Deployment', 'web', 'restart', 'mlops', 'apps/v1'), restartedAt: NOW.toISOString() },
    { kind: 'sync-app', index: 2, target: appTarget('sync') },
    { kind: 'refresh-app', index: 3, target: appTarget('refresh') },
    { kind: 'record', annotations: { 'mlops.dev/recorded-phase': 'Succeeded' } }]],
  ['restart of an ISVC on the GPU PVC without subPath: gpu profile, root path', d({ phase: 'Succeeded', subPath: null, claim: 'model-storage-gpu-pvc', annotations: trig(isvc('predictive-analytics')) }), [okEvent,
    { kind: 'restart-isvc', index: 0, target: target('InferenceService', 'predictive-analytics', 'restart', 'mlops', 'serving.kserve.io/v1beta1'), model: 'predictive-analytics',
      run: runNameFor('predictive-analytics', adKey), idempotencyKey: adKey, profile: 'gpu', artifactPath: 'predictive-analytics/model.pkl', completedAt: DONE_AT, lockSeconds: (30 + 15 + 10 + 15 + 15) * 60 },
    { kind: 'record', annotations: { 'mlops.dev/recorded-phase': 'Succeeded' } }]],
  ['unknown ISVC fails without I/O', d({ phase: 'Succeeded', annotations: trig(isvc('nope')) }), [okEvent,
    { kind: 'trigger-failed', index: 0, target: target('InferenceService', 'nope', 'restart', 'mlops', 'serving.kserve.io/v1beta1'), message: 'no catalog model is served by InferenceService nope' },
    { kind: 'record', annotations: { 'mlops.dev/recorded-phase': 'Succeeded' } }]],
  ['triggers recorded done: nothing more', d({ phase: 'Succeeded', annotations: { ...trig(APP_SYNC), 'mlops.dev/recorded-phase': 'Succeeded', ...status({ state: 'done', updatedAt: DONE_AT, targets: [rec(0, 'succeeded')] }) } }),
    [{ kind: 'ignore', reason: 'Succeeded already recorded' }]],
  ['a deferred sync is retried, finished targets are not', d({ phase: 'Succeeded', annotations: { ...trig(`${APP_REFRESH}\n${APP_SYNC}`), 'mlops.dev/recorded-phase': 'Succeeded', ...status({ state: 'pending', updatedAt: DONE_AT, targets: [rec(0, 'succeeded'), rec(1, 'deferred')] }) } }),
    [{ kind: 'sync-app', index: 1, target: appTarget('sync') }, { kind: 'record', annotations: {} }]],
  ['malformed: bad YAML', d({ phase: 'Succeeded', annotations: trig('- {name: [') }), invalid((parseTriggers('- {name: [', 'mlops', 'argocd') as { problem: string }).problem)],
  ['malformed: not a list', d({ phase: 'Succeeded', annotations: trig('name: x') }), invalid('must be a YAML list of {apiVersion, kind, name, namespace?, action}')],
  ['malformed: unknown action', d({ phase: 'Succeeded', annotations: trig(APP_SYNC.replace('sync', 'explode')) }), invalid('entry 0: unknown action "explode" (restart, sync or refresh)')],
  ['malformed: missing name', d({ phase: 'Succeeded', annotations: trig('- {apiVersion: apps/v1, kind: Deployment, action: restart}') }), invalid('entry 0: missing name')],
  ['malformed: kind/action mismatch', d({ phase: 'Succeeded', annotations: trig(DEPLOY.replace('restart', 'sync')) }), invalid('entry 0: action sync does not apply to Deployment (allowed: restart)')],
  ['malformed: more than 20 entries', d({ phase: 'Succeeded', annotations: trig(Array(21).fill(DEPLOY).join('\n')) }), invalid('21 entries; at most 20 are allowed')],
  ['malformed: a target in another namespace', d({ phase: 'Succeeded', annotations: trig('- {apiVersion: apps/v1, kind: Deployment, name: web, namespace: kube-system, action: restart}') }),
    invalid('entry 0: Deployment targets must be in namespace mlops, not kube-system')],
  ['malformed and already recorded: nothing', d({ phase: 'Succeeded', annotations: { ...trig('oops: ['), 'mlops.dev/recorded-phase': 'Succeeded', ...status({ state: 'invalid', error: 'x', updatedAt: DONE_AT, targets: [] }) } }),
    [{ kind: 'ignore', reason: 'Succeeded already recorded' }]],
];

describe('decide', () => {
  test.each(cases)('%s', (_name, actual, expected) => {
    expect(actual).toEqual(expected);
  });
});

describe('trigger parsing', () => {
  test.each([
    ['wrong apiVersion', '- {apiVersion: apps/v1beta1, kind: Deployment, name: web, action: restart}', 'entry 0: Deployment must be apiVersion apps/v1, not "apps/v1beta1"'],
    ['unsupported kind', '- {apiVersion: v1, kind: Pod, name: web, action: restart}', 'entry 0: unsupported kind "Pod" (InferenceService, Deployment or Application)'],
    ['bad name', '- {apiVersion: apps/v1, kind: Deployment, name: "../x", action: restart}', 'entry 0: name: must be a DNS-1123 name'],
    ['unknown key', '- {apiVersion: apps/v1, kind: Deployment, name: web, action: restart, extra: 1}', 'entry 0: (entry): Unrecognized key: "extra"'],
    ['an entry that is not a mapping', '- web', 'entry 0: must be a mapping'],
    ['empty list', '[]', 'the list is empty'],
  ])('%s', (_n, yaml, problem) => {
    expect(parseTriggers(yaml, 'mlops', 'argocd')).toEqual({ kind: 'invalid', problem });
  });
  test('an Application in its own namespace is accepted', () => {
    expect(parseTriggers('- {apiVersion: argoproj.io/v1alpha1, kind: Application, name: a, namespace: gitops, action: refresh}', 'mlops', 'gitops'))
      .toEqual({ kind: 'valid', targets: [target('Application', 'a', 'refresh', 'gitops', 'argoproj.io/v1alpha1')] });
  });
});

describe('records, events and summaries', () => {
  test('trigger status: deferred stays unchanged on a deferred retry, done when all final', () => {
    const first = nextTriggerStatus(undefined, [rec(0, 'succeeded'), rec(1, 'deferred')], 2, NOW);
    expect(first).toEqual({ state: 'pending', updatedAt: NOW.toISOString(), targets: [rec(0, 'succeeded'), rec(1, 'deferred')] });
    const later = new Date(NOW.getTime() + 5000);
    expect(nextTriggerStatus(first, [{ ...rec(1, 'deferred'), at: later.toISOString() }], 2, later)).toEqual(first);
    expect(nextTriggerStatus(first, [rec(1, 'succeeded')], 2, later)).toEqual({ state: 'done', updatedAt: later.toISOString(), targets: [rec(0, 'succeeded'), rec(1, 'succeeded')] });
  });
  test('outcome events', () => {
    expect(outcomeEvent('nb', rec(1, 'deferred'))).toBeUndefined();
    expect(outcomeEvent('nb', rec(1, 'succeeded'))).toEqual({ name: 'nb.trigger-1', type: 'Normal', reason: 'TriggerSucceeded', notificationType: 'validation-success', message: 'sync Application argocd/model-serving after nb: succeeded: m' });
    expect(outcomeEvent('nb', rec(0, 'skipped'))).toMatchObject({ name: 'nb.trigger-0', type: 'Warning', reason: 'TriggerFailed', notificationType: 'trigger-failure' });
    const long = eventName('a'.repeat(253), 'validation-failure');
    expect(long.length).toBeLessThanOrEqual(253);
    expect(long.endsWith('.validation-failure')).toBe(true);
  });
  test('debounce', () => {
    expect(shouldRecompute(undefined, NOW, false)).toBe(true);
    expect(shouldRecompute(new Date(NOW.getTime() - 9_999).toISOString(), NOW, false)).toBe(false);
    expect(shouldRecompute(new Date(NOW.getTime() - 9_999).toISOString(), NOW, true)).toBe(true);
    expect(shouldRecompute(new Date(NOW.getTime() - 10_000).toISOString(), NOW, false)).toBe(true);
  });
  test('notebook summary caps failedJobs at 20', () => {
    const items = Array.from({ length: 30 }, (_, i) => ({ metadata: { name: `f-${i}` }, status: { phase: 'Failed' } }));
    items.push({ metadata: { name: 'ok' }, status: { phase: 'Succeeded' } }, { metadata: { name: 'r' }, status: {} as { phase: string } });
    const s = summariseNotebooks(items, NOW);
    expect({ ...s, failedJobs: s.failedJobs.length }).toEqual({ total: 32, succeeded: 1, failed: 30, running: 1, lastUpdate: NOW.toISOString(), failedJobs: 20 });
  });
  test('model summary: newest succeeded run is served; last verdict from the gate', () => {
    const run = (name: string, phase: string, finishedAt: string, verdict?: 'approved' | 'rejected') => ({
      apiVersion: 'lifecycle.mlops.dev/v1alpha1' as const, kind: 'ModelRun' as const,
      metadata: { name, creationTimestamp: finishedAt },
      spec: { model: 'anomaly-detector', trigger: 'schedule' as const, idempotencyKey: name, profile: 'cpu' as const },
      status: { phase: phase as 'Succeeded', finishedAt, steps: { training: { finished: '2026-11-22T09:00:00Z' }, gate: { finished: finishedAt } }, release: { promoted: `rel-${name}` }, ...(verdict ? { gate: { verdict } } : {}) },
    });
    const s = summariseModels(catalog, [run('a', 'Succeeded', '2026-11-22T09:30:00Z', 'approved'), run('b', 'Rejected', '2026-11-22T09:40:00Z', 'rejected'), run('c', 'Succeeded', '2026-11-21T09:30:00Z', 'approved')], NOW);
    expect(s['anomaly-detector']).toEqual({ servedRelease: 'rel-a', trainedAt: '2026-11-22T09:00:00.000Z', deployedAt: '2026-11-22T09:30:00.000Z', ageSeconds: 3600, lastVerdict: 'rejected', lastRun: { name: 'b', phase: 'Rejected' }, paused: null, pinned: null });
    expect(s['predictive-analytics']).toEqual({ servedRelease: null, trainedAt: null, deployedAt: null, ageSeconds: null, lastVerdict: null, lastRun: null, paused: null, pinned: null });
  });

  test('model summary with day-2 controls (docs/day2.md): a run that ended unpromoted because of a pin is not served; paused and pinned are shown', () => {
    const run = (name: string, phase: string, finishedAt: string, verdict?: 'approved' | 'rejected') => ({
      apiVersion: 'lifecycle.mlops.dev/v1alpha1' as const, kind: 'ModelRun' as const,
      metadata: { name, creationTimestamp: finishedAt },
      spec: { model: 'anomaly-detector', trigger: 'schedule' as const, idempotencyKey: name, profile: 'cpu' as const },
      status: { phase: phase as 'Succeeded', finishedAt, steps: { training: { finished: '2026-11-22T09:00:00Z' }, gate: { finished: finishedAt } }, release: { promoted: `rel-${name}` } as { promoted?: string; pinned?: { release: string; by: string } }, ...(verdict ? { gate: { verdict } } : {}) },
    });
    const held = run('d', 'Succeeded', '2026-11-22T09:50:00Z', 'approved');
    held.status.release = { pinned: { release: 'rel-a', by: 'bob' } };
    const controls = new Map([['anomaly-detector', { paused: { by: 'alice', at: '2026-11-22T09:55:00Z', reason: 'INC-1' }, pinned: { release: 'rel-a', by: 'bob' } }]]);
    const s = summariseModels(catalog, [run('a', 'Succeeded', '2026-11-22T09:30:00Z', 'approved'), held], NOW, controls);
    expect(s['anomaly-detector']).toMatchObject({ servedRelease: 'rel-a', deployedAt: '2026-11-22T09:30:00.000Z', lastRun: { name: 'd', phase: 'Succeeded' },
      paused: { by: 'alice', at: '2026-11-22T09:55:00Z', reason: 'INC-1' }, pinned: { release: 'rel-a', by: 'bob' } });
    expect(s['predictive-analytics']).toMatchObject({ paused: null, pinned: null });
  });
});
