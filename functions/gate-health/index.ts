import { ApiServerEventTypes, EventTypes, parseEvent } from '../../events/index.ts';
import { findModel } from '../../runtime/catalog.ts';
import { invalid, permanent } from '../../runtime/errors.ts';
import { stepJobOutcome, stepJobOutcomeByName } from '../../runtime/jobs.ts';
import { jobNameFor } from '../../runtime/labels.ts';
import { isReconcile, reconcileRun } from '../../runtime/reconcile.ts';
import { getRun } from '../../runtime/modelrun.ts';
import { assertRecordAgrees, assertSender, type GuardedData } from '../../runtime/senders.ts';
import { traceOf } from '../../runtime/trace.ts';
import { empty, reply, type StepDeps, type StepDefinition, type StepInput, type StepReply } from '../../runtime/step.ts';
import { decideGate, type GateInput } from './decide.ts';
import { STEP, readServedRelease, runGateEffects } from './effects.ts';
import { faasModule } from '../../runtime/faas.ts';

// gate-health: `training.succeeded` (CPU) or `model.copied` → the `<run>-gate` Job; that Job's end (ApiServerSource
// update, route `gate`) → a fail-closed verdict: `model.approved` or `model.rejected`, once per run.

export const step: StepDefinition = {
  name: STEP,
  input: 'cloudevent',
  async handle(input: StepInput, deps: StepDeps): Promise<StepReply> {
    if (input.kind !== 'event') throw invalid(`${STEP} takes CloudEvents`);
    const ce = input.event;
    let gateInput: GateInput;
    let claimed: { type: typeof EventTypes.trainingSucceeded | typeof EventTypes.modelCopied; data: GuardedData } | undefined;

    if (ce.type === EventTypes.trainingSucceeded || ce.type === EventTypes.modelCopied) {
      const parsed = parseEvent(ce);
      if (!parsed.ok) throw invalid(parsed.reason);
      assertSender(ce);
      if (parsed.type === EventTypes.trainingSucceeded || parsed.type === EventTypes.modelCopied) claimed = { type: parsed.type, data: parsed.data };
      if (parsed.type === EventTypes.trainingSucceeded) gateInput = { kind: 'trigger', event: 'training.succeeded', run: parsed.data.run, profile: parsed.data.profile };
      else if (parsed.type === EventTypes.modelCopied) gateInput = { kind: 'trigger', event: 'model.copied', run: parsed.data.run, profile: 'gpu' };
      else return empty;
    } else if (ce.type === ApiServerEventTypes.update || ce.type === ApiServerEventTypes.add) {
      // A Job that cannot create its pod counts as finished (failed) with the controller's reason.
      const job = await stepJobOutcome(deps.kube, ce, ['gate']);
      if (job.kind === 'ignore') {
        deps.logger.debug({ reason: job.reason }, 'ignored');
        return empty;
      }
      gateInput = { kind: 'job-finished', run: job.run, evidence: job.evidence };
    } else if (isReconcile(ce)) {
      // Woken by the watchdog: conclude from the gate Job if it exists, else start it (decide checks the phase).
      const target = reconcileRun(ce, STEP);
      if (!target) return empty;
      const job = await stepJobOutcomeByName(deps.kube, jobNameFor(target.run, 'gate'), ['gate']);
      if (job?.kind === 'ignore') return empty;
      if (job) gateInput = { kind: 'job-finished', run: job.run, evidence: job.evidence };
      else {
        const run = await getRun(deps.kube, target.run);
        if (!run) return empty;
        gateInput = { kind: 'trigger', event: run.spec.profile === 'gpu' ? 'model.copied' : 'training.succeeded', run: target.run, profile: run.spec.profile };
      }
    } else {
      return empty;
    }

    const run = await getRun(deps.kube, gateInput.run);
    if (!run) {
      deps.logger.info({ run: gateInput.run }, 'no such ModelRun; ignored');
      return empty;
    }
    // Only what the run's record confirms starts a gate (docs/security.md).
    if (claimed) assertRecordAgrees(claimed.type, claimed.data, run);
    const model = findModel(deps.catalog, run.spec.model);
    if (!model) throw permanent(`model "${run.spec.model}" of run ${gateInput.run} is not in the catalog`);
    // The served release is only worth a list call when a verdict is about to be made.
    const deciding = gateInput.kind === 'job-finished' && run.status?.phase === 'Gating' && !run.status.steps?.gate?.finished;
    const served = deciding ? await readServedRelease(deps, model.name, gateInput.run) : undefined;
    const actions = decideGate(gateInput, { run, model, mode: deps.settings.mode, now: deps.clock.now(), ...(served ? { served } : {}) });
    const event = await runGateEffects(actions, { run, model, ...traceOf(ce, run) }, deps);
    return event ? reply(event) : empty;
  },
};

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
