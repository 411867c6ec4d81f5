import { createHash } from 'node:crypto';
import { clipMessage, isDns1123Label, MODEL_NAME_MAX, PROVENANCE_TEXT_MAX, REASON_MAX, URL_MAX, type Alert, type AlertmanagerWebhook, type TrainingRequested } from '../../events/index.ts';
import type { Catalog, CatalogModel } from '../../runtime/catalog.ts';

// Pure: an Alertmanager webhook + the catalog → what to do with each alert. No I/O, no clock.

export type IgnoreReason = 'resolved' | 'unrelated' | 'unknown-model' | 'disabled';

export type DriftAction =
  | { kind: 'request-training'; id: string; data: TrainingRequested }
  | { kind: 'ignore'; reason: IgnoreReason; fingerprint: string; model?: string }
  /** The whole request can never succeed (only alerts naming models we do not have): answer 4xx. */
  | { kind: 'refuse'; error: 'invalid' | 'permanent'; message: string };

// Provenance fields are bounded in events/catalog.ts (limits in events/text.ts); upstream allows longer values.
const SHOWN_VALUE_MAX = 64;

/**
 * Alertmanager re-sends a firing alert on every group_interval/repeat_interval with the same fingerprint
 * and startsAt, so the id (and the ModelRun start-training derives from it) stays the same across re-sends.
 * The model is part of the key only so one alert naming two catalog models yields two distinct ids.
 */
export function driftEventId(fingerprint: string, startsAt: string, model: string): string {
  const digest = createHash('sha256').update(`${fingerprint}\n${startsAt}\n${model}`).digest('hex').slice(0, 32);
  return `drift-${digest}`;
}

export function decide(webhook: AlertmanagerWebhook, catalog: Catalog): DriftAction[] {
  const actions: DriftAction[] = [];
  const seen = new Set<string>();
  const unknown: string[] = [];
  let malformedName = false;

  for (const alert of webhook.alerts) {
    const fingerprint = alert.fingerprint;
    if (alert.status !== 'firing') {
      actions.push({ kind: 'ignore', reason: 'resolved', fingerprint });
      continue;
    }
    const alertName = alert.labels.alertname;
    const candidates = alertName === undefined ? [] : catalog.models.filter((m) => m.drift.alerts.includes(alertName));
    if (alertName === undefined || candidates.length === 0) {
      actions.push({ kind: 'ignore', reason: 'unrelated', fingerprint });
      continue;
    }
    const named = candidates.filter((m) => alert.labels[m.drift.modelLabel] === m.name);
    const enabled = named.filter((m) => m.enabled);
    if (enabled.length > 0) {
      for (const model of enabled) {
        const id = driftEventId(fingerprint, alert.startsAt, model.name);
        // The same alert twice in one payload is one request.
        if (seen.has(id)) continue;
        seen.add(id);
        actions.push({ kind: 'request-training', id, data: requestData(alert, alertName, model, webhook.groupKey) });
      }
      continue;
    }
    const disabled = named[0];
    if (disabled) {
      actions.push({ kind: 'ignore', reason: 'disabled', fingerprint, model: disabled.name });
      continue;
    }
    const values = [...new Set(candidates.map((m) => alert.labels[m.drift.modelLabel]))];
    for (const value of values) {
      if (value !== undefined && !isDns1123Label(value, MODEL_NAME_MAX)) malformedName = true;
      unknown.push(value === undefined ? `alert ${show(fingerprint)} has no ${[...new Set(candidates.map((m) => show(m.drift.modelLabel)))].join('/')} label` : `alert ${show(fingerprint)} names unknown model ${show(value)}`);
    }
    actions.push({ kind: 'ignore', reason: 'unknown-model', fingerprint });
  }

  // Alerts naming models we do not have mean a misconfigured alert rule: when nothing else in the payload
  // is actionable, say so with a 4xx (400 when the name is not even a model name) instead of a silent 200.
  const requested = actions.some((a) => a.kind === 'request-training');
  if (!requested && unknown.length > 0) {
    const more = unknown.length > 3 ? ` (+${unknown.length - 3} more)` : '';
    return [{ kind: 'refuse', error: malformedName ? 'invalid' : 'permanent', message: `no firing alert names an enabled catalog model: ${unknown.slice(0, 3).join('; ')}${more}` }];
  }
  return actions;
}

function requestData(alert: Alert, alertName: string, model: CatalogModel, groupKey: string): TrainingRequested {
  const reason = reasonOf(alert);
  const data: TrainingRequested = {
    model: model.name,
    trigger: 'drift',
    requestedBy: 'alertmanager',
    provenance: {
      alertFingerprint: alert.fingerprint,
      alertName,
      groupKey: clipMessage(groupKey, PROVENANCE_TEXT_MAX),
      startsAt: alert.startsAt,
    },
  };
  if (reason !== undefined) data.reason = reason;
  if (alert.generatorURL && data.provenance) data.provenance.generatorURL = clipMessage(alert.generatorURL, URL_MAX);
  return data;
}

function reasonOf(alert: Alert): string | undefined {
  const summary = oneLine(alert.annotations.summary);
  const description = oneLine(alert.annotations.description);
  const text = summary && description ? `${summary}: ${description}` : summary || description;
  return text ? clipMessage(text, REASON_MAX) : undefined;
}

function oneLine(text: string | undefined): string {
  // eslint-disable-next-line no-control-regex
  return (text ?? '').replace(/[\s\u0000-\u001f\u007f]+/g, ' ').trim();
}

/** A value from the payload, quoted and cut so an error line can never carry a payload's bulk or newlines. */
function show(value: string): string {
  return JSON.stringify(value.length > SHOWN_VALUE_MAX ? `${value.slice(0, SHOWN_VALUE_MAX)}…` : value);
}
