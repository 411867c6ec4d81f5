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
import { decideCopy, type CopyInput } from './decide.ts';
import { STEP, runCopyEffects } from './effects.ts';
import { faasModule } from '../../runtime/faas.ts';

// copy-gpu-model: `training.succeeded` of a GPU run → the `<run>-copy` Job; that Job's end (ApiServerSource update,
// route `copy`) → `model.copied` (run moves to Gating) or `run.failed` (run ends Failed), once per run.

export const step: StepDefinition = {
  name: STEP,
  input: 'cloudevent',
  async handle(input: StepInput, deps: StepDeps): Promise<StepReply> {
    if (input.kind !== 'event') throw invalid(`${STEP} takes CloudEvents`);
    const ce = input.event;
    let copyInput: CopyInput;
    let claimed: GuardedData | undefined;

    if (ce.type === EventTypes.trainingSucceeded) {
      const parsed = parseEvent(ce);
      if (!parsed.ok) throw invalid(parsed.reason);
      if (parsed.type !== EventTypes.trainingSucceeded) return empty;
      assertSender(ce);
      if (parsed.data.profile !== 'gpu') return empty; // CPU runs are gated in place: no API call
      copyInput = { kind: 'trigger', run: parsed.data.run, profile: parsed.data.profile };
      claimed = parsed.data;
    } else if (ce.type === ApiServerEventTypes.update || ce.type === ApiServerEventTypes.add) {
      // A Job that cannot create its pod counts as finished (failed) with the controller's reason.
      const job = await stepJobOutcome(deps.kube, ce, ['copy']);
      if (job.kind === 'ignore') {
        deps.logger.debug({ reason: job.reason }, 'ignored');
        return empty;
      }
      copyInput = { kind: 'job-finished', run: job.run, evidence: job.evidence };
    } else if (isReconcile(ce)) {
      // Woken by the watchdog: conclude from the copy Job if it exists, else start it (decide checks the phase).
      const target = reconcileRun(ce, STEP);
      if (!target) return empty;
      const job = await stepJobOutcomeByName(deps.kube, jobNameFor(target.run, 'copy'), ['copy']);
      if (job?.kind === 'ignore') return empty;
      copyInput = job ? { kind: 'job-finished', run: job.run, evidence: job.evidence } : { kind: 'trigger', run: target.run, profile: 'gpu' };
    } else {
      return empty;
    }

    const run = await getRun(deps.kube, copyInput.run);
    if (!run) {
      deps.logger.info({ run: copyInput.run }, 'no such ModelRun; ignored');
      return empty;
    }
    // Only a training the run's record says succeeded is copied (docs/security.md).
    if (claimed) assertRecordAgrees(EventTypes.trainingSucceeded, claimed, run);
    const model = findModel(deps.catalog, run.spec.model);
    if (!model) throw permanent(`model "${run.spec.model}" of run ${copyInput.run} is not in the catalog`);
    const actions = decideCopy(copyInput, { run, model, now: deps.clock.now() });
    const event = await runCopyEffects(actions, { run, model, ...traceOf(ce, run) }, deps);
    return event ? reply(event) : empty;
  },
};

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
