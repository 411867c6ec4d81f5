import { z } from 'zod';
import type { Catalog } from './catalog.ts';
import type { Rule } from './declare.ts';
import type { KubePort, KubeObject } from './kube.ts';
import { Labels, MANAGER } from './labels.ts';
import { Resources } from './resources.ts';

// Day-2 controls of one model (docs/day2.md): pause and pin, kept in the cluster in one ConfigMap per model,
// `model-controls-<model>`. People write it with their own kubeconfig (`mlops pause|resume|pin|unpin`); the
// functions only read it (`get` on these names). A missing ConfigMap means "not paused, not pinned".

export const controlsNameFor = (model: string): string => `model-controls-${model}`;

/**
 * The rule a step that honours pause/pin needs (its declaration's `catalogRules`): `get` on exactly each catalog
 * model's controls ConfigMap; people write them with their own credentials (docs/day2.md).
 */
export function controlsReadRules(catalog: Catalog): Rule[] {
  return catalog.models.length === 0 ? [] : [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'], resourceNames: catalog.models.map((m) => controlsNameFor(m.name)) }];
}

/** Labels on the ConfigMap: ours, which model; `paused`/`pinned` so kube-state-metrics and selectors can see them. */
export const ControlLabels = {
  paused: 'mlops.dev/paused',
  pinned: 'mlops.dev/pinned',
} as const;

const Text = z.string().max(1024);
const Who = z.string().max(256);
const Time = z.string().max(64);
const Release = z.string().min(1).max(63).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);

/** The ConfigMap's `data` (every value a string, as ConfigMaps require); unknown keys are ignored. */
export const ModelControlsData = z.looseObject({
  paused: z.enum(['true', 'false']).optional(),
  pausedBy: Who.optional(),
  pausedAt: Time.optional(),
  reason: Text.optional(),
  pinnedRelease: Release.optional(),
  pinnedBy: Who.optional(),
  pinnedAt: Time.optional(),
});
export type ModelControlsData = z.infer<typeof ModelControlsData>;

/** What a function decides on. */
export interface ModelControls {
  paused?: { by: string; at?: string; reason?: string };
  pinned?: { release: string; by: string; at?: string };
  /** The ConfigMap exists but its data is not ours to trust (edited by hand into a bad shape). */
  invalid?: string;
}

/**
 * Reads `data` into controls. A malformed ConfigMap fails safe: it counts as paused (nothing trains on a control
 * nobody can read) and says why, so a typo never silently lets automation run over an incident.
 */
export function parseControls(data: unknown): ModelControls {
  if (data === undefined || data === null) return {};
  const parsed = ModelControlsData.safeParse(data);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'data'}: ${i.message}`).join('; ');
    return { invalid: why, paused: { by: 'unknown', reason: `the controls ConfigMap is malformed (${why})` } };
  }
  const d = parsed.data;
  const out: ModelControls = {};
  if (d.paused === 'true') out.paused = { by: d.pausedBy ?? 'unknown', ...(d.pausedAt ? { at: d.pausedAt } : {}), ...(d.reason ? { reason: d.reason } : {}) };
  if (d.pinnedRelease) out.pinned = { release: d.pinnedRelease, by: d.pinnedBy ?? 'unknown', ...(d.pinnedAt ? { at: d.pinnedAt } : {}) };
  return out;
}

export interface ControlsConfigMap extends KubeObject {
  data?: Record<string, string>;
}

export async function readControls(kube: KubePort, model: string): Promise<ModelControls> {
  const cm = await kube.get<ControlsConfigMap>(Resources.configMap, controlsNameFor(model));
  return parseControls(cm?.data);
}

/** The ConfigMap for `data` (what `mlops pause|pin` writes). */
export function controlsManifest(model: string, data: ModelControlsData): ControlsConfigMap {
  return {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: { name: controlsNameFor(model), labels: controlsLabels(model, data) },
    data: Object.fromEntries(Object.entries(data).filter(([, v]) => typeof v === 'string')) as Record<string, string>,
  };
}

export function controlsLabels(model: string, data: ModelControlsData): Record<string, string> {
  return {
    [Labels.managedBy]: MANAGER, [Labels.model]: model,
    [ControlLabels.paused]: data.paused === 'true' ? 'true' : 'false',
    [ControlLabels.pinned]: data.pinnedRelease ? 'true' : 'false',
  };
}

/** One line for reports and skip messages: `paused by X at T: reason`. */
export function pausedText(p: NonNullable<ModelControls['paused']>): string {
  return `paused by ${p.by}${p.at ? ` at ${p.at}` : ''}${p.reason ? `: ${p.reason}` : ''}`;
}

export function pinnedText(p: NonNullable<ModelControls['pinned']>): string {
  return `release ${p.release} pinned by ${p.by}${p.at ? ` at ${p.at}` : ''}`;
}
