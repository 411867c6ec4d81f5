// Manifest shapes the local broker reads (eventing.knative.dev/v1 Trigger and the duck DeliverySpec),
// loose so unknown upstream fields are kept, and the delivery record it writes.
import { z } from 'zod';

export const KReference = z
  .object({
    apiVersion: z.string().optional(),
    kind: z.string().min(1),
    name: z.string().min(1),
    namespace: z.string().optional(),
  })
  .loose();
export type KReference = z.infer<typeof KReference>;

export const Destination = z
  .object({ ref: KReference.optional(), uri: z.string().min(1).optional() })
  .loose()
  .refine((d) => d.ref !== undefined || d.uri !== undefined, 'a destination needs ref or uri');
export type Destination = z.infer<typeof Destination>;

export const DeliverySpec = z
  .object({
    retry: z.number().int().min(0).optional(),
    backoffPolicy: z.enum(['linear', 'exponential']).optional(),
    backoffDelay: z.string().optional(),
    timeout: z.string().optional(),
    deadLetterSink: Destination.optional(),
  })
  .loose();
export type DeliverySpec = z.infer<typeof DeliverySpec>;

export const Trigger = z
  .object({
    apiVersion: z.string().optional(),
    kind: z.string().optional(),
    metadata: z.object({ name: z.string().min(1), namespace: z.string().optional() }).loose(),
    spec: z
      .object({
        broker: z.string().min(1).optional(),
        brokerRef: z.object({ name: z.string().min(1), namespace: z.string().optional() }).loose().optional(),
        filter: z.object({ attributes: z.record(z.string(), z.string()).optional() }).loose().optional(),
        filters: z.array(z.unknown()).optional(),
        subscriber: Destination,
        delivery: DeliverySpec.optional(),
      })
      .loose(),
  })
  .loose();
export type Trigger = z.infer<typeof Trigger>;

/** Resolves an object reference (a Service, a Broker, ...) to its URL; undefined when it has none (yet). */
export type RefResolver = (ref: { apiVersion?: string; kind: string; name: string; namespace?: string }) => string | undefined;

export type DeliveryOutcome = 'delivered' | 'retry' | 'dead-lettered' | 'dropped';

/** One delivery attempt (or one drop) as the broker saw it; a timeline is a list of these. */
export type DeliveryRecord = {
  at: string; // ISO time the attempt started
  trigger: string;
  subscriber: string; // URL, or '' when it could not be resolved
  eventType: string;
  eventId: string;
  source: string;
  attempt: number; // 1 = first try
  status?: number;
  error?: string;
  ms: number;
  outcome: DeliveryOutcome;
  reply?: { type: string; id: string };
  warning?: string;
  reason?: string; // why an event was dropped
  deadLetter?: { url: string; status?: number; error?: string };
};
