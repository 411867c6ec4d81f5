// Tekton CloudEvents for PipelineRuns (tekton.dev/v1beta1 payload shape; v1 objects parse too).
import { z } from 'zod';
import { ObjectMeta } from './apiserversource.ts';
import { envelopeOf, parseWith, type ParseResult } from './common.ts';

export const TektonPipelineRunEventTypes = {
  started: 'dev.tekton.event.pipelinerun.started.v1',
  running: 'dev.tekton.event.pipelinerun.running.v1',
  successful: 'dev.tekton.event.pipelinerun.successful.v1',
  failed: 'dev.tekton.event.pipelinerun.failed.v1',
  unknown: 'dev.tekton.event.pipelinerun.unknown.v1',
} as const;
export type TektonPipelineRunEventType = (typeof TektonPipelineRunEventTypes)[keyof typeof TektonPipelineRunEventTypes];
export type TektonOutcome = keyof typeof TektonPipelineRunEventTypes;

const OUTCOME_BY_TYPE = new Map<string, TektonOutcome>(
  Object.entries(TektonPipelineRunEventTypes).map(([outcome, type]) => [type, outcome as TektonOutcome]),
);

export const TektonCondition = z
  .object({
    type: z.string(),
    status: z.string(),
    reason: z.string().optional(),
    message: z.string().optional(),
    lastTransitionTime: z.string().optional(),
  })
  .loose();
export type TektonCondition = z.infer<typeof TektonCondition>;

export const PipelineRun = z
  .object({
    apiVersion: z.string().regex(/^tekton\.dev\/v1(beta1)?$/, 'must be tekton.dev/v1beta1 or tekton.dev/v1'),
    kind: z.literal('PipelineRun'),
    metadata: ObjectMeta.extend({
      namespace: z.string().min(1).max(253),
      uid: z.string().min(1),
    }),
    spec: z.record(z.string(), z.unknown()).optional(),
    status: z
      .object({
        conditions: z.array(TektonCondition).max(64).optional(),
        startTime: z.string().optional(),
        completionTime: z.string().optional(),
      })
      .loose()
      .optional(),
  })
  .loose();
export type PipelineRun = z.infer<typeof PipelineRun>;

export const TektonPipelineRunData = z.object({ pipelineRun: PipelineRun }).loose();
export type TektonPipelineRunData = z.infer<typeof TektonPipelineRunData>;

export interface TektonPipelineRunEvent {
  type: TektonPipelineRunEventType;
  outcome: TektonOutcome;
  id: string;
  source: string;
  pipelineRun: PipelineRun;
}

export function isTektonPipelineRunEventType(type: unknown): type is TektonPipelineRunEventType {
  return typeof type === 'string' && OUTCOME_BY_TYPE.has(type);
}

/** Parses a Tekton PipelineRun CloudEvent. */
export function parseTektonEvent(input: unknown): ParseResult<TektonPipelineRunEvent> {
  const envelope = envelopeOf(input);
  if (!envelope.ok) return envelope;
  const { ce, data } = envelope.value;
  const type = ce.type;
  if (!isTektonPipelineRunEventType(type)) return { ok: false, reason: `type: not a Tekton PipelineRun event type (${JSON.stringify(type)})` };
  const parsed = parseWith(TektonPipelineRunData, data, 'data');
  if (!parsed.ok) return parsed;
  return {
    ok: true,
    value: { type, outcome: OUTCOME_BY_TYPE.get(type) as TektonOutcome, id: ce.id as string, source: ce.source as string, pipelineRun: parsed.value.pipelineRun },
  };
}

/** The PipelineRun's `Succeeded` condition, if it has one. */
export function succeededCondition(pipelineRun: PipelineRun): TektonCondition | undefined {
  return pipelineRun.status?.conditions?.find((c) => c.type === 'Succeeded');
}
