// SigV4 verification in front of the local S3 server (docs/storage.md, "Local S3 server"). The request is signed
// again with the AWS SDK's own signer (@smithy/signature-v4, what @aws-sdk/client-s3 signs with) from the
// secret the access key names, using only the headers the client said it signed, and the two signatures are
// compared in constant time. Header auth (`Authorization: AWS4-HMAC-SHA256 ...`) and presigned URLs
// (`X-Amz-Signature` in the query) are both checked; anything else is refused.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';

function toBuffer(data: ArrayBuffer | ArrayBufferView): Buffer {
  return data instanceof ArrayBuffer ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** node:crypto as the signer's hash constructor (`new Sha256(secret?)` → update → digest). */
class Sha256 {
  private readonly hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', typeof secret === 'string' ? secret : toBuffer(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void { this.hash.update(typeof data === 'string' ? data : toBuffer(data)); }
  digest(): Promise<Uint8Array> { return Promise.resolve(this.hash.digest()); }
}

export type SigV4Verdict =
  | { ok: true; accessKeyId: string }
  | { ok: false; status: 400 | 403; code: 'AccessDenied' | 'InvalidAccessKeyId' | 'SignatureDoesNotMatch' | 'AuthorizationHeaderMalformed' | 'MissingSecurityHeader'; message: string };

const HEADER_AUTH = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
/** How far a header-signed request's clock may be off (S3 answers RequestTimeTooSkewed past 15 minutes). */
const MAX_SKEW_MS = 15 * 60 * 1000;

function parseAmzDate(value: string | undefined): Date | undefined {
  const m = AMZ_DATE.exec(value ?? '');
  if (!m) return undefined;
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

const denied = (code: Exclude<SigV4Verdict, { ok: true }>['code'], message: string, status: 400 | 403 = 403): SigV4Verdict => ({ ok: false, status, code, message });

/** Verifies one request against `secrets` (access key id → secret access key). */
export async function verifySigV4(req: IncomingMessage, secrets: ReadonlyMap<string, string>, now: Date = new Date()): Promise<SigV4Verdict> {
  const url = new URL(req.url ?? '/', 'http://placeholder');
  const query: Record<string, string | string[]> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    query[key] = values.length === 1 ? values[0] ?? '' : values;
  }
  const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
  const header = (name: string): string | undefined => {
    const v = req.headers[name];
    return Array.isArray(v) ? v.join(',') : v;
  };
  const presigned = typeof query['X-Amz-Signature'] === 'string';
  const authorization = header('authorization');
  if (!presigned && !authorization) return denied('AccessDenied', 'Anonymous access is not allowed');

  let accessKeyId: string; let shortDate: string; let region: string; let service: string; let signedHeaders: string[]; let provided: string; let amzDate: string | undefined;
  if (presigned) {
    if (query['X-Amz-Algorithm'] !== 'AWS4-HMAC-SHA256') return denied('AuthorizationHeaderMalformed', 'X-Amz-Algorithm only supports AWS4-HMAC-SHA256', 400);
    const credential = String(query['X-Amz-Credential'] ?? '').split('/');
    if (credential.length !== 5 || credential[4] !== 'aws4_request') return denied('AuthorizationHeaderMalformed', 'X-Amz-Credential is malformed', 400);
    [accessKeyId, shortDate, region, service] = credential as [string, string, string, string];
    signedHeaders = String(query['X-Amz-SignedHeaders'] ?? '').split(';').filter(Boolean);
    provided = String(query['X-Amz-Signature']);
    amzDate = typeof query['X-Amz-Date'] === 'string' ? query['X-Amz-Date'] : undefined;
  } else {
    const m = HEADER_AUTH.exec(authorization ?? '');
    if (!m) return denied('AuthorizationHeaderMalformed', 'the Authorization header is not AWS4-HMAC-SHA256 with Credential, SignedHeaders and Signature', 400);
    [, accessKeyId, shortDate, region, service] = m as unknown as [string, string, string, string, string];
    signedHeaders = (m[5] ?? '').split(';');
    provided = m[6] ?? '';
    amzDate = header('x-amz-date');
    if (!header('x-amz-content-sha256')) return denied('MissingSecurityHeader', 'Missing required header for this request: x-amz-content-sha256', 400);
  }
  const secret = secrets.get(accessKeyId);
  if (secret === undefined) return denied('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  const signingDate = parseAmzDate(amzDate);
  if (!signingDate || amzDate?.slice(0, 8) !== shortDate) return denied('AccessDenied', 'X-Amz-Date is missing, malformed or does not match the credential scope');
  if (!signedHeaders.includes('host')) return denied('AccessDenied', 'host must be a signed header');
  if (presigned) {
    const expires = Number(query['X-Amz-Expires']);
    if (!Number.isInteger(expires) || expires < 1 || expires > 604800) return denied('AuthorizationHeaderMalformed', 'X-Amz-Expires must be 1..604800 seconds', 400);
    if (now.getTime() > signingDate.getTime() + expires * 1000) return denied('AccessDenied', 'Request has expired');
  } else if (Math.abs(now.getTime() - signingDate.getTime()) > MAX_SKEW_MS) {
    return denied('AccessDenied', 'The difference between the request time and the current time is too large');
  }

  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const v = header(name);
    if (v === undefined) return denied('SignatureDoesNotMatch', `signed header ${name} is missing`);
    headers[name] = v;
  }
  const host = header('host') ?? '';
  // S3 signs the path as sent (no double encoding) — the client's `uriEscapePath: false`.
  const signer = new SignatureV4({ service, region, sha256: Sha256, credentials: { accessKeyId, secretAccessKey: secret }, uriEscapePath: false });
  const base = { method: req.method ?? 'GET', protocol: 'http:', hostname: host.replace(/:\d+$/, ''), path: rawPath };
  let expected: string;
  if (presigned) {
    const { ['X-Amz-Signature']: _sig, ...rest } = query;
    void _sig;
    // Presigned S3 URLs sign UNSIGNED-PAYLOAD; the header only tells the signer so and is not itself signed.
    const signed = await signer.presign({ ...base, query: rest, headers: { ...headers, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
      { signingDate, expiresIn: Number(query['X-Amz-Expires']), unsignableHeaders: new Set(['x-amz-content-sha256']), unhoistableHeaders: new Set(['x-amz-content-sha256']) });
    expected = String(signed.query?.['X-Amz-Signature'] ?? '');
  } else {
    const signed = await signer.sign({ ...base, query, headers }, { signingDate });
    expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization ?? ''))?.[1] ?? '';
  }
  if (!expected || !sameHex(expected, provided)) {
    return denied('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
  }
  return { ok: true, accessKeyId };
}
