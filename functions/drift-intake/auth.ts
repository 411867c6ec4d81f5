import { createHash, timingSafeEqual } from 'node:crypto';

// Constant-time bearer token check. Both sides are hashed first so the comparison is over equal-length
// digests and neither the token's length nor a common prefix leaks through timing.

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** True when `authorization` is `Bearer <token>` (scheme case-insensitive) carrying exactly `expected`. */
export function bearerMatches(authorization: string | undefined, expected: string): boolean {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
  const presented = match?.[1] ?? '';
  // Always hash and compare, even when the header is absent, so every refusal costs the same.
  const same = timingSafeEqual(sha256(presented), sha256(expected));
  return match !== null && same;
}
