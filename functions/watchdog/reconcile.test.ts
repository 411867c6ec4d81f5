import { describe, expect, test } from '@jest/globals';
import type { ReconcileTarget } from '../registry.ts';
import { loadCatalog } from '../../runtime/catalog.ts';
import type { ModelRun, ModelRunStatus } from '../../runtime/resources.ts';
import { decideReconcile, type JobFacts, type NvjFacts, type PodFacts, type ReconcileAction, type ReconcileWorld } from './reconcile.ts';

const catalog = loadCatalog('config/models.yaml');
const models = new Map(catalog.models.map((m) => [m.name, m]));
const AD = 'anomaly-detector';
const ISVC = models.get(AD)!.inferenceService;
const RUN = 'anomaly-detector-00000000a1';
const NOW = new Date('2026-11-29T10:00:00.000Z');
const ago = (s: number): string => new Date(NOW.getTime() - s * 1000).toISOString();
const GRACE = 30_000;

function run(status: ModelRunStatus, labelPhase: string | undefined = status.phase): ModelRun {
  return {
    apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun',
    metadata: { name: RUN, labels: { 'mlops.dev/model': AD, ...(labelPhase ? { 'mlops.dev/phase': labelPhase } : {}) } },
    spec: { model: AD, trigger: 'schedule', idempotencyKey: 'k', profile: 'cpu' },
    status,
  };
}

function world(r: ModelRun, extra: { nvj?: NvjFacts; jobs?: Record<string, JobFacts>; isvcRelease?: string | null; pods?: PodFacts[] } = {}): ReconcileWorld {
  return {
    runs: [r],
    nvjs: new Map(extra.nvj ? [[RUN, extra.nvj]] : []),
    jobs: new Map(Object.entries(extra.jobs ?? {})),
    isvcs: new Map(extra.isvcRelease === null ? [] : [[ISVC, extra.isvcRelease === undefined ? {} : { release: extra.isvcRelease }]]),
    pods: extra.pods ?? [],
    models, now: NOW, graceMs: GRACE,
  };
}

const poke = (target: ReconcileTarget, reason: string): ReconcileAction =>
  ({ kind: 'poke', run: RUN, model: AD, target, reason });
const pod = (release: string, ready: boolean, readyFor: number, deleting = false): PodFacts => ({ isvc: ISVC, release, ready, readySince: ago(readyFor), deleting });

/** Verification failed, the previous release p0 restored on the volume 60 s ago; the check pending. */
const restoring = (verdict: { verified?: boolean; finished?: string } = {}): ModelRun => run({
  phase: 'Verifying', release: { promoted: RUN, replaced: 'p0' }, rollback: { release: 'p0', startedAt: ago(60), ...verdict },
  steps: { verify: { finished: ago(300), outcome: 'mismatch' }, rollback: { started: ago(200), finished: ago(60), outcome: 'restored' } },
});

/** Verified `secondsAgo` ago; `notified` is notify's record of the deployment.verified notice on the run. */
const verified = (secondsAgo: number, notified?: string): ModelRun => {
  const r = run({ phase: 'Succeeded', steps: { verify: { finished: ago(secondsAgo), outcome: 'verified', message: 'verified 2 predictions on 1 new pod(s): p' } } });
  return notified === undefined ? r : { ...r, metadata: { ...r.metadata, annotations: { 'mlops.dev/notified-deployment.verified': notified } } };
};
/** The catalog's models, with anomaly-detector's routes not asking for deployment.verified. */
const quietModels = new Map([...models].map(([n, m]) => [n, n === AD ? { ...m, notifications: { routes: [{ events: ['run.failed' as const], channels: ['slack' as const], emailTo: [] }] } } : m]));

const cases: Array<{ name: string; world: ReconcileWorld; expected: ReconcileAction[] }> = [
  { name: 'a terminal run is left alone', world: world(run({ phase: 'Succeeded' })), expected: [] },
  // verify-endpoint replies deployment.verified after the Succeeded write; stopped in between, nobody else sends it.
  { name: 'verified a minute ago, notify recorded nothing: wake verify-endpoint to send the verdict again', world: world(verified(60)), expected: [poke('verify-endpoint', 'deployment.verified not recorded by notify')] },
  { name: 'verified a minute ago and notify recorded it: left alone', world: world(verified(60, 'slack,email,event')), expected: [] },
  { name: 'verified within the grace (the reply may be on its way): left alone', world: world(verified(10)), expected: [] },
  { name: 'verified more than 10 min ago without a record (a route whose channels are unconfigured): left alone', world: world(verified(601)), expected: [] },
  { name: 'no route of the model asks for deployment.verified: left alone', world: { ...world(verified(60)), models: quietModels }, expected: [] },
  { name: 'a terminal run whose phase label lags gets the label synced', world: world(run({ phase: 'Failed' }, 'Training')), expected: [{ kind: 'sync-label', run: RUN, phase: 'Failed' }] },
  {
    name: 'a tick ended the run but stopped before sending run.failed: send it now (the owed notice is on the run)',
    world: world({ ...run({ phase: 'Failed', message: 'deadline exceeded in gate after 3 min' }), metadata: { name: RUN, labels: { 'mlops.dev/model': AD, 'mlops.dev/phase': 'Failed' }, annotations: { 'mlops.dev/pending-notice': '{"step":"gate","reason":"deadline"}' } } }),
    expected: [{ kind: 'resend-run-failed', run: RUN, model: AD, step: 'gate', reason: 'deadline', message: 'deadline exceeded in gate after 3 min' }],
  },
  {
    name: 'an owed notice on a run that ended otherwise (verified meanwhile) is not sent',
    world: world({ ...run({ phase: 'Succeeded', message: 'verified' }), metadata: { name: RUN, labels: { 'mlops.dev/model': AD, 'mlops.dev/phase': 'Succeeded' }, annotations: { 'mlops.dev/pending-notice': '{"step":"verify","reason":"deadline"}' } } }),
    expected: [],
  },
  {
    name: 'a run created a while ago that never left Pending (start-training stopped before its NVJ): wake start-training',
    world: world({ ...run({}), metadata: { name: RUN, creationTimestamp: ago(40), labels: { 'mlops.dev/model': AD } } }),
    expected: [poke('start-training', 'run not started')],
  },
  {
    name: 'a manual rollback (docs/day2.md) still Pending a while after the CLI created it: wake restart-predictor, not start-training',
    world: world({ ...run({}), spec: { model: AD, trigger: 'manual-rollback', idempotencyKey: 'k', profile: 'cpu', rollback: { release: 'p0' } }, metadata: { name: RUN, creationTimestamp: ago(40), labels: { 'mlops.dev/model': AD } } }),
    expected: [poke('restart-predictor', 'run not started')],
  },
  {
    name: 'a manual rollback Verifying: its pods are those of the kept release it serves, not of its own name',
    world: world({ ...run({ phase: 'Verifying', release: { promoted: 'p0', replaced: 'p1' }, steps: { promote: { finished: ago(120) } } }), spec: { model: AD, trigger: 'manual-rollback', idempotencyKey: 'k', profile: 'cpu', rollback: { release: 'p0' } } },
      { isvcRelease: 'p0', pods: [pod('p0', true, 60)] }),
    expected: [poke('verify-endpoint', '1 new pod(s) Ready')],
  },
  {
    name: 'a Pending run created seconds ago is start-training\'s own business',
    world: world({ ...run({}), metadata: { name: RUN, creationTimestamp: ago(2), labels: { 'mlops.dev/model': AD } } }),
    expected: [],
  },
  { name: 'training still running: nothing', world: world(run({ phase: 'Training', steps: { training: { started: ago(600) } } }), { nvj: { phase: 'Running' } }), expected: [] },
  {
    name: 'NVJ succeeded a while ago but the run is still Training (training.succeeded or the NVJ update lost): wake track-training',
    world: world(run({ phase: 'Training' }), { nvj: { phase: 'Succeeded', completionTime: ago(45) } }),
    expected: [poke('track-training', 'NVJ Succeeded')],
  },
  {
    name: 'NVJ finished seconds ago: the event path has its head start',
    world: world(run({ phase: 'Training' }), { nvj: { phase: 'Failed', completionTime: ago(3) } }),
    expected: [],
  },
  {
    name: 'Gating with no gate Job long after training ended (training.succeeded lost): wake gate-health to start it',
    world: world(run({ phase: 'Gating', steps: { training: { finished: ago(120) } } })),
    expected: [poke('gate-health', 'gate not started')],
  },
  {
    name: 'gate Job ended but no verdict recorded (its update lost): wake gate-health to conclude',
    world: world(run({ phase: 'Gating', steps: { training: { finished: ago(300) }, gate: { started: ago(200) } } }), { jobs: { [`${RUN}-gate`]: { done: true, doneAt: ago(60) } } }),
    expected: [poke('gate-health', 'gate Job ended')],
  },
  {
    name: 'gate Job still running: nothing',
    world: world(run({ phase: 'Gating', steps: { gate: { started: ago(200) } } }), { jobs: { [`${RUN}-gate`]: { done: false } } }),
    expected: [],
  },
  {
    name: 'Copying with the copy Job ended (a GPU run): wake copy-gpu-model',
    world: world(run({ phase: 'Copying', steps: { copy: { started: ago(100) } } }), { jobs: { [`${RUN}-copy`]: { done: true, doneAt: ago(40) } } }),
    expected: [poke('copy-gpu-model', 'copy Job ended')],
  },
  {
    name: 'Promoting without a promote Job after the approval (model.approved lost): wake restart-predictor',
    world: world(run({ phase: 'Promoting', steps: { gate: { finished: ago(90) } } })),
    expected: [poke('restart-predictor', 'promote not started')],
  },
  {
    name: 'Verifying but the predictor still names another release (stopped between record and patch): wake restart-predictor',
    world: world(run({ phase: 'Verifying', release: { promoted: RUN }, steps: { promote: { finished: ago(60) } } }), { isvcRelease: 'anomaly-detector-prev' }),
    expected: [poke('restart-predictor', 'predictor not rolled to the release')],
  },
  {
    name: 'Verifying, new pods Ready while old ones drain (their events went to no one): wake verify-endpoint',
    world: world(run({ phase: 'Verifying', release: { promoted: RUN }, steps: { promote: { finished: ago(120) } } }), {
      isvcRelease: RUN, pods: [pod(RUN, true, 40), pod('anomaly-detector-prev', true, 900, true), pod('anomaly-detector-prev', true, 900)],
    }),
    expected: [poke('verify-endpoint', '1 new pod(s) Ready')],
  },
  {
    name: 'Verifying, the new pods are not Ready yet: nothing',
    world: world(run({ phase: 'Verifying', release: { promoted: RUN } }), { isvcRelease: RUN, pods: [pod(RUN, false, 10), pod('anomaly-detector-prev', true, 900)] }),
    expected: [],
  },
  {
    name: 'Verifying, a new pod became Ready seconds ago: the pod event has its head start',
    world: world(run({ phase: 'Verifying', release: { promoted: RUN } }), { isvcRelease: RUN, pods: [pod(RUN, true, 40), pod(RUN, true, 2)] }),
    expected: [],
  },
  {
    name: 'verified but still Verifying (stopped between the record and the end): wake verify-endpoint',
    world: world(run({ phase: 'Verifying', steps: { verify: { finished: ago(50), outcome: 'verified' } } }), { isvcRelease: RUN }),
    expected: [poke('verify-endpoint', 'verified but not ended')],
  },
  {
    name: 'verification failed and no rollback started (deployment.failed lost): wake restart-predictor',
    world: world(run({ phase: 'Verifying', release: { promoted: RUN, replaced: 'p' }, steps: { verify: { finished: ago(50), outcome: 'mismatch' } } }), { isvcRelease: RUN }),
    expected: [poke('restart-predictor', 'rollback not started')],
  },
  {
    name: 'rollback Job ended, not recorded: wake restart-predictor',
    world: world(run({ phase: 'Verifying', steps: { verify: { finished: ago(300), outcome: 'mismatch' }, rollback: { started: ago(200) } } }), { isvcRelease: RUN, jobs: { [`${RUN}-rollback`]: { done: true, doneAt: ago(31) } } }),
    expected: [poke('restart-predictor', 'rollback Job ended')],
  },
  // A rollback, verified like a promotion (docs/run-lifecycle.md): the restore sub-state of Verifying.
  {
    name: 'restore recorded, predictor not patched back (stopped in between): wake restart-predictor',
    world: world(restoring(), { isvcRelease: RUN }),
    expected: [poke('restart-predictor', 'predictor not rolled back to p0')],
  },
  {
    name: 'restored release: its new pods Ready past the grace, no verdict (pod event lost): wake verify-endpoint within the tick',
    world: world(restoring(), { isvcRelease: 'p0', pods: [{ ...pod('p0', true, 40), createdAt: ago(55) }, { ...pod('p0', true, 400), createdAt: ago(900) }, pod(RUN, false, 40, true)] }),
    expected: [poke('verify-endpoint', '1 restored pod(s) Ready')],
  },
  {
    name: 'restored release: a new pod still starting: wait for its event',
    world: world(restoring(), { isvcRelease: 'p0', pods: [{ ...pod('p0', true, 40), createdAt: ago(55) }, { ...pod('p0', false, 40), createdAt: ago(50) }] }),
    expected: [],
  },
  {
    name: 'restored release: only pods of it that predate the rollback (Serverless drain): not the rollout\'s, wait',
    world: world(restoring(), { isvcRelease: 'p0', pods: [{ ...pod('p0', true, 400), createdAt: ago(900) }] }),
    expected: [],
  },
  {
    name: 'restored release checked, run not ended (stopped in between): wake verify-endpoint',
    world: world(restoring({ verified: false, finished: ago(40) }), { isvcRelease: 'p0' }),
    expected: [poke('verify-endpoint', 'restored release checked but the run did not end')],
  },
  {
    name: 'a run of a model no longer in the catalog is the deadline\'s to end',
    world: { ...world(run({ phase: 'Gating', steps: { training: { finished: ago(600) } } })), models: new Map() },
    expected: [],
  },
];

describe('decideReconcile', () => {
  test.each(cases)('$name', ({ world: w, expected }) => {
    expect(decideReconcile(w)).toEqual(expected);
  });
});
