// Shared pieces of the upstream payload parsers.
import type { z } from 'zod';
import { decodeEventData } from '../build.ts';
import { describeIssues } from '../names.ts';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string };

export function parseWith<S extends z.ZodType>(schema: S, input: unknown, root?: string): ParseResult<z.infer<S>> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) return { ok: false, reason: describeIssues(parsed.error, root) };
  return { ok: true, value: parsed.data };
}

/** The attributes every CloudEvent carries, plus its decoded data (object, JSON string or base64). */
export function envelopeOf(input: unknown): ParseResult<{ ce: Record<string, unknown>; data: unknown }> {
  if (!input || typeof input !== 'object' || Array.isArray(input)) return { ok: false, reason: 'event is not an object' };
  const ce = input as Record<string, unknown>;
  for (const key of ['id', 'source', 'type'] as const) {
    if (typeof ce[key] !== 'string' || ce[key] === '') return { ok: false, reason: `${key}: required CloudEvent attribute missing` };
  }
  try {
    return { ok: true, value: { ce, data: decodeEventData(ce) } };
  } catch {
    const type = typeof ce.datacontenttype === 'string' ? ` (datacontenttype ${JSON.stringify(ce.datacontenttype.slice(0, 64))})` : '';
    return { ok: false, reason: `data: not valid JSON${type}` };
  }
}
