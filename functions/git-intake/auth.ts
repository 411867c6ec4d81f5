import { createHmac, timingSafeEqual } from 'node:crypto';

// GitHub signs the raw request body: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.

const SIGNATURE = /^sha256=([0-9a-f]{64})$/i;

/** True when `header` is a valid signature of exactly `rawBody` under `secret`; compared in constant time. */
export function signatureMatches(header: string | undefined, rawBody: Buffer, secret: string): boolean {
  const expected = createHmac('sha256', secret).update(rawBody).digest();
  const match = SIGNATURE.exec((header ?? '').trim());
  // A malformed header is compared against zeros so every refusal costs the same.
  const presented = match?.[1] ? Buffer.from(match[1], 'hex') : Buffer.alloc(expected.length);
  return timingSafeEqual(presented, expected) && match !== null;
}

/** The header value GitHub would send for `rawBody` (tests and `mlops dev`). */
export function signBody(rawBody: Buffer | string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
}
