// Alertmanager webhook payload, version 4 (prometheus/alertmanager notify/webhook/webhook.go `Message`,
// template/template.go `Data`/`Alert`; docs/configuration.md#webhook_config). Alertmanager before 0.19
// (commit 6fbbda75, "Add Fingerprint to template data") sends the same version "4" without
// `alerts[].fingerprint`, and before 0.21 without `truncatedAlerts`; see docs/upstream-events.md.
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
    fingerprint: z.string().min(1).max(256).optional(),
  })
  .loose()
  // Missing before Alertmanager 0.19: computed the way Alertmanager computes it (see labelSetFingerprint).
  .transform((alert) => ({ ...alert, fingerprint: alert.fingerprint ?? labelSetFingerprint(alert.labels) }));
export type Alert = z.infer<typeof Alert>;

const FNV64_OFFSET = 14695981039346656037n;
const FNV64_PRIME = 1099511628211n;
const MASK64 = (1n << 64n) - 1n;
// model.SeparatorByte in prometheus/common.
const SEPARATOR_BYTE = 0xff;

/**
 * An alert's fingerprint as Alertmanager writes it: `model.LabelSet.Fingerprint()` from prometheus/common
 * (model/signature.go `labelSetToFingerprint`, model/fnv.go): FNV-1a 64 over the label names sorted
 * (byte order), each name and value followed by the separator byte 0xff, printed as 16 hex digits
 * (`Fingerprint.String()`, "%016x"). An empty label set hashes to the FNV offset basis.
 */
export function labelSetFingerprint(labels: Readonly<Record<string, string>>): string {
  const names = Object.keys(labels)
    .map((name) => [name, Buffer.from(name, 'utf8')] as const)
    .sort((a, b) => Buffer.compare(a[1], b[1]));
  let hash = FNV64_OFFSET;
  const add = (byte: number): void => {
    hash = ((hash ^ BigInt(byte)) * FNV64_PRIME) & MASK64;
  };
  for (const [name, nameBytes] of names) {
    for (const byte of nameBytes) add(byte);
    add(SEPARATOR_BYTE);
    for (const byte of Buffer.from(labels[name] ?? '', 'utf8')) add(byte);
    add(SEPARATOR_BYTE);
  }
  return hash.toString(16).padStart(16, '0');
}

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
