import { ApiServerEventTypes, EventTypes, parseApiServerSource, parseEvent } from '../../events/index.ts';
import { invalid } from '../../runtime/errors.ts';
import { faasModule } from '../../runtime/faas.ts';
import { traceOf } from '../../runtime/trace.ts';
import { empty, reply, type StepDefinition, type StepDeps, type StepInput, type StepReply } from '../../runtime/step.ts';
import type { BootstrapTrigger } from './decide.ts';
import { configSecretName, runBootstrap } from './effects.ts';
import { STEP } from './manifests.ts';

// storage-bootstrap (ADR-023, docs/storage.md "Bootstrap"): the storage Secret created or changed (ApiServerSource,
// Reference mode: the event names the Secret, never carries its data), `storage.bootstrap.requested`
// (`mlops bootstrap`), the watchdog's tick (a check older than a day, or failed) and its own placeholder Jobs
// finishing → connectivity, placeholders, reconcile, serving check; `storage.validated` or `storage.failed`.

const PING = 'dev.knative.sources.ping';

function triggerOf(input: StepInput, deps: StepDeps): BootstrapTrigger | undefined {
  if (input.kind !== 'event') throw invalid(`${STEP} takes CloudEvents`);
  const ce = input.event;
  if (ce.type === EventTypes.storageBootstrapRequested) {
    const parsed = parseEvent(ce);
    if (!parsed.ok) throw invalid(parsed.reason);
    return 'requested';
  }
  if (ce.type === PING) return 'tick';
  if (ce.type === ApiServerEventTypes.refAdd || ce.type === ApiServerEventTypes.refUpdate) {
    const parsed = parseApiServerSource(ce);
    if (!parsed.ok) throw invalid(parsed.reason);
    if (parsed.value.mode !== 'ref') return undefined;
    const { kind, name } = parsed.value.ref;
    if (kind === 'Secret') return name === configSecretName(deps.catalog) ? 'secret' : undefined;
    if (kind === 'Job') return name.startsWith('sbp-') ? 'job' : undefined;
  }
  return undefined;
}

export const step: StepDefinition = {
  name: STEP,
  input: 'cloudevent',
  async handle(input: StepInput, deps: StepDeps): Promise<StepReply> {
    const trigger = triggerOf(input, deps);
    if (!trigger || input.kind !== 'event') return empty;
    const event = await runBootstrap(trigger, deps, traceOf(input.event));
    return event ? reply(event) : empty;
  },
};

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
