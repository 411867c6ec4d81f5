// One error taxonomy for every function. Knative retries 5xx/404/408/409/429 and dead-letters other 4xx,
// so a permanent failure must never surface as 404/409 and a transient one must be a 503.
export const ErrorKinds = {
  /** The input can never succeed (bad shape, unknown model): 400. */
  invalid: 'invalid',
  /** Well-formed but refused by a rule that will not change on retry: 422. */
  permanent: 'permanent',
  /** Webhook authentication failed: 401. */
  auth: 'auth',
  /** Worth retrying: API 5xx, conflicts, transport errors, an unreachable broker: 503. */
  retryable: 'retryable',
} as const;
export type ErrorKind = (typeof ErrorKinds)[keyof typeof ErrorKinds];

const statusByKind = { invalid: 400, permanent: 422, auth: 401, retryable: 503 } as const satisfies Record<ErrorKind, number>;

export class LifecycleError extends Error {
  readonly kind: ErrorKind;
  /** faas-js-runtime uses `code` as the HTTP status, so keep it numeric and consistent with `kind`. */
  readonly code: number;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(oneLine(message), options);
    this.name = 'LifecycleError';
    this.kind = kind;
    this.code = statusByKind[kind];
  }
}

export const invalid = (message: string): LifecycleError => new LifecycleError('invalid', message);
export const permanent = (message: string): LifecycleError => new LifecycleError('permanent', message);
export const unauthorized = (message: string): LifecycleError => new LifecycleError('auth', message);
export const retryable = (message: string, cause?: unknown): LifecycleError =>
  new LifecycleError('retryable', message, { cause });

/** The HTTP status for any thrown value: the single mapping from the taxonomy to the wire. */
export function httpStatusOf(err: unknown): number {
  return toLifecycleError(err).code;
}

/** What a handled error becomes on the wire: faas-js-runtime's structured return with a JSON body. */
export interface ErrorReply {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * The reply for any thrown value. The runtime turns a thrown error into a text body (and a string `code`,
 * like Node's ECONNREFUSED, into a 500), so the adapter (runtime/faas.ts) returns this instead of throwing.
 */
export function errorReply(err: unknown): ErrorReply {
  const e = toLifecycleError(err);
  return { statusCode: e.code, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify({ error: e.message, kind: e.kind }) };
}

/**
 * Normalise anything thrown into the taxonomy. Unknown errors are retryable: losing an event to the
 * dead-letter sink because of a bug we could fix and redeploy is worse than retrying it.
 */
export function toLifecycleError(err: unknown): LifecycleError {
  if (err instanceof LifecycleError) return err;
  const status = apiStatusOf(err);
  const message = err instanceof Error ? err.message : String(err);
  if (status !== undefined) {
    // 400/422 from the API server mean our own object is wrong: retrying cannot fix it.
    if (status === 400 || status === 422) return new LifecycleError('permanent', `kubernetes rejected the request (${status}): ${message}`, { cause: err });
    return new LifecycleError('retryable', `kubernetes answered ${status}: ${message}`, { cause: err });
  }
  return new LifecycleError('retryable', message, { cause: err });
}

/** The HTTP status carried by a client-node ApiException or our own KubeError, if any. */
export function apiStatusOf(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown; status?: unknown }).code ?? (err as { status?: unknown }).status;
    if (typeof code === 'number' && code >= 100 && code < 600 && !(err instanceof LifecycleError)) return code;
  }
  return undefined;
}

function oneLine(message: string): string {
  const flat = message.replace(/\s+/g, ' ').trim();
  return flat.length > 500 ? `${flat.slice(0, 497)}...` : flat;
}
