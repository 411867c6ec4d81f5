import { PING_EVENT_TYPE } from '../../events/index.ts';
import { invalid, retryable } from '../../runtime/errors.ts';
import { Labels, MANAGER } from '../../runtime/labels.ts';
import type { LeaseObject } from '../../runtime/lock.ts';
import { Resources, type ModelRun } from '../../runtime/resources.ts';
import { empty, type StepDeps, type StepDefinition, type StepInput, type StepReply } from '../../runtime/step.ts';
import { decideWatchdog, type WatchdogAction } from './decide.ts';
import { STEP, readRemembered, runAction, runReconcileAction } from './effects.ts';
import { decideReconcile } from './reconcile.ts';
import { readWorld } from './world.ts';
import { faasModule } from '../../runtime/faas.ts';

// watchdog: a PingSource tick every minute → deadlines, stale locks, missed-schedule catch-up
// and pruning. A tick may cause several events (run.failed, deployment.failed, training.requested), so every one
// is sent to the broker through deps.sink and the reply is always empty (204): one code path however many.

const MANAGED = `${Labels.managedBy}=${MANAGER}`;

export const step: StepDefinition = {
  name: STEP,
  input: 'cloudevent',
  async handle(input: StepInput, deps: StepDeps): Promise<StepReply> {
    if (input.kind !== 'event') throw invalid('watchdog takes CloudEvents');
    // Any ping is a tick (its data does not matter); anything else is not ours.
    if (input.event.type !== PING_EVENT_TYPE) return empty;
    const traceparent = (input.event as unknown as { traceparent?: unknown }).traceparent;
    const now = deps.clock.now();

    const [runs, leases, remembered] = await Promise.allSettled([
      deps.kube.listAll<ModelRun & Record<string, unknown>>(Resources.modelRun, { labelSelector: MANAGED }),
      deps.kube.listAll<LeaseObject>(Resources.lease, { labelSelector: MANAGED }),
      readRemembered(deps.kube),
    ]);
    // Without the runs nothing can be judged safely (a lease would look orphaned): retry the whole tick.
    if (runs.status === 'rejected') throw retryable(`watchdog cannot list ModelRuns: ${messageOf(runs.reason)}`, runs.reason);
    const errors: string[] = [];
    if (leases.status === 'rejected') errors.push(`list leases: ${messageOf(leases.reason)}`);
    if (remembered.status === 'rejected') errors.push(`read catch-up memory: ${messageOf(remembered.reason)}`);

    let actions = decideWatchdog({
      runs: runs.value.filter(isModelRun),
      leases: leases.status === 'fulfilled' ? leases.value : [],
      catalog: deps.catalog,
      now,
      remembered: remembered.status === 'fulfilled' ? remembered.value : {},
    });
    // Without the memory a catch-up could be sent every tick; without the leases none is judged. Skip what we can't judge.
    if (remembered.status === 'rejected') actions = actions.filter((a) => a.kind !== 'catch-up');

    for (const action of actions) {
      try {
        await runAction(action, deps, typeof traceparent === 'string' ? traceparent : undefined);
      } catch (err) {
        errors.push(`${describe(action)}: ${messageOf(err)}`);
      }
    }

    // Level-triggered: wake the step of every run whose next move has been ready for a while (docs/run-lifecycle.md).
    // Runs this tick just ended are left out: their state was read before the actions above.
    const ended = new Set(actions.flatMap((a) => (a.kind === 'fail-run' || a.kind === 'prune' ? [a.run] : [])));
    const reconcile = await reconcileTick(deps, runs.value.filter((r) => isModelRun(r) && !ended.has(r.metadata.name ?? '')), now, input.event.id, errors);
    const counts = { ...countKinds(actions), ...reconcile };
    if (errors.length > 0) {
      deps.logger.warn({ errors, actions: counts }, 'watchdog tick had failures');
      throw retryable(`watchdog: ${errors.length} failure(s); first: ${errors[0] ?? ''}`);
    }
    deps.logger.debug({ actions: counts }, 'watchdog tick');
    return empty;
  },
};

async function reconcileTick(deps: StepDeps, runs: ModelRun[], now: Date, tickId: string, errors: string[]): Promise<Record<string, number>> {
  let world;
  try {
    world = await readWorld(deps.kube, runs, new Map(deps.catalog.models.map((m) => [m.name, m])), now, deps.settings.reconcileGraceSeconds * 1000);
  } catch (err) {
    errors.push(`reconcile reads: ${messageOf(err)}`);
    return {};
  }
  const counts: Record<string, number> = {};
  for (const action of world ? decideReconcile(world) : []) {
    counts[action.kind] = (counts[action.kind] ?? 0) + 1;
    try {
      await runReconcileAction(action, deps, tickId);
    } catch (err) {
      errors.push(`${action.kind} ${action.run}: ${messageOf(err)}`);
    }
  }
  return counts;
}

function isModelRun(obj: ModelRun): boolean {
  return typeof obj.metadata?.name === 'string' && typeof obj.spec?.model === 'string';
}

function describe(action: WatchdogAction): string {
  switch (action.kind) {
    case 'fail-verify':
    case 'fail-run':
    case 'prune':
      return `${action.kind} ${action.run}`;
    case 'release-lock':
      return `release-lock ${action.lease}`;
    case 'catch-up':
      return `catch-up ${action.model} ${action.slot}`;
  }
}

function countKinds(actions: WatchdogAction[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of actions) out[a.kind] = (out[a.kind] ?? 0) + 1;
  return out;
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
