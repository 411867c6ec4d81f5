import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startTestCluster, NAMESPACE, type TestCluster } from '../test/kit.ts';
import { Labels } from './labels.ts';
import { Resources, type ModelRun, type ModelRunPhase, type ModelRunStatus } from './resources.ts';
import { RUN_PHASES, RunTransitions, TransitionRefused, lifecycleDiagram, refusal, transition } from './runstate.ts';

// Evidence that satisfies each transition's guard: the status a correct writer would write.
const NOW = '2026-11-29T00:00:00.000Z';
const evidence: Record<string, ModelRunStatus> = {
  'Pending>Training': { steps: { training: { started: NOW, job: 'r' } } },
  'Pending>Copying': { steps: { training: { outcome: 'Succeeded' } } },
  'Pending>Gating': { steps: { training: { outcome: 'Succeeded' } } },
  'Pending>Failed': { message: 'could not start' },
  'Pending>Promoting': { gate: { verdict: 'approved' } },
  'Training>Copying': { steps: { training: { outcome: 'Succeeded' } } },
  'Training>Gating': { steps: { training: { outcome: 'Succeeded' } } },
  'Training>Failed': { message: 'training failed' },
  'Copying>Gating': { steps: { copy: { outcome: 'copied' } } },
  'Copying>Failed': { message: 'copy failed' },
  'Gating>Promoting': { gate: { verdict: 'approved' }, steps: { gate: { outcome: 'approved' } } },
  'Gating>Rejected': { message: 'rejected', gate: { verdict: 'rejected' }, steps: { gate: { outcome: 'rejected' } } },
  'Gating>Failed': { message: 'gate job failed' },
  'Promoting>Verifying': { release: { promoted: 'r' } },
  'Promoting>Failed': { message: 'promote failed' },
  'Promoting>Succeeded': { message: 'approved but not promoted: release p pinned by bob', gate: { verdict: 'approved' }, release: { pinned: { release: 'p', by: 'bob' } }, steps: { promote: { outcome: 'pinned' } } },
  'Verifying>Succeeded': { message: 'verified', steps: { verify: { outcome: 'verified' } } },
  'Verifying>RolledBack': {
    message: 'rolled back', release: { restored: 'prev' }, steps: { rollback: { finished: NOW, outcome: 'restored' } },
    rollback: { release: 'prev', startedAt: NOW, verified: true, check: 'gate-probe', finished: NOW },
  },
  'Verifying>Failed': { message: 'rollback failed', steps: { rollback: { finished: NOW, outcome: 'not-rolled-back' } } },
};
const profileFor = (from: string, to: string): 'cpu' | 'gpu' => (to === 'Copying' || (from === 'Copying')) ? 'gpu' : 'cpu';
const spec = (profile: 'cpu' | 'gpu') => ({ model: 'm', trigger: 'manual' as const, profile });
// A manual rollback (docs/day2.md) is the one run that leaves Pending for Promoting.
const specFor = (from: string, to: string) => (from === 'Pending' && to === 'Promoting'
  ? { model: 'm', trigger: 'manual-rollback' as const, profile: 'cpu' as const, rollback: { release: 'm-0123456789' } }
  : spec(profileFor(from, to)));

describe('the run state machine (table)', () => {
  test('every transition in the table has evidence here, and nothing else', () => {
    expect(Object.keys(evidence).sort()).toEqual(RunTransitions.map((t) => `${t.from}>${t.to}`).sort());
  });

  test.each(RunTransitions.map((t) => [t.from, t.to] as const))('%s → %s is accepted with its evidence', (from, to) => {
    const next = { ...evidence[`${from}>${to}`], phase: to };
    expect(refusal(from, to, { next, spec: specFor(from, to) })).toBeUndefined();
  });

  test.each(RunTransitions.filter((t) => t.guard).map((t) => [t.from, t.to] as const))('%s → %s is refused without its evidence', (from, to) => {
    expect(refusal(from, to, { next: { phase: to }, spec: specFor(from, to) })).toEqual(expect.any(String));
  });

  const illegal = RUN_PHASES.flatMap((from) => RUN_PHASES.map((to) => [from, to] as const))
    .filter(([from, to]) => !RunTransitions.some((t) => t.from === from && t.to === to));
  test('there are illegal pairs to check (every pair not in the table)', () => {
    expect(illegal.length).toBe(RUN_PHASES.length * RUN_PHASES.length - RunTransitions.length);
  });
  test.each(illegal)('%s → %s is refused', (from, to) => {
    // Even with every kind of evidence a writer could bring.
    const next: ModelRunStatus = { phase: to, message: 'x', gate: { verdict: 'approved' }, release: { promoted: 'r', restored: 'p' },
      steps: { training: { outcome: 'Succeeded', job: 'r' }, copy: { outcome: 'copied' }, gate: { outcome: 'approved' }, verify: { outcome: 'verified' }, rollback: { finished: NOW } } };
    expect(refusal(from, to, { next, spec: spec('cpu') })).toEqual(expect.any(String));
    expect(refusal(from, to, { next, spec: spec('gpu') })).toEqual(expect.any(String));
  });

  test('the profile decides between copy and gate after training', () => {
    const next = { phase: 'Copying' as const, steps: { training: { outcome: 'Succeeded' } } };
    expect(refusal('Training', 'Copying', { next, spec: spec('cpu') })).toBe('profile is cpu, not gpu');
    expect(refusal('Training', 'Gating', { next: { ...next, phase: 'Gating' }, spec: spec('gpu') })).toBe('profile is gpu, not cpu');
  });

  test('a promoting run ends Succeeded only when it records the pin and promoted nothing', () => {
    const pinned = { phase: 'Succeeded' as const, message: 'pinned', gate: { verdict: 'approved' as const }, release: { pinned: { release: 'p', by: 'bob' } }, steps: { promote: { outcome: 'pinned' } } };
    expect(refusal('Promoting', 'Succeeded', { next: pinned, spec: spec('cpu') })).toBeUndefined();
    expect(refusal('Promoting', 'Succeeded', { next: { ...pinned, release: { ...pinned.release, promoted: 'r' } }, spec: spec('cpu') })).toBe('no pin recorded, or a release was promoted');
    expect(refusal('Promoting', 'Succeeded', { next: { ...pinned, gate: {} }, spec: spec('cpu') })).toBe('the gate has not approved');
    expect(refusal('Promoting', 'Succeeded', { next: { ...pinned, steps: { promote: { outcome: 'promoted' } } }, spec: spec('cpu') })).toBe('the promote record does not say pinned');
  });

  test('only a manual rollback leaves Pending for Promoting, with the restored release approved or the rollback forced', () => {
    const rollback = { model: 'm', trigger: 'manual-rollback' as const, profile: 'cpu' as const, rollback: { release: 'm-0123456789' } };
    expect(refusal('Pending', 'Promoting', { next: { phase: 'Promoting', gate: { verdict: 'approved' } }, spec: spec('cpu') })).toBe('not a manual rollback');
    expect(refusal('Pending', 'Promoting', { next: { phase: 'Promoting' }, spec: rollback })).toBe('the release to restore was never approved (and the rollback is not forced)');
    expect(refusal('Pending', 'Promoting', { next: { phase: 'Promoting' }, spec: { ...rollback, rollback: { ...rollback.rollback, force: true } } })).toBeUndefined();
  });

  test('a verifying run cannot be failed before its rollback was attempted', () => {
    expect(refusal('Verifying', 'Failed', { next: { phase: 'Failed', message: 'deadline' }, spec: spec('cpu') }))
      .toBe('a run in Verifying fails only after its rollback was attempted');
  });

  // issue 12, "A rollback restores the previous release but nothing checks that it serves".
  test('bug: rollback unchecked — RolledBack needs the restored release verified on its new pods', () => {
    const restored: ModelRunStatus = { phase: 'RolledBack', message: 'rolled back', release: { restored: 'prev' }, steps: { rollback: { finished: NOW, outcome: 'restored' } } };
    // What the old code wrote (the rollback Job succeeded, nothing probed the restored pods) is refused now.
    expect(refusal('Verifying', 'RolledBack', { next: restored, spec: spec('cpu') })).toBe('the rollback record names no release, not prev');
    const pending = { ...restored, rollback: { release: 'prev', startedAt: NOW } };
    expect(refusal('Verifying', 'RolledBack', { next: pending, spec: spec('cpu') })).toBe('the restored release has not been verified');
    expect(refusal('Verifying', 'RolledBack', { next: { ...restored, rollback: { release: 'prev', startedAt: NOW, verified: false, finished: NOW } }, spec: spec('cpu') }))
      .toBe('the restored release has not been verified');
    expect(refusal('Verifying', 'RolledBack', { next: { ...restored, rollback: { release: 'other', startedAt: NOW, verified: true } }, spec: spec('cpu') }))
      .toBe('the rollback record names other, not prev');
    // A restored release that failed its probe ends the run Failed (loudly, by verify-endpoint).
    expect(refusal('Verifying', 'Failed', { next: { ...restored, phase: 'Failed', rollback: { release: 'prev', startedAt: NOW, verified: false, finished: NOW } }, spec: spec('cpu') })).toBeUndefined();
  });

  test('nothing but the state machine writes status.phase (grep over every source file)', () => {
    const sources: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir)) {
        if (entry === 'node_modules' || entry.startsWith('.')) continue;
        const path = join(dir, entry);
        if (statSync(path).isDirectory()) walk(path);
        else if (path.endsWith('.ts') && !path.endsWith('.test.ts')) sources.push(path);
      }
    };
    for (const dir of ['functions', 'runtime', 'cli', 'events', 'config', 'bench']) walk(dir);
    expect(sources.length).toBeGreaterThan(50);
    const offenders: string[] = [];
    for (const path of sources) {
      if (path === join('runtime', 'runstate.ts')) continue;
      const text = readFileSync(path, 'utf8');
      // A status write on a ModelRun outside the two modules that own them, or a phase set by a JSON patch path.
      if (/\/status\/phase/.test(text)) offenders.push(`${path}: writes /status/phase`);
      if (path !== join('runtime', 'modelrun.ts') && /Resources\.modelRun[^;]*subresource: 'status'/s.test(text)) offenders.push(`${path}: writes ModelRun status directly`);
      // Inside an updateRunStatus mutation a phase may not be set (runtime/modelrun.ts also refuses it at run time).
      for (const m of text.matchAll(/await updateRunStatus\([^]*?\n\s*\}\)/g)) if (/\bphase:\s*['a-zA-Z]/.test(m[0])) offenders.push(`${path}: sets phase in updateRunStatus`);
    }
    expect(offenders).toEqual([]);
  });

  test('docs/run-lifecycle.md carries the diagram drawn from this table', () => {
    const doc = readFileSync('docs/run-lifecycle.md', 'utf8');
    expect(doc).toContain(lifecycleDiagram());
  });
});

describe('transition() against the API', () => {
  let cluster: TestCluster;
  beforeAll(async () => { cluster = await startTestCluster(); });
  afterAll(async () => { await cluster.close(); });

  async function makeRun(name: string, status?: ModelRunStatus): Promise<void> {
    await cluster.kube.create(Resources.modelRun, {
      apiVersion: Resources.modelRun.apiVersion, kind: Resources.modelRun.kind,
      metadata: { name, namespace: NAMESPACE, labels: { [Labels.model]: 'm' } },
      spec: { model: 'm', trigger: 'manual', idempotencyKey: name, profile: 'cpu' },
    });
    if (status) await cluster.kube.mergePatch(Resources.modelRun, name, { status }, { subresource: 'status' });
  }
  const get = async (name: string): Promise<ModelRun> => (await cluster.kube.get<ModelRun & Record<string, unknown>>(Resources.modelRun, name))!;

  test('moves a run, stamps the times and the phase label', async () => {
    await makeRun('t-move');
    const res = await transition(cluster.kube, 't-move', { from: 'Pending', to: 'Training', now: NOW, patch: (s) => ({ ...s, steps: { training: { started: NOW, job: 't-move' } } }) });
    expect(res.kind).toBe('moved');
    const run = await get('t-move');
    expect(run.status?.phase).toBe('Training');
    expect(run.status?.startedAt).toBe(NOW);
    expect(run.metadata.labels?.[Labels.phase]).toBe('Training');
  });

  test('a writer that decided on a phase the run has left gets stale, and writes nothing', async () => {
    await makeRun('t-stale', { phase: 'Gating' });
    const before = await get('t-stale');
    const res = await transition(cluster.kube, 't-stale', { from: 'Training', to: 'Failed', now: NOW, patch: (s) => ({ ...s, message: 'late deadline' }) });
    expect(res.kind).toBe('stale');
    expect((await get('t-stale')).metadata.resourceVersion).toBe(before.metadata.resourceVersion);
  });

  test('a race lost on resourceVersion is retried from the new state; a writer whose phase moved gets stale', async () => {
    await makeRun('t-race', { phase: 'Training', steps: { training: { job: 't-race' } } });
    // Someone else writes the run between our read and our first write (a notify claim, say).
    let raced = false;
    const racing = new Proxy(cluster.kube, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop !== 'jsonPatch') return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        return async (...args: Parameters<typeof target.jsonPatch>) => {
          if (!raced) {
            raced = true;
            await target.mergePatch(Resources.modelRun, 't-race', { status: { warnings: ['concurrent'] } }, { subresource: 'status' });
          }
          return target.jsonPatch(...args);
        };
      },
    });
    let calls = 0;
    const res = await transition(racing, 't-race', {
      from: 'Training', to: 'Gating', now: NOW,
      patch: (s) => { calls++; return { ...s, steps: { ...s.steps, training: { ...s.steps?.training, outcome: 'Succeeded' } } }; },
    });
    expect(res.kind).toBe('moved');
    expect(calls).toBe(2);
    expect((await get('t-race')).status?.warnings).toEqual(['concurrent']);
    // The watchdog ends the run; a late writer that decided from Gating finds it Failed and writes nothing.
    await cluster.kube.mergePatch(Resources.modelRun, 't-race', { status: { phase: 'Failed', message: 'watchdog' } }, { subresource: 'status' });
    const late = await transition(cluster.kube, 't-race', { from: 'Gating', to: 'Promoting', now: NOW, patch: (s) => ({ ...s, gate: { verdict: 'approved' }, steps: { gate: { outcome: 'approved' } } }) });
    expect(late.kind).toBe('stale');
    expect((await get('t-race')).status?.phase).toBe('Failed');
  });

  test('a guard that does not hold throws TransitionRefused and writes nothing', async () => {
    await makeRun('t-refused', { phase: 'Gating' });
    await expect(transition(cluster.kube, 't-refused', { from: 'Gating', to: 'Promoting', now: NOW, patch: (s) => s }))
      .rejects.toBeInstanceOf(TransitionRefused);
    expect((await get('t-refused')).status?.phase).toBe('Gating');
  });

  test('terminal phases are final', async () => {
    await makeRun('t-final', { phase: 'Succeeded', message: 'done' });
    for (const to of ['Failed', 'RolledBack'] as ModelRunPhase[]) {
      await expect(transition(cluster.kube, 't-final', { from: 'Succeeded', to, now: NOW, patch: (s) => ({ ...s, message: 'again' }) }))
        .rejects.toBeInstanceOf(TransitionRefused);
    }
  });

  test('unchanged and gone', async () => {
    await makeRun('t-unchanged', { phase: 'Training', steps: { training: { job: 'x' } } });
    expect((await transition(cluster.kube, 't-unchanged', { from: 'Training', to: 'Gating', now: NOW, patch: () => undefined })).kind).toBe('unchanged');
    expect((await transition(cluster.kube, 'no-such-run', { from: 'Pending', to: 'Failed', now: NOW, patch: (s) => ({ ...s, message: 'x' }) })).kind).toBe('gone');
  });
});
