import type { ModelRun } from '../../runtime/resources.ts';
import { decideTrack, type TrackAction } from './decide.ts';

const run = (status?: ModelRun['status']): ModelRun => ({
  apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun',
  metadata: { name: 'anomaly-detector-0123456789' },
  spec: { model: 'anomaly-detector', trigger: 'schedule', idempotencyKey: 'k', profile: 'cpu' },
  ...(status ? { status } : {}),
});
const training = run({ phase: 'Training', steps: { training: { started: '2026-11-22T02:00:00Z' } } });

const cases: Array<[string, Parameters<typeof decideTrack>, TrackAction[]]> = [
  ['no ModelRun', [{ phase: 'Succeeded', message: '' }, undefined, 'cpu'], [{ kind: 'ignore', reason: 'no ModelRun for this NVJ (deleted or not ours)' }]],
  ['Running is not terminal', [{ phase: 'Running', message: '' }, training, 'cpu'], [{ kind: 'ignore', reason: 'phase Running is not terminal' }]],
  ['ValidationRunning is not terminal', [{ phase: 'ValidationRunning', message: '' }, training, 'cpu'], [{ kind: 'ignore', reason: 'phase ValidationRunning is not terminal' }]],
  ['no phase yet', [{ phase: undefined, message: '' }, training, 'cpu'], [{ kind: 'ignore', reason: 'phase (none) is not terminal' }]],
  ['cpu success goes to the gate', [{ phase: 'Succeeded', message: 'done' }, training, 'cpu'], [{ kind: 'record-success', next: 'Gating' }, { kind: 'reply-succeeded' }]],
  ['gpu success goes to the copy', [{ phase: 'Succeeded', message: 'done' }, training, 'gpu'], [{ kind: 'record-success', next: 'Copying' }, { kind: 'reply-succeeded' }]],
  ['success without collected logs is a success with a warning',
    [{ phase: 'Succeeded', message: 'Validation succeeded but logs could not be collected: pod gone' }, training, 'cpu'],
    [{ kind: 'record-success', next: 'Gating', warning: 'training succeeded but the operator could not collect logs: Validation succeeded but logs could not be collected: pod gone' },
     { kind: 'reply-succeeded', warning: 'training succeeded but the operator could not collect logs: Validation succeeded but logs could not be collected: pod gone' }]],
  ['failure carries the operator message', [{ phase: 'Failed', message: 'cell 7 raised ValueError' }, training, 'cpu'],
    [{ kind: 'record-failure', message: 'cell 7 raised ValueError' }, { kind: 'reply-failed', message: 'cell 7 raised ValueError' }]],
  ['failure without a message', [{ phase: 'Failed', message: '' }, training, 'cpu'],
    [{ kind: 'record-failure', message: 'the notebook failed (no message from the operator)' }, { kind: 'reply-failed', message: 'the notebook failed (no message from the operator)' }]],
  ['already tracked, gate not started: re-emit the same event', [{ phase: 'Succeeded', message: '' },
    run({ phase: 'Gating', steps: { training: { finished: '2026-11-22T03:00:00.000Z', outcome: 'Succeeded' } } }), 'cpu'],
    [{ kind: 'reply-succeeded', completedAt: '2026-11-22T03:00:00.000Z' }]],
  ['already tracked, gate started: silent', [{ phase: 'Succeeded', message: '' },
    run({ phase: 'Gating', steps: { training: { finished: '2026-11-22T03:00:00Z', outcome: 'Succeeded' }, gate: { started: '2026-11-22T03:00:01Z' } } }), 'cpu'],
    [{ kind: 'ignore', reason: 'already tracked; next step started' }]],
  ['already failed: re-emit the failure', [{ phase: 'Failed', message: 'x' },
    run({ phase: 'Failed', steps: { training: { finished: '2026-11-22T03:00:00Z', outcome: 'Failed', message: 'x' } } }), 'cpu'],
    [{ kind: 'reply-failed', message: 'x' }]],
  ['a late update for a run failed by the watchdog changes nothing', [{ phase: 'Succeeded', message: '' }, run({ phase: 'Failed', message: 'deadline' }), 'cpu'],
    [{ kind: 'ignore', reason: 'run is Failed; a late NVJ update changes nothing' }]],
];

describe('decideTrack', () => {
  test.each(cases)('%s', (_name, args, expected) => {
    expect(decideTrack(...args)).toEqual(expected);
  });
});
