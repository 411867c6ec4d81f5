// Tekton CloudEvents for PipelineRuns, as tektoncd/pipeline pkg/reconciler/events/cloudevent/cloudevent.go
// builds them: `data.pipelineRun` is the v1beta1 PipelineRun the events controller got from its informer,
// so it carries no apiVersion/kind (informer objects have an empty TypeMeta; v1 runs are converted with
// ConvertFrom, which leaves it empty too), and for the same reason `source` reads
// `/apis///namespaces/<ns>//<name>`. See docs/upstream-events.md.
import { z } from 'zod';
import { ObjectMeta } from './apiserversource.ts';
import { envelopeOf, parseWith, type ParseResult } from './common.ts';

export const TektonPipelineRunEventTypes = {
  queued: 'dev.tekton.event.pipelinerun.queued.v1',
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

/** Every Tekton CloudEvent type starts with this (TaskRun, PipelineRun, CustomRun). */
export const TEKTON_EVENT_PREFIX = 'dev.tekton.event.';

export const PipelineRun = z
  .object({
    // Absent in what Tekton sends (see above); checked when someone else's sender sets them.
    apiVersion: z.string().regex(/^tekton\.dev\/v1(beta1)?$/, 'must be tekton.dev/v1beta1 or tekton.dev/v1').optional(),
    kind: z.literal('PipelineRun').optional(),
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

/** Any event type Tekton sends (`dev.tekton.event.<taskrun|pipelinerun|customrun>.<state>.v1`). */
export function isTektonEventType(type: unknown): boolean {
  return typeof type === 'string' && type.startsWith(TEKTON_EVENT_PREFIX);
}

/** Parses a Tekton PipelineRun CloudEvent. */
export function parseTektonEvent(input: unknown): ParseResult<TektonPipelineRunEvent> {
  const envelope = envelopeOf(input);
  if (!envelope.ok) return envelope;
  const { ce, data } = envelope.value;
  const type = ce.type;
  if (!isTektonPipelineRunEventType(type)) {
    const what = isTektonEventType(type) ? 'a Tekton event, but not about a PipelineRun' : 'not a Tekton event type';
    return { ok: false, reason: `type: ${what} (${JSON.stringify(type)})` };
  }
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
