// End to end under realistic KServe rollouts (docs/verification.md): the real functions, the local broker, the
// emulator enforcing the rendered Roles, and the KServe simulator rolling the predictor as a Deployment
// (raw) or as a new Knative Revision (serverless), with new pods that start NotReady and old pods that keep
// going through a (short) drain. Verification must conclude on the new pods while old ones are still listed.
import { DEV_NAMESPACE, startLocal, type Local } from '../dev/local.ts';
import { loadCatalog } from '../runtime/catalog.ts';
import type { ModelRun } from '../runtime/resources.ts';
import { isTerminalPhase } from '../runtime/resources.ts';

const catalog = loadCatalog('config/models.yaml');
const MODELS = catalog.models.map((m) => m.name);
const SA_PREFIX = `system:serviceaccount:${DEV_NAMESPACE}:mlops-`;

const runs = (local: Local): ModelRun[] => local.emulator.store.list({ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun' }, { namespace: DEV_NAMESPACE }) as unknown as ModelRun[];

async function until(what: string, cond: () => boolean, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface PodChange { at: number; type: string; name: string; isvc: string; release: string; ready: boolean; terminating: boolean; restarts: number }

async function runHappy(rollout: 'raw' | 'serverless', drainSeconds: number, restartOnce: boolean): Promise<{ local: Local; pods: PodChange[] }> {
  const local = await startLocal({
    catalog, scenario: 'happy', env: {}, simulatorMode: 'test',
    rollout: { rollout, drainSeconds, readyDelaySeconds: 0.5, restartOnce },
  });
  const pods: PodChange[] = [];
  local.emulator.store.onEvent((e) => {
    if (e.storageKey !== '/pods') return;
    const o = e.object;
    const status = o.status as { conditions?: Array<{ type: string; status: string }>; containerStatuses?: Array<{ restartCount?: number }> } | undefined;
    pods.push({
      at: Date.now(), type: e.type, name: o.metadata.name, isvc: o.metadata.labels?.['serving.kserve.io/inferenceservice'] ?? '',
      release: o.metadata.annotations?.['mlops.dev/model-release'] ?? '',
      ready: status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      terminating: o.metadata.deletionTimestamp !== undefined, restarts: status?.containerStatuses?.[0]?.restartCount ?? 0,
    });
  });
  for (const model of MODELS) await local.pings.fireNow(`${DEV_NAMESPACE}/schedule-${model}`);
  await until(`${rollout}: every run terminal`, () => MODELS.every((m) => runs(local).some((r) => r.spec.model === m && isTerminalPhase(r.status?.phase))));
  return { local, pods };
}

function check(local: Local, pods: PodChange[], rollout: 'raw' | 'serverless'): void {
  expect(local.emulator.requests.filter((r) => r.user.startsWith(SA_PREFIX) && r.status === 403)).toEqual([]);
  for (const model of MODELS) {
    const run = runs(local).find((r) => r.spec.model === model) as ModelRun;
    const name = run.metadata.name ?? '';
    expect({ model, phase: run.status?.phase, verify: run.status?.steps?.verify?.outcome }).toEqual({ model, phase: 'Succeeded', verify: 'verified' });
    const isvc = catalog.models.find((m) => m.name === model)?.inferenceService ?? '';
    const verifiedAt = Date.parse(run.status?.steps?.verify?.finished ?? '');
    // The new pods started NotReady.
    const fresh = pods.filter((p) => p.isvc === isvc && p.release === name);
    expect(fresh.find((p) => p.type !== 'DELETED')?.ready).toBe(false);
    // When the verdict was recorded an old pod was still listed: Ready (serverless drain) or terminating (raw).
    const olds = [...new Set(pods.filter((p) => p.isvc === isvc && p.release !== name).map((p) => p.name))];
    expect(olds.length).toBeGreaterThan(0);
    const goneAt = (pod: string): number => pods.find((p) => p.name === pod && p.type === 'DELETED')?.at ?? Infinity;
    expect(olds.some((pod) => goneAt(pod) > verifiedAt)).toBe(true);
    if (rollout === 'serverless') {
      // The old Revision was still Ready (not terminating) at the verdict.
      const stillServing = olds.some((pod) => {
        const last = pods.filter((p) => p.name === pod && p.at <= verifiedAt).at(-1);
        return last !== undefined && last.ready && !last.terminating;
      });
      expect(stillServing).toBe(true);
    }
    // The verdict names only new pods.
    expect(run.status?.steps?.verify?.message).toMatch(new RegExp(`on 1 new pod\\(s\\): ${isvc}-predictor-`));
    for (const old of olds) expect(run.status?.steps?.verify?.message).not.toContain(old);
  }
}

describe('end-to-end under realistic rollouts (short drains, ready delay 0.5 s)', () => {
  // The restart (model loaded again) takes seconds on a loaded machine: Kubernetes' default grace period of 30 s
  // keeps the old pods listed past it (the test does not wait for it: closing cuts the drain short).
  test('raw (Deployment rolling update, grace period 30 s) with a new pod restarting once: every run verified on its new pods', async () => {
    const { local, pods } = await runHappy('raw', 30, true);
    try {
      check(local, pods, 'raw');
      // A new pod restarted during verification; the verdict waited for it to be Ready again.
      for (const run of runs(local)) {
        const restartedReady = pods.find((p) => p.release === run.metadata.name && p.restarts === 1 && p.ready);
        expect(restartedReady).toBeDefined();
        expect(Date.parse(run.status?.steps?.verify?.finished ?? '')).toBeGreaterThanOrEqual(Math.floor((restartedReady?.at ?? Infinity) / 1000) * 1000);
      }
    } finally { await local.close(); }
  }, 180_000);

  // Short enough to wait for the old Revision to go, long enough that the verdict comes first on a loaded machine.
  test('serverless (new Revision beside the old one, drain 8 s): every run verified while the old Revision still serves', async () => {
    const { local, pods } = await runHappy('serverless', 8, false);
    try {
      check(local, pods, 'serverless');
      // The old Revision's pods went after the drain; the verdicts above did not wait for them.
      await until('old pods deleted', () => pods.filter((p) => p.type === 'DELETED').length >= MODELS.length, 30_000);
    } finally { await local.close(); }
  }, 180_000);
});
