// Alertmanager webhook payload, version 4 (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config).
import { z } from 'zod';
import { IsoTime } from '../names.ts';
import { parseWith, type ParseResult } from './common.ts';

/** Alertmanager caps alerts per notification only when `max_alerts` is set; we cap what we accept. */
export const ALERTS_MAX = 1000;

const Labels = z.record(z.string().max(1024), z.string().max(16_384));
const AlertStatus = z.enum(['firing', 'resolved']);

export const Alert = z
  .object({
    status: AlertStatus,
    labels: Labels,
    annotations: Labels.default({}),
    startsAt: IsoTime,
    // "0001-01-01T00:00:00Z" while firing; still a valid date-time.
    endsAt: IsoTime.optional(),
    generatorURL: z.string().max(4096).default(''),
    fingerprint: z.string().min(1).max(256),
  })
  .loose();
export type Alert = z.infer<typeof Alert>;

export const AlertmanagerWebhook = z
  .object({
    version: z.literal('4'),
    groupKey: z.string().max(8192),
    truncatedAlerts: z.int().min(0).optional(),
    status: AlertStatus,
    receiver: z.string().max(1024),
    groupLabels: Labels.default({}),
    commonLabels: Labels.default({}),
    commonAnnotations: Labels.default({}),
    externalURL: z.string().max(4096).default(''),
    alerts: z.array(Alert).max(ALERTS_MAX, `must have at most ${ALERTS_MAX} alerts`),
  })
  .loose();
export type AlertmanagerWebhook = z.infer<typeof AlertmanagerWebhook>;

/** Parses an Alertmanager webhook body (already JSON-decoded). */
export function parseAlertmanagerWebhook(input: unknown): ParseResult<AlertmanagerWebhook> {
  return parseWith(AlertmanagerWebhook, input);
}

/** The alerts still firing (a resolved group can carry both). */
export function firingAlerts(webhook: AlertmanagerWebhook): Alert[] {
  return webhook.alerts.filter((a) => a.status === 'firing');
}
