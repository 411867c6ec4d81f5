import { EventTypes } from '../events/index.ts';
import type { ModelRun, ModelRunStatus } from './resources.ts';
import { assertSender, recordProblem, type GuardedData, type GuardedType } from './senders.ts';

// Table tests: each row an event's type + source, or its data + the run's record → the exact outcome.

const RUN = 'anomaly-detector-0123456789';
const run = (status: ModelRunStatus, profile: 'cpu' | 'gpu' = 'cpu', model = 'anomaly-detector'): ModelRun => ({
  apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', metadata: { name: RUN },
  spec: { model, trigger: 'schedule', idempotencyKey: 'k', profile }, status,
});
const data = (extra: Partial<GuardedData> = {}): GuardedData => ({ model: 'anomaly-detector', run: RUN, ...extra });
const done = (outcome: string) => ({ finished: '2026-11-22T10:00:00.000Z', outcome });

describe('sender checks', () => {
  test.each<[string, string, string | undefined]>([
    [EventTypes.modelApproved, '/model-lifecycle/gate-health', undefined],
    [EventTypes.modelApproved, '/model-lifecycle/watchdog', 'refused by rule sender: dev.mlops.model.approved.v1 is honoured only from /model-lifecycle/gate-health, not from "/model-lifecycle/watchdog"'],
    [EventTypes.modelApproved, '/model-lifecycle/verify-endpoint', 'refused by rule sender: dev.mlops.model.approved.v1 is honoured only from /model-lifecycle/gate-health, not from "/model-lifecycle/verify-endpoint"'],
    [EventTypes.modelApproved, '/model-lifecycle/gate-health/../x', 'refused by rule sender: dev.mlops.model.approved.v1 is honoured only from /model-lifecycle/gate-health, not from "/model-lifecycle/gate-health/../x"'],
    [EventTypes.modelApproved, 'gate-health', 'refused by rule sender: dev.mlops.model.approved.v1 is honoured only from /model-lifecycle/gate-health, not from "gate-health"'],
    [EventTypes.deploymentFailed, '/model-lifecycle/verify-endpoint', undefined],
    [EventTypes.deploymentFailed, '/model-lifecycle/watchdog', undefined],
    [EventTypes.deploymentFailed, '/apis/v1/namespaces/mlops/pods/evil', 'refused by rule sender: dev.mlops.deployment.failed.v1 is honoured only from /model-lifecycle/verify-endpoint, /model-lifecycle/watchdog, not from "/apis/v1/namespaces/mlops/pods/evil"'],
    [EventTypes.trainingSucceeded, '/model-lifecycle/track-training', undefined],
    [EventTypes.trainingSucceeded, '/model-lifecycle/argocd-sync', undefined],
    [EventTypes.trainingSucceeded, '/model-lifecycle/mlops-cli', 'refused by rule sender: dev.mlops.training.succeeded.v1 is honoured only from /model-lifecycle/track-training, /model-lifecycle/argocd-sync, not from "/model-lifecycle/mlops-cli"'],
    [EventTypes.modelCopied, '/model-lifecycle/copy-gpu-model', undefined],
    [EventTypes.modelCopied, '/model-lifecycle/gate-health', 'refused by rule sender: dev.mlops.model.copied.v1 is honoured only from /model-lifecycle/copy-gpu-model, not from "/model-lifecycle/gate-health"'],
    [EventTypes.predictorRestarted, '/model-lifecycle/restart-predictor', undefined],
    [EventTypes.predictorRestarted, `/${'x'.repeat(200)}`, `refused by rule sender: dev.mlops.predictor.restarted.v1 is honoured only from /model-lifecycle/restart-predictor, not from "/${'x'.repeat(119)}…"`],
    // Events that change nothing served are not guarded here.
    [EventTypes.deploymentVerified, '/anywhere', undefined],
    [EventTypes.trainingRequested, '/anywhere', undefined],
  ])('%s from %s', (type, source, expected) => {
    let message: string | undefined;
    try { assertSender({ type, source }); } catch (err) { message = (err as Error).message; }
    expect(message).toBe(expected);
  });
});

describe('record checks', () => {
  test.each<[string, GuardedType, GuardedData, ModelRun, string | undefined]>([
    ['approved when the gate approved', EventTypes.modelApproved, data(), run({ phase: 'Promoting', steps: { gate: done('approved') } }), undefined],
    ['approved when the gate rejected', EventTypes.modelApproved, data(), run({ phase: 'Rejected', steps: { gate: done('rejected') } }), 'its gate record says rejected'],
    ['approved while the gate runs', EventTypes.modelApproved, data(), run({ phase: 'Gating', steps: { gate: { started: '2026-11-22T10:00:00.000Z' } } }), 'its gate record says nothing yet'],
    ['approved for another model', EventTypes.modelApproved, data({ model: 'predictive-analytics' }), run({ steps: { gate: done('approved') } }), 'the run is of model anomaly-detector, not predictive-analytics'],
    ['failed when verify failed', EventTypes.deploymentFailed, data(), run({ phase: 'Verifying', steps: { verify: done('mismatch') } }), undefined],
    ['failed when the watchdog timed verify out', EventTypes.deploymentFailed, data(), run({ phase: 'Verifying', steps: { verify: done('Failed') } }), undefined],
    ['failed when verify passed', EventTypes.deploymentFailed, data(), run({ phase: 'Succeeded', steps: { verify: done('verified') } }), 'its verify record says verified'],
    ['failed while verifying', EventTypes.deploymentFailed, data(), run({ phase: 'Verifying', steps: { verify: { started: '2026-11-22T10:00:00.000Z' } } }), 'its verify record says nothing yet'],
    ['training succeeded as recorded', EventTypes.trainingSucceeded, data({ profile: 'cpu' }), run({ phase: 'Gating', steps: { training: done('Succeeded') } }), undefined],
    ['training succeeded while it runs', EventTypes.trainingSucceeded, data({ profile: 'cpu' }), run({ phase: 'Training', steps: { training: { started: '2026-11-22T10:00:00.000Z' } } }), 'its training record says nothing yet'],
    ['training succeeded after it failed', EventTypes.trainingSucceeded, data({ profile: 'cpu' }), run({ phase: 'Failed', steps: { training: done('Failed') } }), 'its training record says Failed'],
    ['training succeeded with a forged profile', EventTypes.trainingSucceeded, data({ profile: 'gpu' }), run({ steps: { training: done('Succeeded') } }), "the run's profile is cpu, not gpu"],
    ['copied as recorded', EventTypes.modelCopied, data(), run({ phase: 'Gating', steps: { copy: done('copied') } }, 'gpu'), undefined],
    ['copied when the copy failed', EventTypes.modelCopied, data(), run({ phase: 'Failed', steps: { copy: done('checksum-mismatch') } }, 'gpu'), 'its copy record says checksum-mismatch'],
    ['restarted as recorded', EventTypes.predictorRestarted, data({ release: RUN }), run({ phase: 'Verifying', release: { promoted: RUN }, steps: { promote: done('promoted') } }), undefined],
    ['restarted before any promotion', EventTypes.predictorRestarted, data({ release: RUN }), run({ phase: 'Promoting' }), 'its promote record says nothing yet'],
    ['restarted naming another release', EventTypes.predictorRestarted, data({ release: 'anomaly-detector-ffffffffff' }), run({ release: { promoted: RUN }, steps: { promote: done('promoted') } }), `it promoted ${RUN}, not anomaly-detector-ffffffffff`],
  ])('%s', (_name, type, claimed, record, expected) => {
    expect(recordProblem(type, claimed, record)).toBe(expected);
  });
});
