import { SOURCE_PREFIX, type TrainingRequested } from '../../events/index.ts';
import { OverrideFields, type CatalogModel } from '../../runtime/catalog.ts';

// Who may change what a training run trains (catalog `overrides`, docs/security.md). Pure; start-training and
// `mlops train` both call it, so the command refuses exactly what the function would.

/** The sender `mlops train` posts as (its events' source is `/model-lifecycle/mlops-cli`). */
export const CLI_SENDER = 'mlops-cli';
export const GIT_INTAKE = 'git-intake';

export type OverrideVerdict = { ok: true } | { ok: false; rule: string; message: string };

/** `/model-lifecycle/<name>` → `<name>`; any other source is its own (unlisted) name. */
export function senderName(source: string): string {
  return source.startsWith(SOURCE_PREFIX) ? source.slice(SOURCE_PREFIX.length) : source;
}

/**
 * The sender a request is judged as: its `source`, except a request re-submitted from a model's queue (it
 * carries `provenance.queuedFrom`), which is judged as the sender that first posted it (`eventSource`), so
 * waiting in the queue neither adds nor removes rights.
 */
export function effectiveSender(source: string, data: TrainingRequested): string {
  const p = data.provenance;
  if (p?.queuedFrom && p.eventSource) return senderName(p.eventSource);
  return senderName(source);
}

/** Checks every override the request carries against the model's policy; the first refusal names its rule. */
export function checkOverrides(data: TrainingRequested, sender: string, model: CatalogModel): OverrideVerdict {
  for (const field of OverrideFields) {
    if (data[field] === undefined) continue;
    const allowed: readonly string[] = model.overrides[field];
    if (!allowed.includes('*') && !allowed.includes(sender)) {
      return refuse(`overrides.${field}`, `sender "${clip(sender)}" may not set ${field} for model ${model.name} (allowed: ${allowed.length ? allowed.join(', ') : 'nobody'})`);
    }
    if (field === 'gitRef' && sender === GIT_INTAKE && data.gitRef !== model.notebook.gitRef) {
      return refuse('overrides.gitRef.watched-branch', `git-intake may only request the watched branch "${model.notebook.gitRef}" of model ${model.name}, not "${clip(data.gitRef ?? '')}"`);
    }
  }
  return { ok: true };
}

function refuse(rule: string, detail: string): OverrideVerdict {
  return { ok: false, rule, message: `refused by rule ${rule}: ${detail}` };
}

const clip = (s: string): string => (s.length > 80 ? `${s.slice(0, 80)}…` : s);
