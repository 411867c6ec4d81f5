import { createHash } from 'node:crypto';
import type { Catalog, CatalogModel } from '../../runtime/catalog.ts';
import { Labels, runNameFor } from '../../runtime/labels.ts';
import { K8S_EVENT_MESSAGE_MAX, clip } from '../../events/index.ts';
import {
  DEFAULT_ARGOCD_NAMESPACE, TriggerAnnotations as A, isFinal, parseTriggerStatus, parseTriggers,
  type ParsedTriggers, type TargetRecord, type TriggerStatus, type TriggerTarget,
} from './triggers.ts';

// Pure decision for argocd-sync: one NVJ as the API reports it (and what is already recorded on it) → the
// exact effects. Terminal phases are recorded once: the phase Event, the wave annotations and the triggers
// all happen before `mlops.dev/recorded-phase` is written, so a crash in between redoes only idempotent work.

export const STEP = 'argocd-sync';
export const MODEL_MOUNT = '/mnt/models';

export const NotificationTypes = {
  validationSuccess: 'validation-success',
  validationFailure: 'validation-failure',
  triggerFailure: 'trigger-failure',
} as const;
export type NotificationType = (typeof NotificationTypes)[keyof typeof NotificationTypes];

/** What decide needs of an NVJ (see `factsOf`). */
export interface NvjFacts {
  name: string;
  namespace: string;
  uid: string;
  phase: string | undefined;
  completionTime?: string;
  message: string;
  annotations: Readonly<Record<string, string>>;
  partOf?: string;
  syncWave?: string;
  argocdNamespace: string;
  /** The volume mounted at /mnt/models: where the notebook's model.pkl lands. */
  modelMount?: { subPath?: string; claimName?: string };
}

export interface Recorded {
  phase?: string;
  triggerStatus?: TriggerStatus;
}

export interface DecideInput {
  nvj: NvjFacts;
  triggers: ParsedTriggers;
  recorded: Recorded;
  catalog: Catalog;
  now: Date;
  /** The NVJ was deleted: only the Application's counts change. */
  deleted?: boolean;
}

export interface EventSpec {
  name: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  notificationType: NotificationType;
}

export type ArgoAction =
  | { kind: 'ignore'; reason: string }
  | { kind: 'phase-event'; event: EventSpec }
  | { kind: 'trigger-invalid'; problem: string; event: EventSpec }
  | { kind: 'restart-isvc'; index: number; target: TriggerTarget; model: string; run: string; idempotencyKey: string; profile: 'cpu' | 'gpu'; artifactPath: string; completedAt: string; lockSeconds: number }
  | { kind: 'restart-deployment'; index: number; target: TriggerTarget; restartedAt: string }
  | { kind: 'sync-app'; index: number; target: TriggerTarget }
  | { kind: 'refresh-app'; index: number; target: TriggerTarget }
  | { kind: 'trigger-failed'; index: number; target: TriggerTarget; message: string }
  | { kind: 'app-status'; app: string; namespace: string; nvjNamespace: string; force: boolean }
  /** Final NVJ metadata patch (null deletes); effects add the trigger status from the outcomes. */
  | { kind: 'record'; annotations: Record<string, string | null> };

/** The restart/sync/refresh actions, which produce a per-target outcome. */
export type TargetAction = Extract<ArgoAction, { index: number }>;

interface NvjLike {
  metadata?: { name?: string; namespace?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: unknown;
  status?: unknown;
}

export function factsOf(nvj: NvjLike, defaultNamespace: string): NvjFacts {
  const meta = nvj.metadata ?? {};
  const annotations = meta.annotations ?? {};
  const status = (nvj.status ?? {}) as { phase?: unknown; completionTime?: unknown; message?: unknown };
  const podConfig = ((nvj.spec ?? {}) as { podConfig?: { volumes?: unknown; volumeMounts?: unknown } }).podConfig ?? {};
  const mounts = Array.isArray(podConfig.volumeMounts) ? (podConfig.volumeMounts as Array<{ name?: unknown; mountPath?: unknown; subPath?: unknown }>) : [];
  const volumes = Array.isArray(podConfig.volumes) ? (podConfig.volumes as Array<{ name?: unknown; persistentVolumeClaim?: { claimName?: unknown } }>) : [];
  const mount = mounts.find((m) => typeof m.mountPath === 'string' && m.mountPath.replace(/\/+$/, '') === MODEL_MOUNT);
  const facts: NvjFacts = {
    name: meta.name ?? '',
    namespace: meta.namespace ?? defaultNamespace,
    uid: meta.uid ?? '',
    phase: typeof status.phase === 'string' ? status.phase : undefined,
    message: typeof status.message === 'string' ? status.message : '',
    annotations,
    argocdNamespace: annotations[A.argocdNamespace] || DEFAULT_ARGOCD_NAMESPACE,
  };
  if (status.completionTime !== undefined && status.completionTime !== null) facts.completionTime = new Date(status.completionTime as string).toISOString();
  const partOf = meta.labels?.[Labels.partOf];
  if (partOf) facts.partOf = partOf;
  const wave = annotations[A.syncWave];
  if (wave !== undefined) facts.syncWave = wave;
  if (mount) {
    const claim = volumes.find((v) => v.name === mount.name)?.persistentVolumeClaim?.claimName;
    facts.modelMount = {
      ...(typeof mount.subPath === 'string' && mount.subPath !== '' ? { subPath: mount.subPath } : {}),
      ...(typeof claim === 'string' ? { claimName: claim } : {}),
    };
  }
  return facts;
}

/** Parse everything decide reads from an NVJ object. */
export function inputOf(nvj: NvjLike, catalog: Catalog, now: Date, defaultNamespace: string, deleted = false): DecideInput {
  const facts = factsOf(nvj, defaultNamespace);
  const recorded: Recorded = {};
  const phase = facts.annotations[A.recordedPhase];
  if (phase) recorded.phase = phase;
  const status = parseTriggerStatus(facts.annotations[A.triggerStatus]);
  if (status) recorded.triggerStatus = status;
  return {
    nvj: facts,
    triggers: parseTriggers(facts.annotations[A.onSuccessTrigger], facts.namespace, facts.argocdNamespace),
    recorded, catalog, now, ...(deleted ? { deleted } : {}),
  };
}

export function decide(input: DecideInput): ArgoAction[] {
  const { nvj, recorded, now } = input;
  const appStatus = (force: boolean): ArgoAction[] =>
    nvj.partOf ? [{ kind: 'app-status', app: nvj.partOf, namespace: nvj.argocdNamespace, nvjNamespace: nvj.namespace, force }] : [];
  if (input.deleted) {
    const a = appStatus(false);
    return a.length ? a : [{ kind: 'ignore', reason: 'deleted NVJ is not part of an Application' }];
  }
  const phase = nvj.phase;
  const terminal = phase === 'Succeeded' || phase === 'Failed';
  if (!terminal) {
    const a = appStatus(false);
    return a.length ? a : [{ kind: 'ignore', reason: `phase ${phase ?? '(none)'} is not terminal and the NVJ is not part of an Application` }];
  }

  const actions: ArgoAction[] = [];
  const record: Record<string, string | null> = {};
  const transition = recorded.phase !== phase;
  if (transition) {
    actions.push({ kind: 'phase-event', event: phaseEvent(nvj, phase) });
    if (nvj.syncWave !== undefined) {
      const at = nvj.completionTime ?? now.toISOString();
      if (phase === 'Succeeded') {
        Object.assign(record, { [A.waveComplete]: 'true', [A.completionTime]: at });
        // A re-run that now succeeds must not keep blocking the wave.
        if (nvj.annotations[A.waveFailed] !== undefined) Object.assign(record, { [A.waveFailed]: null, [A.failureTime]: null });
      } else {
        Object.assign(record, { [A.waveFailed]: 'true', [A.failureTime]: at });
      }
    }
  }

  let triggerWork = false;
  if (phase === 'Succeeded') {
    const triggers = input.triggers;
    const status = recorded.triggerStatus;
    // Processed once: a finished or invalid record means nothing more; `pending` retries deferred targets.
    const open = status === undefined || status.state === 'pending';
    if (triggers.kind === 'invalid' && status === undefined) {
      triggerWork = true;
      actions.push({
        kind: 'trigger-invalid', problem: triggers.problem,
        event: {
          name: eventName(nvj.name, 'trigger-invalid'), type: 'Warning', reason: 'TriggerFailed', notificationType: NotificationTypes.triggerFailure,
          message: clipText(`invalid ${A.onSuccessTrigger} on ${nvj.name}: ${triggers.problem}; nothing was triggered`),
        },
      });
      record[A.triggerStatus] = JSON.stringify({ state: 'invalid', error: triggers.problem, updatedAt: now.toISOString(), targets: [] } satisfies TriggerStatus);
    } else if (triggers.kind === 'valid' && open) {
      for (const [index, target] of triggers.targets.entries()) {
        if (isFinal(status?.targets.find((t) => t.index === index))) continue;
        triggerWork = true;
        actions.push(targetAction(input, index, target));
      }
    }
  }

  actions.push(...appStatus(transition));
  if (transition) record[A.recordedPhase] = phase;
  if (transition || triggerWork) actions.push({ kind: 'record', annotations: record });
  return actions.length ? actions : [{ kind: 'ignore', reason: `${phase} already recorded` }];
}

function targetAction(input: DecideInput, index: number, target: TriggerTarget): TargetAction {
  const { nvj, now } = input;
  switch (target.action) {
    case 'restart': {
      if (target.kind === 'Deployment') return { kind: 'restart-deployment', index, target, restartedAt: now.toISOString() };
      const model = input.catalog.models.find((m) => m.inferenceService === target.name);
      if (!model) return { kind: 'trigger-failed', index, target, message: `no catalog model is served by InferenceService ${target.name}` };
      const idempotencyKey = `${STEP}/${nvj.namespace}/${nvj.name}/${nvj.uid}/${index}`;
      return {
        kind: 'restart-isvc', index, target, model: model.name, run: runNameFor(model.name, idempotencyKey), idempotencyKey,
        profile: nvj.modelMount?.claimName !== undefined && nvj.modelMount.claimName === model.storage.gpuPvc ? 'gpu' : 'cpu',
        artifactPath: artifactPathOf(nvj, model.name), completedAt: nvj.completionTime ?? now.toISOString(), lockSeconds: gatedBudgetSeconds(model),
      };
    }
    case 'sync':
      return { kind: 'sync-app', index, target };
    case 'refresh':
      return { kind: 'refresh-app', index, target };
  }
}

/**
 * Where the notebook's `/mnt/models/<model>/model.pkl` is on the PVC: under the mount's subPath (our own NVJs
 * use `.runs/<run>`, so `.runs/<nvj>/<model>/model.pkl`), else `<model>/model.pkl` at the volume root.
 */
export function artifactPathOf(nvj: Pick<NvjFacts, 'modelMount'>, model: string): string {
  const sub = nvj.modelMount?.subPath?.replace(/^\/+|\/+$/g, '');
  return sub ? `${sub}/${model}/model.pkl` : `${model}/model.pkl`;
}

/** Lock budget of a gated restart: copy, gate, promote and verify, plus slack (no training). */
export function gatedBudgetSeconds(model: CatalogModel): number {
  const d = model.deadlines;
  return (d.copyMinutes + d.gateMinutes + d.promoteMinutes + d.verifyMinutes + 15) * 60;
}

function phaseEvent(nvj: NvjFacts, phase: 'Succeeded' | 'Failed'): EventSpec {
  if (phase === 'Succeeded') {
    return {
      name: eventName(nvj.name, NotificationTypes.validationSuccess), type: 'Normal', reason: 'ValidationSucceeded',
      notificationType: NotificationTypes.validationSuccess, message: clipText(`notebook validation ${nvj.name} succeeded${nvj.message ? `: ${nvj.message}` : ''}`),
    };
  }
  return {
    name: eventName(nvj.name, NotificationTypes.validationFailure), type: 'Warning', reason: 'ValidationFailed',
    notificationType: NotificationTypes.validationFailure, message: clipText(`notebook validation ${nvj.name} failed${nvj.message ? `: ${nvj.message}` : ''}`),
  };
}

/** The Event for one target's final outcome (deferred targets get theirs when they finish). */
export function outcomeEvent(nvjName: string, record: TargetRecord): EventSpec | undefined {
  if (record.outcome === 'deferred') return undefined;
  const ok = record.outcome === 'succeeded';
  return {
    name: eventName(nvjName, `trigger-${record.index}`),
    type: ok ? 'Normal' : 'Warning',
    reason: ok ? 'TriggerSucceeded' : 'TriggerFailed',
    notificationType: ok ? NotificationTypes.validationSuccess : NotificationTypes.triggerFailure,
    message: clipText(`${record.action} ${record.kind} ${record.namespace}/${record.name} after ${nvjName}: ${record.outcome}: ${record.message}`),
  };
}

/** The status after this round: earlier final records kept, this round's outcomes replacing the rest. */
export function nextTriggerStatus(previous: TriggerStatus | undefined, outcomes: readonly TargetRecord[], total: number, now: Date): TriggerStatus {
  const byIndex = new Map<number, TargetRecord>();
  for (const r of previous?.targets ?? []) byIndex.set(r.index, r);
  for (const r of outcomes) {
    const before = byIndex.get(r.index);
    // A target still deferred keeps its first record, so a retry that changes nothing writes nothing.
    if (before && before.outcome === 'deferred' && r.outcome === 'deferred') continue;
    byIndex.set(r.index, r);
  }
  const targets = [...byIndex.values()].sort((a, b) => a.index - b.index);
  const done = targets.length === total && targets.every((t) => t.outcome !== 'deferred');
  const sameAsBefore = previous !== undefined && JSON.stringify(previous.targets) === JSON.stringify(targets);
  return { state: done ? 'done' : 'pending', updatedAt: sameAsBefore ? previous.updatedAt : now.toISOString(), targets };
}

/** `<nvj>.<suffix>`, shortened with a hash when it would exceed the 253-character name limit. */
export function eventName(nvj: string, suffix: string): string {
  const name = `${nvj}.${suffix}`;
  if (name.length <= 253) return name;
  const hash = createHash('sha256').update(nvj).digest('hex').slice(0, 10);
  return `${nvj.slice(0, 253 - suffix.length - 12).replace(/[.-]+$/, '')}-${hash}.${suffix}`;
}

function clipText(s: string): string {
  return clip(s, K8S_EVENT_MESSAGE_MAX, { oneLine: true });
}

/** Debounce: recompute the Application status unless a terminal transition forces it or it is fresh (< 10 s). */
export const STATUS_DEBOUNCE_MS = 10_000;
export function shouldRecompute(lastUpdatedAt: string | undefined, now: Date, force: boolean): boolean {
  if (force || !lastUpdatedAt) return true;
  const last = Date.parse(lastUpdatedAt);
  if (Number.isNaN(last)) return true;
  return now.getTime() - last >= STATUS_DEBOUNCE_MS || last > now.getTime() + STATUS_DEBOUNCE_MS;
}
