// Knative ApiServerSource events. Resource mode carries the whole object (an update carries only the
// new one); Ref mode carries a reference to it.
import { z } from 'zod';
import { envelopeOf, parseWith, type ParseResult } from './common.ts';

export const ApiServerEventTypes = {
  add: 'dev.knative.apiserver.resource.add',
  update: 'dev.knative.apiserver.resource.update',
  delete: 'dev.knative.apiserver.resource.delete',
  refAdd: 'dev.knative.apiserver.ref.add',
  refUpdate: 'dev.knative.apiserver.ref.update',
  refDelete: 'dev.knative.apiserver.ref.delete',
} as const;
export type ApiServerEventType = (typeof ApiServerEventTypes)[keyof typeof ApiServerEventTypes];
const ALL_TYPES: readonly string[] = Object.values(ApiServerEventTypes);

const Name = z.string().min(1).max(253);
const StringMap = z.record(z.string(), z.string());

export const OwnerReference = z
  .object({
    apiVersion: z.string(),
    kind: z.string(),
    name: Name,
    uid: z.string(),
    controller: z.boolean().optional(),
    blockOwnerDeletion: z.boolean().optional(),
  })
  .loose();
export type OwnerReference = z.infer<typeof OwnerReference>;

export const ObjectMeta = z
  .object({
    name: Name,
    namespace: Name.optional(),
    uid: z.string().optional(),
    labels: StringMap.optional(),
    annotations: StringMap.optional(),
    resourceVersion: z.string().optional(),
    generation: z.number().optional(),
    creationTimestamp: z.string().optional(),
    deletionTimestamp: z.string().optional(),
    ownerReferences: z.array(OwnerReference).optional(),
  })
  .loose();
export type ObjectMeta = z.infer<typeof ObjectMeta>;

/** Any Kubernetes object; spec/status and other keys are kept untyped for the step to read. */
export const KubeObject = z
  .object({
    apiVersion: z.string().min(1),
    kind: z.string().min(1),
    metadata: ObjectMeta,
  })
  .loose();
export type KubeObject = z.infer<typeof KubeObject>;

export const KubeRef = z
  .object({
    apiVersion: z.string().min(1),
    kind: z.string().min(1),
    name: Name,
    namespace: Name.optional(),
  })
  .loose();
export type KubeRef = z.infer<typeof KubeRef>;

export type ApiServerAction = 'add' | 'update' | 'delete';

export type ApiServerEvent =
  | { mode: 'resource'; type: ApiServerEventType; action: ApiServerAction; id: string; source: string; subject?: string; object: KubeObject }
  | { mode: 'ref'; type: ApiServerEventType; action: ApiServerAction; id: string; source: string; subject?: string; ref: KubeRef };

export function isApiServerEventType(type: unknown): type is ApiServerEventType {
  return typeof type === 'string' && ALL_TYPES.includes(type);
}

/** Parses an ApiServerSource CloudEvent (Resource or Ref mode). */
export function parseApiServerSource(input: unknown): ParseResult<ApiServerEvent> {
  const envelope = envelopeOf(input);
  if (!envelope.ok) return envelope;
  const { ce, data } = envelope.value;
  const type = ce.type;
  if (!isApiServerEventType(type)) return { ok: false, reason: `type: not an ApiServerSource event type (${JSON.stringify(type)})` };
  const action = type.slice(type.lastIndexOf('.') + 1) as ApiServerAction;
  const base = { type, action, id: ce.id as string, source: ce.source as string };
  const subject = typeof ce.subject === 'string' ? { subject: ce.subject } : {};
  if (type.includes('.ref.')) {
    const ref = parseWith(KubeRef, data, 'data');
    if (!ref.ok) return ref;
    return { ok: true, value: { mode: 'ref', ...base, ...subject, ref: ref.value } };
  }
  const object = parseWith(KubeObject, data, 'data');
  if (!object.ok) return object;
  return { ok: true, value: { mode: 'resource', ...base, ...subject, object: object.value } };
}

/** Parses a bare Kubernetes object (the data of a Resource-mode event). */
export function parseKubeObject(input: unknown): ParseResult<KubeObject> {
  return parseWith(KubeObject, input);
}
