// The day-2 walk-through (docs/day2.md) on the local system: `mlops dev --scenario day2 --once` and test/day2.test.ts
// run it. Every control is set the way a person sets it (the `mlops pause|resume|pin|unpin|rollback` code, with the
// local kubeconfig); every trigger goes through the local broker to the real functions.
import { CloudEvent } from 'cloudevents';
import { cliContext, pause, pin, resume, runRollback, unpin, type CliContext } from '../cli/day2.ts';
import { BROKER_NAME, renderManifests } from '../config/render.ts';
import { EventTypes, buildEvent } from '../events/index.ts';
import type { Catalog } from '../runtime/catalog.ts';
import { Annotations } from '../runtime/labels.ts';
import { Resources, isTerminalPhase, type ModelRun } from '../runtime/resources.ts';
import { startSubscriber, type Subscriber } from './broker/testkit.ts';
import { DEV_NAMESPACE, type Local } from './local.ts';

export interface Day2Check {
  what: string;
  ok: boolean;
  detail: string;
}

export interface Day2Options {
  model: string;
  /** Progress lines (the dev timeline). */
  print: (line: string) => void;
  /** How long one run may take to end (ms). */
  runTimeoutMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the walk-through and returns one check per claim of docs/day2.md it demonstrates. */
export async function runDay2(local: Local, catalog: Catalog, opts: Day2Options): Promise<Day2Check[]> {
  const { model, print } = opts;
  const checks: Day2Check[] = [];
  const check = (what: string, ok: boolean, detail: string): void => {
    checks.push({ what, ok, detail });
    print(`day2: ${ok ? 'ok  ' : 'FAIL'} ${what}: ${detail}`);
  };
  const env = { KUBECONFIG: local.kubeconfigPath, NAMESPACE: DEV_NAMESPACE };
  const control = { env, catalogPath: '', catalog, write: (t: string) => { print(`$ ${t.trimEnd()}`); } };
  const ctx = (): Promise<CliContext> => cliContext(model, control);

  // A catch-all subscriber sees every event and its data (what training.skipped says).
  const seen: Subscriber = await startSubscriber();
  local.broker.setTriggers([...renderManifests(catalog, { namespace: DEV_NAMESPACE, image: 'local' })['knative/triggers.yaml'] ?? [], {
    apiVersion: 'eventing.knative.dev/v1', kind: 'Trigger', metadata: { name: 'day2-everything', namespace: DEV_NAMESPACE },
    spec: { broker: BROKER_NAME, filter: { attributes: {} }, subscriber: { uri: seen.url } },
  }]);
  const runs = (): ModelRun[] => (local.emulator.store.list({ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun' }, { namespace: DEV_NAMESPACE }) as unknown as ModelRun[])
    .filter((r) => r.spec.model === model);
  const isvcName = catalog.models.find((m) => m.name === model)?.inferenceService ?? model;
  const served = (): string | undefined => (local.emulator.store.get({ apiVersion: Resources.inferenceService.apiVersion, kind: Resources.inferenceService.kind }, { name: isvcName, namespace: DEV_NAMESPACE }) as
    { spec?: { predictor?: { annotations?: Record<string, string> } } } | undefined)?.spec?.predictor?.annotations?.[Annotations.modelRelease];
  const send = async (event: CloudEvent<unknown>): Promise<void> => {
    const { HTTP } = await import('cloudevents');
    const message = HTTP.binary(event);
    const res = await fetch(local.broker.url, { method: 'POST', headers: message.headers as Record<string, string>, body: message.body as string });
    if (res.status >= 300) throw new Error(`the broker answered ${res.status}`);
  };
  const request = (id: string, trigger: 'manual' | 'drift' | 'git' | 'catchup', step: string, provenance: Record<string, string> = {}): CloudEvent<unknown> =>
    buildEvent(EventTypes.trainingRequested, { step, id, model, data: { model, trigger, requestedBy: 'day2', ...(Object.keys(provenance).length ? { provenance } : {}) } });
  const waitFor = async <T>(what: string, probe: () => T | undefined, ms = opts.runTimeoutMs ?? 120_000): Promise<T | undefined> => {
    const end = Date.now() + ms;
    for (;;) {
      const v = probe();
      if (v !== undefined) return v;
      if (Date.now() > end) { print(`day2: timed out waiting for ${what}`); return undefined; }
      await sleep(100);
    }
  };
  const newRunEnded = async (before: Set<string>): Promise<ModelRun | undefined> =>
    waitFor('a new run to end', () => runs().find((r) => !before.has(r.metadata.name ?? '') && isTerminalPhase(r.status?.phase)));
  const names = (): Set<string> => new Set(runs().map((r) => r.metadata.name ?? ''));

  try {
    // 1. Pause: every kind of trigger is answered with training.skipped (reason paused, who, why); nothing starts.
    await pause(await ctx(), 'INC-1234: upstream metrics are wrong');
    const before = names();
    const fired = [
      (await local.pings.fireNow(`${DEV_NAMESPACE}/schedule-${model}`)).id,
    ];
    const requests = [
      request('day2-drift', 'drift', 'drift-intake', { alertFingerprint: 'day2', startsAt: new Date().toISOString() }),
      request('day2-git', 'git', 'git-intake', { deliveryId: 'day2-delivery' }),
      request('day2-catchup', 'catchup', 'watchdog', { scheduleSlot: '2020-01-05T02:00:00.000Z' }),
      request('day2-manual', 'manual', 'day2-operator'),
    ];
    for (const r of requests) { await send(r); fired.push(r.id); }
    const skipped = await waitFor('every trigger skipped', () => {
      const s = seen.received.filter((r) => r.event.type === EventTypes.trainingSkipped && (r.event.data as { reason?: string }).reason === 'paused');
      return s.length >= fired.length ? s : undefined;
    }, 30_000) ?? [];
    const said = skipped.map((s) => s.event.data as { pausedBy?: string; pausedReason?: string; message?: string });
    check('paused: every trigger skipped, saying who and why', skipped.length === fired.length && said.every((d) => d.pausedBy === 'admin' && d.pausedReason === 'INC-1234: upstream metrics are wrong') && names().size === before.size,
      `${skipped.length}/${fired.length} training.skipped (schedule, drift, git, catch-up, manual), ${names().size - before.size} runs created; e.g. "${said[0]?.message ?? ''}"`);

    // 2. Resume: the same schedule slot now trains.
    await resume(await ctx());
    await local.pings.fireNow(`${DEV_NAMESPACE}/schedule-${model}`);
    const first = await newRunEnded(before);
    const releaseA = first?.metadata.name;
    check('resumed: the next tick trains and serves', first?.status?.phase === 'Succeeded' && served() === releaseA, `${releaseA ?? 'no run'} ${first?.status?.phase ?? ''}; served ${served() ?? 'nothing'}`);

    // 3. Pin: a run trains and gates, nothing is promoted; the run says which release is pinned and by whom.
    await pin(await ctx(), undefined);
    let mark = names();
    await send(request('day2-pinned', 'manual', 'day2-operator'));
    const pinnedRun = await newRunEnded(mark);
    check('pinned: trains and gates, not promoted', pinnedRun?.status?.phase === 'Succeeded' && pinnedRun.status.gate?.verdict === 'approved' && pinnedRun.status.release?.pinned?.release === releaseA && served() === releaseA,
      `${pinnedRun?.metadata.name ?? 'no run'} ${pinnedRun?.status?.phase ?? ''}: "${pinnedRun?.status?.message ?? ''}"; served ${served() ?? 'nothing'}`);
    await unpin(await ctx());

    // 4. A newer release is served, then a manual rollback to the kept, approved one is verified like a promotion.
    mark = names();
    await send(request('day2-newer', 'manual', 'day2-operator'));
    const newer = await newRunEnded(mark);
    check('unpinned: the next run is promoted', newer?.status?.phase === 'Succeeded' && served() === newer.metadata.name, `${newer?.metadata.name ?? 'no run'} ${newer?.status?.phase ?? ''}; served ${served() ?? 'nothing'}`);
    mark = names();
    const code = await runRollback({ ...control, model, to: releaseA, force: false, broker: local.broker.url });
    const rollback = await newRunEnded(mark);
    check('manual rollback to a kept release: verified', code === 0 && rollback?.spec.trigger === 'manual-rollback' && rollback.status?.phase === 'Succeeded'
      && rollback.status.steps?.verify?.outcome === 'verified' && rollback.status.release?.promoted === releaseA && served() === releaseA,
      `exit ${code}; ${rollback?.metadata.name ?? 'no run'} ${rollback?.status?.phase ?? ''}: "${rollback?.status?.message ?? ''}"; served ${served() ?? 'nothing'}`);

    // 5. A release that is not kept is refused (exit 2) and nothing is created.
    mark = names();
    const errors: string[] = [];
    const refused = await runRollback({ ...control, model, to: `${model}-0000000000`, force: false, broker: local.broker.url, writeErr: (t) => { errors.push(t); print(`$ ${t.trimEnd()}`); } });
    check('rollback to a release not kept: refused', refused === 2 && names().size === mark.size && /not a kept release/.test(errors.join('')), `exit ${refused}: ${errors.join('').trim()}`);
  } finally {
    await seen.close();
  }
  return checks;
}
