// Just enough Kubernetes protobuf decoding for the typed requests kubectl sends that way (`auth can-i`,
// `create configmap|secret|namespace|serviceaccount|role|rolebinding|...`). Answers are always JSON.
import { ApiError } from './errors.ts';

type FieldSpec =
  | { name: string; type: 'string' | 'bytes' | 'bool' | 'int' }
  | { name: string; type: 'message'; schema: MessageSchema }
  | { name: string; type: 'map'; value: 'string' | 'bytes' }
  | { name: string; type: 'repeated-string' }
  | { name: string; type: 'repeated-message'; schema: MessageSchema }
  | { name: string; type: 'time' };
type MessageSchema = Record<number, FieldSpec>;

const OWNER_REF: MessageSchema = {
  1: { name: 'kind', type: 'string' },
  3: { name: 'name', type: 'string' },
  4: { name: 'uid', type: 'string' },
  5: { name: 'apiVersion', type: 'string' },
  6: { name: 'controller', type: 'bool' },
  7: { name: 'blockOwnerDeletion', type: 'bool' },
};

const OBJECT_META: MessageSchema = {
  1: { name: 'name', type: 'string' },
  2: { name: 'generateName', type: 'string' },
  3: { name: 'namespace', type: 'string' },
  5: { name: 'uid', type: 'string' },
  6: { name: 'resourceVersion', type: 'string' },
  7: { name: 'generation', type: 'int' },
  11: { name: 'labels', type: 'map', value: 'string' },
  12: { name: 'annotations', type: 'map', value: 'string' },
  13: { name: 'ownerReferences', type: 'repeated-message', schema: OWNER_REF },
  14: { name: 'finalizers', type: 'repeated-string' },
};

const LOCAL_REF: MessageSchema = { 1: { name: 'name', type: 'string' } };

const POLICY_RULE: MessageSchema = {
  1: { name: 'verbs', type: 'repeated-string' },
  2: { name: 'apiGroups', type: 'repeated-string' },
  3: { name: 'resources', type: 'repeated-string' },
  4: { name: 'resourceNames', type: 'repeated-string' },
  5: { name: 'nonResourceURLs', type: 'repeated-string' },
};

const ROLE: MessageSchema = {
  1: { name: 'metadata', type: 'message', schema: OBJECT_META },
  2: { name: 'rules', type: 'repeated-message', schema: POLICY_RULE },
};

const BINDING: MessageSchema = {
  1: { name: 'metadata', type: 'message', schema: OBJECT_META },
  2: {
    name: 'subjects',
    type: 'repeated-message',
    schema: {
      1: { name: 'kind', type: 'string' },
      2: { name: 'apiGroup', type: 'string' },
      3: { name: 'name', type: 'string' },
      4: { name: 'namespace', type: 'string' },
    },
  },
  3: {
    name: 'roleRef',
    type: 'message',
    schema: { 1: { name: 'apiGroup', type: 'string' }, 2: { name: 'kind', type: 'string' }, 3: { name: 'name', type: 'string' } },
  },
};

const KINDS: Record<string, MessageSchema> = {
  'rbac.authorization.k8s.io/v1/Role': ROLE,
  'rbac.authorization.k8s.io/v1/ClusterRole': ROLE,
  'rbac.authorization.k8s.io/v1/RoleBinding': BINDING,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': BINDING,
  'authorization.k8s.io/v1/SelfSubjectAccessReview': {
    1: { name: 'metadata', type: 'message', schema: OBJECT_META },
    2: {
      name: 'spec',
      type: 'message',
      schema: {
        1: {
          name: 'resourceAttributes',
          type: 'message',
          schema: {
            1: { name: 'namespace', type: 'string' },
            2: { name: 'verb', type: 'string' },
            3: { name: 'group', type: 'string' },
            4: { name: 'version', type: 'string' },
            5: { name: 'resource', type: 'string' },
            6: { name: 'subresource', type: 'string' },
            7: { name: 'name', type: 'string' },
          },
        },
        2: { name: 'nonResourceAttributes', type: 'message', schema: { 1: { name: 'path', type: 'string' }, 2: { name: 'verb', type: 'string' } } },
      },
    },
  },
  // k8s.io/api authorization/v1 generated.proto: SelfSubjectRulesReviewSpec { string namespace = 1; } (`auth can-i --list`).
  'authorization.k8s.io/v1/SelfSubjectRulesReview': {
    1: { name: 'metadata', type: 'message', schema: OBJECT_META },
    2: { name: 'spec', type: 'message', schema: { 1: { name: 'namespace', type: 'string' } } },
  },
  'v1/ConfigMap': {
    1: { name: 'metadata', type: 'message', schema: OBJECT_META },
    2: { name: 'data', type: 'map', value: 'string' },
    3: { name: 'binaryData', type: 'map', value: 'bytes' },
    4: { name: 'immutable', type: 'bool' },
  },
  'v1/Secret': {
    1: { name: 'metadata', type: 'message', schema: OBJECT_META },
    2: { name: 'data', type: 'map', value: 'bytes' },
    3: { name: 'type', type: 'string' },
    4: { name: 'stringData', type: 'map', value: 'string' },
    5: { name: 'immutable', type: 'bool' },
  },
  'v1/Namespace': { 1: { name: 'metadata', type: 'message', schema: OBJECT_META } },
  'v1/ServiceAccount': {
    1: { name: 'metadata', type: 'message', schema: OBJECT_META },
    3: { name: 'imagePullSecrets', type: 'repeated-message', schema: LOCAL_REF },
    4: { name: 'automountServiceAccountToken', type: 'bool' },
  },
};

interface Field {
  num: number;
  wire: number;
  varint?: bigint;
  bytes?: Buffer;
}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    const b = buf[pos++];
    if (b === undefined) throw new Error('truncated varint');
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
}

function readFields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, p1] = readVarint(buf, pos);
    pos = p1;
    const num = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (wire === 0) {
      const [v, p2] = readVarint(buf, pos);
      pos = p2;
      out.push({ num, wire, varint: v });
    } else if (wire === 2) {
      const [len, p2] = readVarint(buf, pos);
      const end = p2 + Number(len);
      out.push({ num, wire, bytes: buf.subarray(p2, end) });
      pos = end;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

function decodeMessage(buf: Buffer, schema: MessageSchema): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  for (const f of readFields(buf)) {
    const spec = schema[f.num];
    if (!spec) continue;
    switch (spec.type) {
      case 'string': {
        // gogo-protobuf writes every optional scalar; empty means unset in JSON terms.
        const v = f.bytes?.toString('utf8') ?? '';
        if (v !== '') obj[spec.name] = v;
        break;
      }
      case 'bytes':
        obj[spec.name] = f.bytes?.toString('base64') ?? '';
        break;
      case 'bool':
        obj[spec.name] = (f.varint ?? 0n) !== 0n;
        break;
      case 'int':
        if ((f.varint ?? 0n) !== 0n) obj[spec.name] = Number(f.varint);
        break;
      case 'time':
        break;
      case 'message':
        obj[spec.name] = decodeMessage(f.bytes ?? Buffer.alloc(0), spec.schema);
        break;
      case 'repeated-string':
        obj[spec.name] = [...((obj[spec.name] as string[] | undefined) ?? []), f.bytes?.toString('utf8') ?? ''];
        break;
      case 'repeated-message':
        obj[spec.name] = [...((obj[spec.name] as unknown[] | undefined) ?? []), decodeMessage(f.bytes ?? Buffer.alloc(0), spec.schema)];
        break;
      case 'map': {
        let key = '';
        let value = '';
        for (const entry of readFields(f.bytes ?? Buffer.alloc(0))) {
          if (entry.num === 1) key = entry.bytes?.toString('utf8') ?? '';
          if (entry.num === 2) value = spec.value === 'bytes' ? (entry.bytes?.toString('base64') ?? '') : (entry.bytes?.toString('utf8') ?? '');
        }
        obj[spec.name] = { ...(obj[spec.name] as Record<string, string> | undefined), [key]: value };
        break;
      }
    }
  }
  return obj;
}

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** Decodes a `k8s\0`-framed runtime.Unknown into a JSON object; 415 for kinds we cannot read. */
export function decodeKubernetesProtobuf(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw new ApiError(400, 'BadRequest', 'protobuf body without the k8s magic prefix');
  const unknown = decodeMessage(body.subarray(4), {
    1: { name: 'typeMeta', type: 'message', schema: { 1: { name: 'apiVersion', type: 'string' }, 2: { name: 'kind', type: 'string' } } },
    2: { name: 'raw', type: 'bytes' },
  });
  const typeMeta = (unknown.typeMeta ?? {}) as { apiVersion?: string; kind?: string };
  const schema = KINDS[`${typeMeta.apiVersion ?? ''}/${typeMeta.kind ?? ''}`];
  if (!schema) {
    throw new ApiError(415, 'UnsupportedMediaType', `protobuf is not supported for ${typeMeta.apiVersion ?? ''}/${typeMeta.kind ?? ''}; send application/json`);
  }
  const raw = Buffer.from(typeof unknown.raw === 'string' ? unknown.raw : '', 'base64');
  return { apiVersion: typeMeta.apiVersion, kind: typeMeta.kind, ...decodeMessage(raw, schema) };
}
