import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { EventTypes } from '../../events/index.ts';
import { ScenarioNames, Scenarios, expectedRuns, getScenario, pythonWithSklearn, scenarioCatalog, startSimulators } from './index.ts';
import { NS, createNvj, startSimCluster, waitFor } from './testkit.ts';
import type { SimCluster } from './testkit.ts';

let cluster: SimCluster;

beforeAll(async () => {
  cluster = await startSimCluster();
});

afterAll(async () => {
  await cluster.close();
});

describe('scenarios', () => {
  test('expected terminal phase and event types per model', () => {
    const e = EventTypes;
    const start = [e.trainingRequested, e.trainingStarted];
    expect(expectedRuns(Scenarios['happy-cpu'], cluster.catalog)).toEqual({
      'anomaly-detector': { phase: 'Succeeded', events: [...start, e.trainingSucceeded, e.modelApproved, e.predictorRestarted, e.deploymentVerified] },
      'predictive-analytics': { phase: 'Succeeded', events: [...start, e.trainingSucceeded, e.modelApproved, e.predictorRestarted, e.deploymentVerified] },
    });
    expect(expectedRuns(Scenarios['happy-gpu'], cluster.catalog)['anomaly-detector']?.events).toEqual([...start, e.trainingSucceeded, e.modelCopied, e.modelApproved, e.predictorRestarted, e.deploymentVerified]);
    // Without a scenario profile the catalog decides: predictive-analytics is a GPU model.
    expect(expectedRuns(Scenarios['gate-reject'], cluster.catalog)).toEqual({
      'anomaly-detector': { phase: 'Rejected', events: [...start, e.trainingSucceeded, e.modelRejected] },
      'predictive-analytics': { phase: 'Rejected', events: [...start, e.trainingSucceeded, e.modelCopied, e.modelRejected] },
    });
    expect(expectedRuns(Scenarios['training-fail'], cluster.catalog)['anomaly-detector']).toEqual({ phase: 'Failed', events: [...start, e.trainingFailed] });
    expect(expectedRuns(Scenarios.deadline, cluster.catalog)['anomaly-detector']).toEqual({ phase: 'Failed', events: [...start, e.runFailed] });
    expect(expectedRuns(Scenarios['verify-fail-rollback'], cluster.catalog)['anomaly-detector']).toEqual({
      phase: 'RolledBack',
      events: [...start, e.trainingSucceeded, e.modelApproved, e.predictorRestarted, e.deploymentFailed, e.deploymentRolledback],
      rollback: 'verified',
    });
    expect(expectedRuns(Scenarios['baseline-regression'], cluster.catalog)).toEqual({
      'anomaly-detector': { phase: 'Rejected', events: [...start, e.trainingSucceeded, e.modelRejected], failedChecks: ['baseline-metrics'], keepsServed: true },
      'predictive-analytics': { phase: 'Rejected', events: [...start, e.trainingSucceeded, e.modelCopied, e.modelRejected], failedChecks: ['baseline-metrics'], keepsServed: true },
    });
    expect(expectedRuns(Scenarios['rollback-fails'], cluster.catalog)['anomaly-detector']).toEqual({
      phase: 'Failed',
      events: [...start, e.trainingSucceeded, e.modelApproved, e.predictorRestarted, e.deploymentFailed, e.runFailed],
      rollback: 'unverified',
    });
    // s3: both models in the bucket; predictive-analytics answers wrong and goes back to the placeholder release.
    const inBucket = scenarioCatalog(Scenarios.s3, cluster.catalog);
    expect(inBucket.models.map((m) => m.storage.kind)).toEqual(['s3', 's3']);
    expect(expectedRuns(Scenarios.s3, inBucket)).toEqual({
      'anomaly-detector': { phase: 'Succeeded', events: [...start, e.trainingSucceeded, e.modelApproved, e.predictorRestarted, e.deploymentVerified], storageUri: 'release' },
      'predictive-analytics': { phase: 'RolledBack', events: [...start, e.trainingSucceeded, e.modelCopied, e.modelApproved, e.predictorRestarted, e.deploymentFailed, e.deploymentRolledback], rollback: 'verified', storageUri: 'previous' },
    });
    expect([...ScenarioNames]).toEqual(['happy-cpu', 'happy-gpu', 'gate-reject', 'training-fail', 'deadline', 'verify-fail-rollback', 'rollback-fails', 'baseline-regression', 's3']);
    // Only the baseline scenario configures the comparison; a model that already has one keeps it.
    expect(scenarioCatalog(Scenarios['happy-cpu'], cluster.catalog)).toBe(cluster.catalog);
    const baselined = scenarioCatalog(Scenarios['baseline-regression'], cluster.catalog).models;
    expect(baselined.map((m) => [m.referenceData?.path, m.gate.baseline])).toEqual([
      ['reference/anomaly-detector.npz', { minAgreement: 0.9, maxRateChange: 0.1, maxMetricRegression: 0.1 }],
      ['reference/predictive-analytics.npz', { maxRelativeChange: 0.5, maxMetricRegression: 0.5 }],
    ]);
    // A model without one gets the same defaults (docs/gate.md) in the baseline scenario.
    const bare = { ...cluster.catalog, models: cluster.catalog.models.map((m) => ({ ...m, gate: { ...m.gate, baseline: undefined }, referenceData: undefined })) };
    expect(scenarioCatalog(Scenarios['baseline-regression'], bare).models.map((m) => m.gate.baseline)).toEqual(baselined.map((m) => m.gate.baseline));
    // Without sklearn nothing can be compared: the other scenarios run without gate.baseline; the baseline one keeps it.
    expect(scenarioCatalog(Scenarios['happy-cpu'], cluster.catalog, { sklearn: false }).models.map((m) => m.gate.baseline)).toEqual([undefined, undefined]);
    expect(scenarioCatalog(Scenarios['baseline-regression'], cluster.catalog, { sklearn: false }).models.map((m) => m.gate.baseline)).toEqual(baselined.map((m) => m.gate.baseline));
    expect(scenarioCatalog(Scenarios['happy-cpu'], cluster.catalog, { sklearn: true })).toBe(cluster.catalog);
    expect(() => getScenario('nope')).toThrow('unknown scenario "nope"');
  });

  test('pythonWithSklearn finds an interpreter with sklearn on this machine', async () => {
    const python = await pythonWithSklearn();
    expect(typeof python).toBe('string');
    expect(await pythonWithSklearn()).toBe(python);
  });
});

describe('startSimulators', () => {
  test('starts the three controllers (stand-in mode), reports expectations, trains on a new NVJ and closes cleanly', async () => {
    const sims = await startSimulators({ store: cluster.store, stateDir: cluster.stateDir, namespace: NS, catalog: cluster.catalog, scenario: 'happy-cpu', mode: 'dev', sklearn: false });
    try {
      expect(sims.simulated).toBe(true);
      expect(sims.expected['anomaly-detector']?.phase).toBe('Succeeded');
      await sims.settled();
      expect(sims.kserve.pods().map((p) => p.isvc).sort()).toEqual(['anomaly-detector', 'predictive-analytics']);
      createNvj(cluster.store, cluster.model('anomaly-detector'), 'anomaly-detector-7777777777');
      const phase = await waitFor('NVJ Succeeded', () => {
        const p = (cluster.store.get({ apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob' }, { name: 'anomaly-detector-7777777777', namespace: NS })?.status as { phase?: string } | undefined)?.phase;
        return p === 'Succeeded' || p === 'Failed' ? p : undefined;
      });
      expect(phase).toBe('Succeeded');
    } finally {
      await sims.close();
    }
    expect(sims.kserve.pods()).toEqual([]);
  });
});
