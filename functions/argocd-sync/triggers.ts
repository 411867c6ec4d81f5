import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { Resources } from '../../runtime/resources.ts';

// The `mlops.dev/on-success-trigger` annotation: a YAML list of `{apiVersion, kind, name, namespace?, action}`.
// Parsing is all-or-nothing: one bad entry makes the whole annotation malformed, so a half-understood list
// never fires half of its targets.

export const TriggerAnnotations = {
  onSuccessTrigger: 'mlops.dev/on-success-trigger',
  triggerStatus: 'mlops.dev/trigger-status',
  syncWave: 'argocd.argoproj.io/sync-wave',
  waveComplete: 'mlops.dev/wave-complete',
  completionTime: 'mlops.dev/completion-time',
  waveFailed: 'mlops.dev/wave-failed',
  failureTime: 'mlops.dev/failure-time',
  blockWave: 'mlops.dev/block-wave',
  /** The terminal phase whose effects (events, waves, triggers) are all recorded: written last. */
  recordedPhase: 'mlops.dev/recorded-phase',
  /** Where the Application named by `app.kubernetes.io/part-of` lives (default `argocd`). */
  argocdNamespace: 'mlops.dev/argocd-namespace',
  notebookStatus: 'mlops.dev/notebook-status',
  modelStatus: 'mlops.dev/model-status',
  statusUpdatedAt: 'mlops.dev/status-updated-at',
  argocdRefresh: 'argocd.argoproj.io/refresh',
  restartedAt: 'mlops.dev/restartedAt',
} as const;

export const DEFAULT_ARGOCD_NAMESPACE = 'argocd';
export const MAX_TRIGGERS = 20;

export const TriggerAction = z.enum(['restart', 'sync', 'refresh']);
export type TriggerAction = z.infer<typeof TriggerAction>;

/** Which action each kind accepts and the apiVersion it must name. */
const Targets = {
  InferenceService: { apiVersion: Resources.inferenceService.apiVersion, actions: ['restart'] },
  Deployment: { apiVersion: Resources.deployment.apiVersion, actions: ['restart'] },
  Application: { apiVersion: Resources.application.apiVersion, actions: ['sync', 'refresh'] },
} as const satisfies Record<string, { apiVersion: string; actions: readonly TriggerAction[] }>;
export type TargetKind = keyof typeof Targets;

const Dns1123Subdomain = z.string().max(253).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a DNS-1123 name');
const Dns1123Label = z.string().max(63).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label');

const RawTarget = z.object({
  apiVersion: z.string().min(1),
  kind: z.string().min(1),
  name: Dns1123Subdomain,
  namespace: Dns1123Label.optional(),
  action: z.string().min(1),
}).strict();

export interface TriggerTarget {
  apiVersion: string;
  kind: TargetKind;
  name: string;
  /** Resolved: the NVJ's namespace for restarts, the Argo CD namespace for Applications. */
  namespace: string;
  action: TriggerAction;
}

export type ParsedTriggers =
  | { kind: 'none' }
  | { kind: 'valid'; targets: TriggerTarget[] }
  | { kind: 'invalid'; problem: string };

/**
 * Parse the annotation. Restart targets must live in the NVJ's namespace and Applications in the Argo CD
 * namespace: an NVJ author must not be able to reach workloads elsewhere through this function's RBAC.
 */
export function parseTriggers(text: string | undefined, nvjNamespace: string, argocdNamespace: string): ParsedTriggers {
  if (text === undefined || text.trim() === '') return { kind: 'none' };
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return { kind: 'invalid', problem: `not valid YAML: ${firstLine((err as Error).message)}` };
  }
  if (!Array.isArray(doc)) return { kind: 'invalid', problem: 'must be a YAML list of {apiVersion, kind, name, namespace?, action}' };
  if (doc.length === 0) return { kind: 'invalid', problem: 'the list is empty' };
  if (doc.length > MAX_TRIGGERS) return { kind: 'invalid', problem: `${doc.length} entries; at most ${MAX_TRIGGERS} are allowed` };
  const targets: TriggerTarget[] = [];
  for (const [i, entry] of doc.entries()) {
    const at = `entry ${i}`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return { kind: 'invalid', problem: `${at}: must be a mapping` };
    const raw = entry as Record<string, unknown>;
    if (raw.name === undefined || raw.name === '') return { kind: 'invalid', problem: `${at}: missing name` };
    const parsed = RawTarget.safeParse(entry);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return { kind: 'invalid', problem: `${at}: ${issue ? `${issue.path.join('.') || '(entry)'}: ${issue.message}` : 'invalid'}` };
    }
    const t = parsed.data;
    const action = TriggerAction.safeParse(t.action);
    if (!action.success) return { kind: 'invalid', problem: `${at}: unknown action "${clip(t.action)}" (restart, sync or refresh)` };
    if (!Object.hasOwn(Targets, t.kind)) return { kind: 'invalid', problem: `${at}: unsupported kind "${clip(t.kind)}" (InferenceService, Deployment or Application)` };
    const kind = t.kind as TargetKind;
    const spec = Targets[kind];
    if (!(spec.actions as readonly string[]).includes(action.data)) {
      return { kind: 'invalid', problem: `${at}: action ${action.data} does not apply to ${kind} (allowed: ${spec.actions.join(', ')})` };
    }
    if (t.apiVersion !== spec.apiVersion) return { kind: 'invalid', problem: `${at}: ${kind} must be apiVersion ${spec.apiVersion}, not "${clip(t.apiVersion)}"` };
    const allowedNs = kind === 'Application' ? argocdNamespace : nvjNamespace;
    const namespace = t.namespace ?? allowedNs;
    if (namespace !== allowedNs) return { kind: 'invalid', problem: `${at}: ${kind} targets must be in namespace ${allowedNs}, not ${namespace}` };
    targets.push({ apiVersion: spec.apiVersion, kind, name: t.name, namespace, action: action.data });
  }
  return { kind: 'valid', targets };
}

function firstLine(s: string): string {
  return clip(s.split('\n')[0] ?? '', 200);
}

function clip(s: string, max = 60): string {
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

// ---------------------------------------------------------------------------------------------------
// What is recorded on the NVJ in `mlops.dev/trigger-status`

export const TargetOutcome = z.enum(['succeeded', 'failed', 'skipped', 'deferred']);
export type TargetOutcome = z.infer<typeof TargetOutcome>;

export const TargetRecord = z.object({
  index: z.number().int().min(0),
  kind: z.string(),
  name: z.string(),
  namespace: z.string(),
  action: z.string(),
  outcome: TargetOutcome,
  message: z.string(),
  at: z.string(),
  run: z.string().optional(),
});
export type TargetRecord = z.infer<typeof TargetRecord>;

export const TriggerStatus = z.object({
  /** `invalid`: the annotation was malformed (nothing fired); `pending`: a deferred target waits for a retry. */
  state: z.enum(['done', 'pending', 'invalid']),
  error: z.string().optional(),
  updatedAt: z.string(),
  targets: z.array(TargetRecord),
});
export type TriggerStatus = z.infer<typeof TriggerStatus>;

/** The recorded status, or undefined when absent or unreadable (an unreadable record is treated as absent). */
export function parseTriggerStatus(text: string | undefined): TriggerStatus | undefined {
  if (!text) return undefined;
  try {
    const parsed = TriggerStatus.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** A target is finished once it has an outcome other than `deferred`. */
export const isFinal = (r: TargetRecord | undefined): boolean => r !== undefined && r.outcome !== 'deferred';
