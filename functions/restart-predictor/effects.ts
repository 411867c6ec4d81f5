import { transition } from '../../runtime/runstate.ts';
import { stagedArtifactPath } from '../../runtime/labels.ts';
import type { CloudEvent } from 'cloudevents';
import { EventTypes, buildEvent } from '../../events/index.ts';
import type { CatalogModel } from '../../runtime/catalog.ts';
import { ConflictError, type KubeObject } from '../../runtime/kube.ts';
import { DEFAULT_UTILITY_IMAGE, S3_UPLOAD_EGRESS, SHARED_MOUNT, stepJobManifest } from '../../runtime/jobs.ts';
import { Annotations } from '../../runtime/labels.ts';
import { failRunForbidden, finishRun } from '../../runtime/finish.ts';
import { ForbiddenError } from '../../runtime/errors.ts';
import { getRun, updateRunStatus } from '../../runtime/modelrun.ts';
import { recordRestoring } from '../../runtime/rollback.ts';
import { Resources, type ModelRun } from '../../runtime/resources.ts';
import type { StepDeps } from '../../runtime/step.ts';
import type { JobKind, RestartAction } from './decide.ts';
import { releaseKey, releasesByAge, releasesPrefix, releasesToPrune, type ModelBucket } from '../../runtime/s3-releases.ts';

export const STEP = 'restart-predictor';

/** The `<run>-promote` / `<run>-rollback` Job: promote.py serving `release` from staging or a kept release. */
export function promoteJobManifest(run: ModelRun, model: CatalogModel, job: JobKind, release: string, source: 'staging' | 'release', uploadUrl?: string): KubeObject {
  const manifest = stepJobManifest({
    step: job,
    run,
    model,
    script: 'promote.py',
    image: DEFAULT_UTILITY_IMAGE,
    env: {
      ROOT: SHARED_MOUNT, MODEL: model.name, RUN: release, SOURCE: source, KEEP: String(model.releasesKept),
      // A run staged outside .runs/<run>/ (argocd-sync's gated restart of a validated notebook) says where.
      ...(source === 'staging' && run.status?.artifact?.path && run.status.artifact.path !== stagedArtifactPath(release, model.name) ? { STAGED: run.status.artifact.path } : {}),
    },
    volumes: [{ claimName: model.storage.pvc, mountPath: SHARED_MOUNT }],
    deadlineSeconds: model.deadlines.promoteMinutes * 60,
  });
  if (!uploadUrl) return manifest;
  // A bucket model (docs/storage.md "Promotion into the bucket"): the same Job, no credentials, one presigned PUT
  // for the release object, and the one label that admits egress; its pod still gets no ServiceAccount token.
  const spec = manifest.spec as { template: { metadata: { labels: Record<string, string> }; spec: { containers: Array<{ env: Array<{ name: string; value: string }> }> } } };
  spec.template.metadata.labels = { ...spec.template.metadata.labels, [S3_UPLOAD_EGRESS.label]: S3_UPLOAD_EGRESS.value };
  spec.template.spec.containers[0]?.env.push({ name: 'UPLOAD_URL', value: uploadUrl });
  return manifest;
}

/** The merge patch that rolls the predictor: only the release annotation changes (docs/design.md, Kubernetes contract). */
export const releasePatch = (release: string, storageUri?: string): object => ({
  spec: { predictor: { annotations: { [Annotations.modelRelease]: release }, ...(storageUri ? { model: { storageUri } } : {}) } },
});

export interface EffectContext {
  deps: StepDeps;
  model: CatalogModel;
  runName: string;
  traceparent?: string;
  /** A bucket model's S3 port and bucket (read from the storage Secret when first needed). */
  s3?: () => Promise<ModelBucket>;
}

/** Runs the actions in order and returns the reply; every effect tolerates having run before. */
export async function runRestartEffects(actions: RestartAction[], ctx: EffectContext): Promise<CloudEvent<unknown> | undefined> {
  const { deps, model, runName } = ctx;
  const { kube } = deps;
  const trace = ctx.traceparent ? { traceparent: ctx.traceparent } : {};
  const now = deps.clock.now().toISOString();
  let out: CloudEvent<unknown> | undefined;
  for (const action of actions) {
    switch (action.kind) {
      case 'ignore':
        deps.logger.debug({ reason: action.reason }, 'ignored');
        break;
      case 'create-job': {
        const run = await getRun(kube, runName);
        if (!run) throw new ConflictError(`ModelRun ${runName} disappeared before its ${action.job} Job was created`);
        try {
          let uploadUrl: string | undefined;
          if (action.job === 'promote' && ctx.s3) {
            // Valid for the Job's deadline plus 5 minutes (pod start), like the placeholder Job's URL.
            const { port, bucket } = await ctx.s3();
            uploadUrl = await port.presignPut(bucket, releaseKey(model, action.release), model.deadlines.promoteMinutes * 60 + 300);
          }
          await kube.create(Resources.job, promoteJobManifest(run, model, action.job, action.release, action.source, uploadUrl));
        } catch (err) {
          if (err instanceof ForbiddenError) return failRunForbidden(deps, run, action.job, err, { what: `create the ${action.job} Job`, ...(ctx.traceparent ? { traceparent: ctx.traceparent } : {}) });
          throw err;
        }
        // Decided on a Promoting run; if it ended meanwhile (the watchdog's deadline), the Job must not promote.
        const after = await getRun(kube, runName);
        if (action.job === 'promote' && after?.status?.phase !== 'Promoting') {
          await kube.delete(Resources.job, action.name, { propagationPolicy: 'Background' });
          deps.logger.warn({ job: action.name, phase: after?.status?.phase }, 'run left Promoting while its promote Job was created: Job deleted');
          return undefined;
        }
        break;
      }
      case 'record-job-started':
        await updateRunStatus(kube, runName, (status) => {
          if (status.steps?.[action.job]?.started) return undefined;
          return { ...status, step: action.job, steps: { ...status.steps, [action.job]: { started: now, job: action.name } } };
        });
        break;
      case 'patch-isvc':
        // Absent means it was deleted between our read and now: nothing to roll, the next delivery decides again.
        if (!(await kube.mergePatch(Resources.inferenceService, action.isvc, releasePatch(action.release, action.storageUri)))) {
          throw new ConflictError(`InferenceService ${action.isvc} vanished while being patched`);
        }
        break;
      case 'delete-object': {
        if (!ctx.s3) break;
        const { port } = await ctx.s3();
        await port.delete(action.bucket, action.key);
        deps.logger.warn({ bucket: action.bucket, key: action.key, why: action.why }, 'uploaded release failed its check: deleted');
        break;
      }
      case 'prune-releases': {
        if (!ctx.s3) break;
        // Best effort, after the promotion is recorded and the predictor patched: a failure here must not lose the
        // reply (a redelivery finds the promotion finished); the next promotion prunes again.
        try {
          const { port } = await ctx.s3();
          const prefix = releasesPrefix(model);
          const objects = await port.listObjects(action.bucket, prefix);
          const prune = releasesToPrune(releasesByAge(model, objects), model.releasesKept, action.protect);
          for (const release of prune) {
            for (const o of objects) if (o.key.startsWith(`${prefix}${release}/`)) await port.delete(action.bucket, o.key);
          }
          if (prune.length) deps.logger.info({ pruned: prune }, 'releases beyond releasesKept deleted from the bucket');
        } catch (err) {
          deps.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'pruning releases in the bucket failed; the next promotion retries');
        }
        break;
      }
      case 'record-promoted': {
        await transition(kube, runName, { from: 'Promoting', to: 'Verifying', now, patch: (status) => {
          if (status.steps?.promote?.finished) return undefined;
          return {
            ...status,
            step: 'verify',
            release: { ...status.release, promoted: action.release, replaced: action.previousRelease },
            deadlines: { ...status.deadlines, step: action.verifyDeadline },
            steps: { ...status.steps, promote: { ...status.steps?.promote, finished: now, outcome: 'promoted', message: action.message } },
          };
        } });
        break;
      }
      case 'finish-failed': {
        await finishRun(deps, runName, {
          from: action.step === 'promote' ? 'Promoting' : 'Verifying', phase: 'Failed', step: STEP, message: action.message, ...trace,
          patch: (status) => ({ ...status, step: action.step, steps: { ...status.steps, [action.step]: { ...status.steps?.[action.step], finished: now, outcome: 'failed', message: action.stepMessage } } }),
        });
        break;
      }
      case 'record-restoring': {
        await recordRestoring(kube, runName, action.release, now, action.message);
        break;
      }
      case 'finish-not-rolled-back':
        await finishRun(deps, runName, {
          from: 'Verifying', phase: 'Failed', step: STEP, message: action.message, ...trace,
          patch: (status) => ({
            ...status,
            step: 'rollback',
            release: { ...status.release, restored: null },
            steps: { ...status.steps, rollback: { finished: now, outcome: 'not-rolled-back', message: action.message } },
          }),
        });
        break;
      case 'finish-pinned': {
        const run = await finishRun(deps, runName, {
          from: 'Promoting', phase: 'Succeeded', step: STEP, message: action.message, ...trace,
          patch: (status) => ({
            ...status,
            step: 'promote',
            release: { ...status.release, pinned: { release: action.release, by: action.by } },
            steps: { ...status.steps, promote: { finished: now, outcome: 'pinned', message: action.message } },
          }),
        });
        if (run?.status?.release?.pinned) deps.logger.info({ run: runName, pinned: action.release, by: action.by }, 'not promoted: release pinned');
        break;
      }
      case 'start-manual-rollback':
        // Record first (Promoting, with the target's gate record), then the Job (docs/day2.md).
        await transition(kube, runName, { from: 'Pending', to: 'Promoting', now, patch: (status) => ({
          ...status, ...action.evidence, step: 'promote', message: action.message,
          deadlines: { ...status.deadlines, run: new Date(Date.parse(now) + (model.deadlines.promoteMinutes + model.deadlines.verifyMinutes + 15) * 60_000).toISOString() },
        }) });
        break;
      case 'finish-pending-failed':
        await finishRun(deps, runName, { from: 'Pending', phase: 'Failed', step: STEP, message: action.message, ...trace });
        out = buildEvent(EventTypes.runFailed, { step: STEP, data: { model: model.name, run: runName, step: 'promote', reason: 'rollback-refused', message: action.message }, ...trace });
        break;
      case 'reply-restarted':
        out = buildEvent(EventTypes.predictorRestarted, {
          step: STEP,
          data: { model: model.name, run: runName, release: action.release, previousRelease: action.previousRelease, inferenceService: action.inferenceService, restartedAt: action.restartedAt },
          ...trace,
        });
        break;
      case 'reply-rolledback':
        out = buildEvent(EventTypes.deploymentRolledback, {
          step: STEP,
          data: { model: model.name, run: runName, failedRelease: action.failedRelease, restoredRelease: action.restoredRelease, message: action.message },
          ...trace,
        });
        break;
      case 'reply-run-failed':
        out = buildEvent(EventTypes.runFailed, {
          step: STEP,
          data: { model: model.name, run: runName, step: action.step, reason: action.reason, message: action.message },
          ...trace,
        });
        break;
    }
  }
  return out;
}
