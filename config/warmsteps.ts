// `mlops render --warm-steps`: Knative's per-revision `autoscaling.knative.dev/scale-down-delay` on the Services a
// run calls in quick succession once training is done, so a step called again after a Job or a predictor rollout
// that outlasts the scale-to-zero window (stable window 60 s + grace) finds its pod still up. Annotation name, range
// (0s..1h) and KPA-only support: knative/docs docs/serving/autoscaling/scale-bounds.md ("Scale Down Delay").
// It cannot save the first call after training (hours later); bench/README.md reports cold starts with and without.

import { WARM_STEPS } from '../functions/registry.ts';

type Obj = Record<string, unknown>;

export { WARM_STEPS };

export const SCALE_DOWN_DELAY_ANNOTATION = 'autoscaling.knative.dev/scale-down-delay';
export const DEFAULT_SCALE_DOWN_DELAY = '10m';

/** Knative accepts a Go duration between 0s and 1h; we take whole seconds, minutes or hours. */
export function parseScaleDownDelay(value: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(value);
  if (!m) throw new Error(`scale-down delay ${JSON.stringify(value)}: expected a duration like 90s, 10m or 1h`);
  const ms = Number(m[1]) * ({ s: 1_000, m: 60_000, h: 3_600_000 } as const)[m[2] as 's' | 'm' | 'h'];
  if (ms > 3_600_000) throw new Error(`scale-down delay ${value}: Knative allows at most 1h`);
  return ms;
}

/** The Services with the annotation on the revision template of each warm step (its declaration's `warm`); other objects untouched. */
export function withWarmSteps(services: readonly Obj[], delay: string = DEFAULT_SCALE_DOWN_DELAY, warm: readonly string[] = WARM_STEPS): Obj[] {
  parseScaleDownDelay(delay);
  return services.map((svc) => {
    const name = (svc.metadata as { name?: string } | undefined)?.name ?? '';
    if (!warm.includes(name)) return svc;
    const spec = svc.spec as { template: { metadata?: { annotations?: Record<string, string> } } };
    const template = spec.template;
    return {
      ...svc,
      spec: { ...spec, template: { ...template, metadata: { ...template.metadata, annotations: { ...template.metadata?.annotations, [SCALE_DOWN_DELAY_ANNOTATION]: delay } } } },
    };
  });
}
