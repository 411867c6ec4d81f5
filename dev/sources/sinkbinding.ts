// SinkBinding (sources.knative.dev/v1) for local processes: the env Knative would inject into the subject.
import { z } from 'zod';
import { Destination, resolveDestination, type RefResolver } from '../broker/index.ts';

export const SinkBinding = z
  .object({
    apiVersion: z.string().optional(),
    kind: z.string().optional(),
    metadata: z.object({ name: z.string().min(1), namespace: z.string().optional() }).loose(),
    spec: z
      .object({
        subject: z
          .object({
            apiVersion: z.string().optional(),
            kind: z.string().optional(),
            name: z.string().optional(),
            namespace: z.string().optional(),
            selector: z.object({ matchLabels: z.record(z.string(), z.string()).optional() }).loose().optional(),
          })
          .loose(),
        sink: Destination,
        ceOverrides: z.object({ extensions: z.record(z.string(), z.string()).optional() }).loose().optional(),
      })
      .loose(),
  })
  .loose();
export type SinkBinding = z.infer<typeof SinkBinding>;

/**
 * `K_SINK` (and `K_CE_OVERRIDES` when the binding has ceOverrides) for the subject named `subjectName`.
 * Only bindings whose subject names it are considered (label-selector subjects are not). Returns {}
 * when no binding applies; throws when the sink cannot be resolved or two bindings claim the subject.
 */
export function sinkBindingEnv(bindings: object[], subjectName: string, resolve: RefResolver): Record<string, string> {
  const matching: SinkBinding[] = [];
  for (const raw of bindings) {
    const parsed = SinkBinding.safeParse(raw);
    if (!parsed.success) {
      const name = (raw as { metadata?: { name?: unknown } }).metadata?.name;
      throw new Error(`SinkBinding ${typeof name === 'string' ? name : ''}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    if (parsed.data.spec.subject.name === subjectName) matching.push(parsed.data);
  }
  if (matching.length === 0) return {};
  if (matching.length > 1) {
    throw new Error(`SinkBindings ${matching.map((b) => b.metadata.name).join(', ')} all bind ${subjectName}; only one may`);
  }
  const binding = matching[0] as SinkBinding;
  const sink = resolveDestination(binding.spec.sink, binding.metadata.namespace, resolve);
  if (!sink) throw new Error(`SinkBinding ${binding.metadata.name}: its sink could not be resolved`);
  const env: Record<string, string> = { K_SINK: sink };
  if (binding.spec.ceOverrides) env['K_CE_OVERRIDES'] = JSON.stringify(binding.spec.ceOverrides);
  return env;
}
