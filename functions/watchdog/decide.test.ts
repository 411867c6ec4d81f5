import { describe, expect, test } from '@jest/globals';
import { parseCatalog, type Catalog } from '../../runtime/catalog.ts';
import { runNameFor } from '../../runtime/labels.ts';
import type { LeaseObject } from '../../runtime/lock.ts';
import type { ModelRun, ModelRunStatus } from '../../runtime/resources.ts';
import { decideWatchdog, latestSlot, type WatchdogAction, type WatchdogState } from './decide.ts';

const CATALOG_YAML = `
defaults:
  notebook: { gitUrl: https://example.com/repo.git, gitRef: main, image: quay.io/x/nb:1 }
  features: { count: 3 }
  output: { kind: label, labels: [1, -1] }
models:
  - name: anomaly-detector
    inferenceService: anomaly-detector
    notebook: { path: nb/a.ipynb }
    schedule: { cron: "0 2 * * 0", timezone: UTC }
  - name: predictive-analytics
    inferenceService: predictive-analytics
    notebook: { path: nb/p.ipynb }
    profile: gpu
    schedule: { cron: "0 3 * * 0", timezone: UTC }
    deadlines: { trainingMinutes: 480 }
  - name: berlin
    inferenceService: berlin
    notebook: { path: nb/b.ipynb }
    schedule: { cron: "0 2 * * 0", timezone: Europe/Berlin }
  - name: berlin-daily
    inferenceService: berlin-daily
    notebook: { path: nb/d.ipynb }
    schedule: { cron: "30 2 * * *", timezone: Europe/Berlin }
  - name: off
    enabled: false
    inferenceService: off
    notebook: { path: nb/o.ipynb }
    schedule: { cron: "0 2 * * 0", timezone: UTC }
  - name: unscheduled
    inferenceService: unscheduled
    notebook: { path: nb/u.ipynb }
`;
const FULL = parseCatalog(CATALOG_YAML);
/** The catalog restricted to some models, so each row sees only the catch-ups it is about. */
const only = (...names: string[]): Catalog => ({ models: FULL.models.filter((m) => names.includes(m.name)) });

const SUNDAY_SLOT = '2026-11-22T02:00:00.000Z';
const SLOT_RUN = runNameFor('anomaly-detector', `schedule/anomaly-detector/${SUNDAY_SLOT}`);
const NOW = new Date('2026-11-22T10:00:00.000Z'); // Sunday, eight hours after the anomaly-detector slot
const MONDAY = new Date('2026-11-23T09:00:00.000Z');
const RUN = 'anomaly-detector-aaaaaaaaaa';

function run(name: string, status: ModelRunStatus | undefined, opts: { model?: string; created?: string } = {}): ModelRun {
  const out: ModelRun = {
    apiVersion: 'lifecycle.mlops.dev/v1alpha1',
    kind: 'ModelRun',
    metadata: { name, creationTimestamp: opts.created ?? status?.startedAt ?? '2026-11-22T05:00:00Z', labels: { 'app.kubernetes.io/managed-by': 'model-lifecycle' } },
    spec: { model: opts.model ?? 'anomaly-detector', trigger: 'manual', idempotencyKey: `k/${name}`, profile: 'cpu' },
  };
  if (status) out.status = status;
  return out;
}

const training = (started: string, deadline: string, runDeadline?: string): ModelRunStatus => ({
  phase: 'Training', step: 'training', startedAt: started,
  steps: { training: { started, job: RUN } },
  deadlines: { step: deadline, ...(runDeadline ? { run: runDeadline } : { run: '2026-11-23T00:00:00Z' }) },
});

function lease(holder: string, acquired: string, durationSeconds = 19_500, model = 'anomaly-detector'): LeaseObject {
  return {
    metadata: { name: `model-lock-${model}`, labels: { 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': model, 'mlops.dev/step': 'lock' } },
    spec: { holderIdentity: holder, leaseDurationSeconds: durationSeconds, acquireTime: acquired, renewTime: acquired },
  };
}

const state = (over: Partial<WatchdogState>): WatchdogState => ({ runs: [], leases: [], catalog: only('anomaly-detector'), now: NOW, remembered: { 'anomaly-detector': SUNDAY_SLOT }, ...over });

interface Row { name: string; state: WatchdogState; expected: WatchdogAction[] }

const verifying = (promoted: string, verifyDeadline: string, extra: Partial<ModelRunStatus> = {}): ModelRunStatus => ({
  phase: 'Verifying', step: 'verify', startedAt: '2026-11-22T05:00:00Z',
  steps: { training: { started: '2026-11-22T05:00:00Z', finished: '2026-11-22T08:00:00Z' }, gate: { finished: '2026-11-22T08:10:00Z' }, promote: { started: '2026-11-22T08:10:00Z', finished: promoted } },
  release: { promoted: RUN, replaced: 'anomaly-detector-0000000000' },
  deadlines: { step: verifyDeadline, run: '2026-11-23T00:00:00Z' },
  ...extra,
});

const deadlineRows: Row[] = [
  {
    name: 'a fresh run inside its deadlines: nothing',
    state: state({ runs: [run(RUN, training('2026-11-22T09:00:00Z', '2026-11-22T13:00:00Z'))], leases: [lease(RUN, '2026-11-22T09:00:00Z')] }),
    expected: [],
  },
  {
    name: 'a run past its training deadline: kill the NVJ and fail the run',
    state: state({ runs: [run(RUN, training('2026-11-22T05:00:00Z', '2026-11-22T09:00:00Z'))], leases: [lease(RUN, '2026-11-22T05:00:00Z')] }),
    expected: [{ kind: 'fail-run', from: 'Training', run: RUN, model: 'anomaly-detector', step: 'training', reason: 'deadline', message: 'deadline exceeded in training after 300 min', kill: { kind: 'nvj', name: RUN } }],
  },
  {
    name: 'a run past its run deadline but not its step deadline: fail it all the same',
    state: state({ runs: [run(RUN, training('2026-11-22T05:00:00Z', '2026-11-22T13:00:00Z', '2026-11-22T09:59:00Z'))] }),
    expected: [{ kind: 'fail-run', from: 'Training', run: RUN, model: 'anomaly-detector', step: 'training', reason: 'deadline', message: 'deadline exceeded in training after 300 min', kill: { kind: 'nvj', name: RUN } }],
  },
  {
    name: 'a Verifying run past its deadline: deployment.failed no-ready-pod (restart-predictor rolls back), the run is not failed here',
    state: state({ runs: [run(RUN, verifying('2026-11-22T09:30:00Z', '2026-11-22T09:45:00Z'))] }),
    expected: [{ kind: 'fail-verify', run: RUN, model: 'anomaly-detector', release: RUN, reason: 'no-ready-pod', message: 'no new predictor pod became verifiable: deadline exceeded in verify after 30 min' }],
  },
  {
    name: 'a Verifying run inside its deadline: nothing',
    state: state({ runs: [run(RUN, verifying('2026-11-22T09:50:00Z', '2026-11-22T10:05:00Z'))] }),
    expected: [],
  },
  {
    name: 'verification already failed, rollback inside its budget: no second deployment.failed',
    state: state({ runs: [run(RUN, verifying('2026-11-22T09:30:00Z', '2026-11-22T09:45:00Z', {
      steps: { promote: { finished: '2026-11-22T09:30:00Z' }, verify: { finished: '2026-11-22T09:46:00Z', outcome: 'Failed' }, rollback: { started: '2026-11-22T09:55:00Z' } },
    }))] }),
    expected: [],
  },
  {
    name: 'verification failed and the rollback overran its budget: kill the rollback Job and fail the run',
    state: state({ runs: [run(RUN, verifying('2026-11-22T09:30:00Z', '2026-11-22T09:45:00Z', {
      steps: { promote: { finished: '2026-11-22T09:30:00Z' }, verify: { finished: '2026-11-22T09:46:00Z', outcome: 'Failed' }, rollback: { started: '2026-11-22T09:47:00Z' } },
    }))] }),
    expected: [{ kind: 'fail-run', from: 'Verifying', run: RUN, model: 'anomaly-detector', step: 'rollback', reason: 'deadline', message: 'deadline exceeded in rollback after 13 min', kill: { kind: 'job', name: `${RUN}-rollback` } }],
  },
  {
    name: 'restored release being verified, inside the verify budget from when restoring began: nothing',
    state: state({ runs: [run(RUN, verifying('2026-11-22T09:30:00Z', '2026-11-22T09:45:00Z', {
      rollback: { release: 'p0', startedAt: '2026-11-22T09:50:00Z' },
      steps: { promote: { finished: '2026-11-22T09:30:00Z' }, verify: { finished: '2026-11-22T09:46:00Z', outcome: 'mismatch' }, rollback: { started: '2026-11-22T09:47:00Z', finished: '2026-11-22T09:50:00Z', outcome: 'restored' } },
    }))] }),
    expected: [],
  },
  {
    name: 'restored release never verifiable past the verify budget: the run fails loudly in rollback',
    state: state({ runs: [run(RUN, verifying('2026-11-22T09:30:00Z', '2026-11-22T09:45:00Z', {
      rollback: { release: 'p0', startedAt: '2026-11-22T09:44:00Z' },
      steps: { promote: { finished: '2026-11-22T09:30:00Z' }, verify: { finished: '2026-11-22T09:40:00Z', outcome: 'mismatch' }, rollback: { started: '2026-11-22T09:41:00Z', finished: '2026-11-22T09:44:00Z', outcome: 'restored' } },
    }))] }),
    expected: [{ kind: 'fail-run', from: 'Verifying', run: RUN, model: 'anomaly-detector', step: 'rollback', reason: 'deadline', message: 'deadline exceeded in rollback after 16 min', kill: { kind: 'job', name: `${RUN}-rollback` } }],
  },
  {
    name: 'Gating inherits the stale training deadline but has its own budget: inside it, nothing',
    state: state({ runs: [run(RUN, { phase: 'Gating', startedAt: '2026-11-22T05:00:00Z', steps: { training: { finished: '2026-11-22T09:50:00Z' }, gate: { started: '2026-11-22T09:51:00Z', job: `${RUN}-gate` } }, deadlines: { step: '2026-11-22T09:00:00Z', run: '2026-11-23T00:00:00Z' } })] }),
    expected: [],
  },
  {
    name: 'Gating past its own budget: delete the gate Job and fail the run',
    state: state({ runs: [run(RUN, { phase: 'Gating', startedAt: '2026-11-22T05:00:00Z', steps: { training: { finished: '2026-11-22T09:30:00Z' }, gate: { started: '2026-11-22T09:40:00Z' } }, deadlines: { step: '2026-11-22T09:00:00Z', run: '2026-11-23T00:00:00Z' } })] }),
    expected: [{ kind: 'fail-run', from: 'Gating', run: RUN, model: 'anomaly-detector', step: 'gate', reason: 'deadline', message: 'deadline exceeded in gate after 20 min', kill: { kind: 'job', name: `${RUN}-gate` } }],
  },
  {
    name: 'a GPU run Copying past its copy budget: delete the copy Job',
    state: state({ runs: [run('predictive-analytics-bbbbbbbbbb', { phase: 'Copying', startedAt: '2026-11-22T01:00:00Z', steps: { training: { finished: '2026-11-22T09:00:00Z' }, copy: { started: '2026-11-22T09:15:00Z' } }, deadlines: { step: '2026-11-22T09:00:00Z' } }, { model: 'predictive-analytics' })] }),
    expected: [{ kind: 'fail-run', from: 'Copying', run: 'predictive-analytics-bbbbbbbbbb', model: 'predictive-analytics', step: 'copy', reason: 'deadline', message: 'deadline exceeded in copy after 45 min', kill: { kind: 'job', name: 'predictive-analytics-bbbbbbbbbb-copy' } }],
  },
  {
    name: 'a run stuck in Pending (no status) for more than 10 minutes: failed',
    state: state({ runs: [run(RUN, undefined, { created: '2026-11-22T09:49:00Z' })] }),
    expected: [{ kind: 'fail-run', from: 'Pending', run: RUN, model: 'anomaly-detector', step: 'training', reason: 'deadline', message: 'deadline exceeded in training after 11 min (the run never left Pending)', kill: { kind: 'nvj', name: RUN } }],
  },
  {
    name: 'a run Pending for 5 minutes: nothing yet',
    state: state({ runs: [run(RUN, { phase: 'Pending' }, { created: '2026-11-22T09:55:00Z' })] }),
    expected: [],
  },
  {
    name: 'terminal runs are never judged against their deadlines',
    state: state({ runs: [run(RUN, { ...training('2026-11-22T05:00:00Z', '2026-11-22T09:00:00Z'), phase: 'Failed', finishedAt: '2026-11-22T06:00:00Z' })] }),
    expected: [],
  },
];

const lockRows: Row[] = [
  {
    name: 'an orphan lease (holder ModelRun gone): removed',
    state: state({ leases: [lease('anomaly-detector-gone000000', '2026-11-22T09:00:00Z')] }),
    expected: [{ kind: 'release-lock', model: 'anomaly-detector', lease: 'model-lock-anomaly-detector', holder: 'anomaly-detector-gone000000', why: 'holder-gone' }],
  },
  {
    name: 'a lease taken a moment ago whose run is not created yet: left alone',
    state: state({ leases: [lease('anomaly-detector-new0000000', '2026-11-22T09:59:30Z')] }),
    expected: [],
  },
  {
    name: 'a lease still held by a terminal run: released (a queued request is re-submitted)',
    state: state({ runs: [run(RUN, { phase: 'Succeeded', startedAt: '2026-11-22T05:00:00Z', finishedAt: '2026-11-22T09:00:00Z' })], leases: [lease(RUN, '2026-11-22T05:00:00Z')] }),
    expected: [{ kind: 'release-lock', model: 'anomaly-detector', lease: 'model-lock-anomaly-detector', holder: RUN, why: 'holder-terminal' }],
  },
  {
    name: 'an expired lease whose run is in flight inside its step deadline: the run is failed (lock-expired)',
    state: state({ runs: [run(RUN, training('2026-11-22T09:00:00Z', '2026-11-22T13:00:00Z'))], leases: [lease(RUN, '2026-11-22T09:00:00Z', 600)] }),
    expected: [{ kind: 'fail-run', from: 'Training', run: RUN, model: 'anomaly-detector', step: 'training', reason: 'lock-expired', message: 'the model lock expired while in training (after 60 min)', kill: { kind: 'nvj', name: RUN } }],
  },
  {
    name: 'an expired lease of a run also past its deadline: one failure, not two',
    state: state({ runs: [run(RUN, training('2026-11-22T05:00:00Z', '2026-11-22T09:00:00Z'))], leases: [lease(RUN, '2026-11-22T05:00:00Z', 600)] }),
    expected: [{ kind: 'fail-run', from: 'Training', run: RUN, model: 'anomaly-detector', step: 'training', reason: 'deadline', message: 'deadline exceeded in training after 300 min', kill: { kind: 'nvj', name: RUN } }],
  },
  {
    name: 'an expired lease of a Verifying run: deployment.failed (timeout) so the predictor is rolled back first',
    state: state({ runs: [run(RUN, verifying('2026-11-22T09:50:00Z', '2026-11-22T10:05:00Z'))], leases: [lease(RUN, '2026-11-22T05:00:00Z', 600)] }),
    expected: [{ kind: 'fail-verify', run: RUN, model: 'anomaly-detector', release: RUN, reason: 'timeout', message: 'the model lock expired while verifying (10 min in verify)' }],
  },
];

const catchUp = (model: string, slot: string): WatchdogAction => ({ kind: 'catch-up', model, slot, run: runNameFor(model, `schedule/${model}/${slot}`) });

const catchUpRows: Row[] = [
  {
    name: 'a missed Sunday 02:00 slot found on Monday: one catch-up for it',
    state: state({ now: MONDAY, remembered: {} }),
    expected: [{ kind: 'catch-up', model: 'anomaly-detector', slot: SUNDAY_SLOT, run: SLOT_RUN }],
  },
  {
    name: 'the same tick twice: the slot is remembered, no second catch-up',
    state: state({ now: MONDAY, remembered: { 'anomaly-detector': SUNDAY_SLOT } }),
    expected: [],
  },
  {
    name: 'the slot\'s own run exists (a late tick made it): no catch-up even with nothing remembered',
    state: state({ now: MONDAY, remembered: {}, runs: [run(SLOT_RUN, { phase: 'Training', startedAt: '2026-11-22T01:00:00Z', deadlines: { step: '2026-11-23T12:00:00Z' } })] }),
    expected: [],
  },
  {
    name: 'a cluster down for three weeks: one catch-up, for the latest slot only',
    state: state({ now: MONDAY, remembered: { 'anomaly-detector': '2026-10-25T02:00:00.000Z' }, runs: [run('anomaly-detector-old0000000', { phase: 'Succeeded', startedAt: '2026-11-01T02:00:05Z', finishedAt: '2026-11-01T06:00:00Z' })] }),
    expected: [catchUp('anomaly-detector', SUNDAY_SLOT)],
  },
  {
    name: 'a manual run after the slot makes up for it: no catch-up',
    state: state({ now: MONDAY, remembered: {}, runs: [run('anomaly-detector-manual0000', { phase: 'Failed', startedAt: '2026-11-22T12:00:00Z', finishedAt: '2026-11-22T13:00:00Z' })] }),
    expected: [],
  },
  {
    name: 'within two minutes of the slot the PingSource still has its chance',
    state: state({ now: new Date('2026-11-22T02:01:59Z'), remembered: {} }),
    expected: [],
  },
  {
    name: 'three minutes after the slot with no run: caught up',
    state: state({ now: new Date('2026-11-22T02:03:00Z'), remembered: {} }),
    expected: [catchUp('anomaly-detector', SUNDAY_SLOT)],
  },
  {
    name: 'every scheduled enabled model is caught up; disabled and unscheduled ones never',
    state: state({ now: MONDAY, remembered: {}, catalog: only('anomaly-detector', 'predictive-analytics', 'off', 'unscheduled') }),
    expected: [catchUp('anomaly-detector', SUNDAY_SLOT), catchUp('predictive-analytics', '2026-11-22T03:00:00.000Z')],
  },
  {
    name: 'DST: Sunday 02:00 Europe/Berlin after fall-back is 01:00 UTC',
    state: state({ now: new Date('2026-10-26T08:00:00Z'), remembered: {}, catalog: only('berlin') }),
    expected: [catchUp('berlin', '2026-10-25T01:00:00.000Z')],
  },
  {
    name: 'DST: Sunday 02:00 Europe/Berlin in summer time is 00:00 UTC',
    state: state({ now: new Date('2026-10-19T08:00:00Z'), remembered: {}, catalog: only('berlin') }),
    expected: [catchUp('berlin', '2026-10-18T00:00:00.000Z')],
  },
  {
    name: 'DST: 02:30 does not exist on the spring-forward day, so the latest slot is the day before',
    state: state({ now: new Date('2026-03-29T10:00:00Z'), remembered: {}, catalog: only('berlin-daily') }),
    expected: [catchUp('berlin-daily', '2026-03-28T01:30:00.000Z')],
  },
];

function succeeded(name: string, trainedAt: string, created: string): ModelRun {
  return run(name, { phase: 'Succeeded', startedAt: created, finishedAt: trainedAt, steps: { training: { started: created, finished: trainedAt } } }, { created });
}

const finishedRows: Row[] = [
  {
    // Freshness is read from the ModelRuns by kube-state-metrics (docs/monitoring.md), not computed here.
    name: 'finished runs (Succeeded or Failed) need nothing from the watchdog',
    state: state({ runs: [
      succeeded('anomaly-detector-s1', '2026-11-22T06:00:00Z', '2026-11-22T03:00:00Z'),
      succeeded('anomaly-detector-s2', '2026-11-22T08:00:00Z', '2026-11-22T04:00:00Z'),
      run('anomaly-detector-f1', { phase: 'Failed', startedAt: '2026-11-22T05:00:00Z', steps: { training: { finished: '2026-11-22T09:00:00Z' } } }),
    ] }),
    expected: [],
  },
];

function manyTerminal(count: number, succeededIndex?: number): ModelRun[] {
  // index 0 is the oldest
  return Array.from({ length: count }, (_, i) => {
    const created = new Date(Date.parse('2026-01-01T00:00:00Z') + i * 3_600_000).toISOString();
    const name = `anomaly-detector-${String(i).padStart(10, '0')}`;
    return i === succeededIndex ? succeeded(name, created, created) : run(name, { phase: 'Failed', startedAt: created, finishedAt: created }, { created });
  });
}

describe('decideWatchdog', () => {
  test.each([...deadlineRows, ...lockRows, ...catchUpRows, ...finishedRows])('$name', ({ state: s, expected }) => {
    expect(decideWatchdog(s)).toEqual(expected);
  });

  test('prune keeps the newest 50 terminal runs per model and never an in-flight one', () => {
    const runs = [...manyTerminal(52), run(RUN, training('2026-11-22T09:00:00Z', '2026-11-22T13:00:00Z')),
      ...manyTerminal(3).map((r) => ({ ...r, metadata: { ...r.metadata, name: `other-${r.metadata.name ?? ''}` }, spec: { ...r.spec, model: 'other' } }))];
    expect(decideWatchdog(state({ runs }))).toEqual([
      { kind: 'prune', run: 'anomaly-detector-0000000001', model: 'anomaly-detector' },
      { kind: 'prune', run: 'anomaly-detector-0000000000', model: 'anomaly-detector' },
    ]);
  });

  test('prune spares the newest Succeeded run (the served release) even when it is old', () => {
    const actions = decideWatchdog(state({ runs: manyTerminal(52, 0) }));
    expect(actions).toEqual([
      { kind: 'prune', run: 'anomaly-detector-0000000001', model: 'anomaly-detector' },
    ]);
  });

  test('the order is deadlines, locks, catch-ups, prune', () => {
    const runs = [
      run(RUN, training('2026-11-22T05:00:00Z', '2026-11-22T09:00:00Z')),
      succeeded('anomaly-detector-s1', '2026-11-22T06:00:00Z', '2026-11-21T03:00:00Z'),
      ...manyTerminal(51),
    ];
    const leases = [lease('predictive-analytics-gone00000', '2026-11-22T05:00:00Z', 600, 'predictive-analytics')];
    expect(decideWatchdog(state({ runs, leases, now: MONDAY, remembered: {}, catalog: only('anomaly-detector') })).map((a) => a.kind))
      .toEqual(['fail-run', 'release-lock', 'prune', 'prune']);
  });

  test('latestSlot is the scheduled instant at or before now, never after', () => {
    expect(latestSlot('0 2 * * 0', 'UTC', new Date(SUNDAY_SLOT))?.toISOString()).toBe(SUNDAY_SLOT);
    expect(latestSlot('0 2 * * 0', 'UTC', new Date('2026-11-22T01:59:59Z'))?.toISOString()).toBe('2026-11-15T02:00:00.000Z');
    expect(latestSlot('not a cron', 'UTC', NOW)).toBeUndefined();
  });
});
