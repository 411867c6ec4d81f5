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
  /**
   * The API answered 403: a configuration fault (a Role without a permission an admission plugin or the
   * request needs). Never silent: a run fails at once naming the permission; with no run yet, 503 keeps the
   * request with the broker (backoff, then the dead-letter sink, which notifies) until the Role is fixed.
   */
  forbidden: 'forbidden',
} as const;
export type ErrorKind = (typeof ErrorKinds)[keyof typeof ErrorKinds];

const statusByKind = { invalid: 400, permanent: 422, auth: 401, retryable: 503, forbidden: 503 } as const satisfies Record<ErrorKind, number>;

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

/** A 403 from the API: `missing` names what the caller's Role lacks (`update on modelruns/finalizers`). */
export class ForbiddenError extends LifecycleError {
  readonly missing: string;
  constructor(message: string, missing: string, options?: { cause?: unknown }) {
    super('forbidden', message, options);
    this.name = 'ForbiddenError';
    this.missing = missing;
  }
}

/**
 * What a Role lacks, read from the API server's 403 message: the RBAC wording (`cannot create resource "jobs" in
 * API group "batch"`) or OwnerReferencesPermissionEnforcement's (kubernetes plugin/pkg/admission/gc), whose
 * message does not name the owner: `ownerKinds` (the kinds of the blocking owner references sent) does.
 */
export function missingPermission(apiMessage: string, ownerKinds: readonly string[] = []): string {
  const rbac = /cannot (\S+) resource "([^"]+)" in API group "([^"]*)"/.exec(apiMessage);
  if (rbac) return `${rbac[1] ?? ''} on ${rbac[2] ?? ''}${rbac[3] ? ` in API group "${rbac[3]}"` : ''}`;
  const target = /^([a-z0-9-]+)(?:\.([a-z0-9.-]+))? "/.exec(apiMessage);
  const resource = target?.[1] ?? 'the object';
  const group = target?.[2];
  if (apiMessage.includes("cannot set an ownerRef on a resource you can't delete")) return `delete on ${resource}${group ? ` in API group "${group}"` : ''} (needed to set owner references)`;
  if (apiMessage.includes('cannot set blockOwnerDeletion if an ownerReference refers to a resource you can\'t set finalizers on')) {
    const owners = ownerKinds.length > 0 ? ownerKinds.map((k) => `${k.toLowerCase()}s/finalizers`).join(', ') : "the owner's finalizers";
    return `update on ${owners} (needed for blockOwnerDeletion)`;
  }
  if (apiMessage.includes('violates PodSecurity')) return 'a pod spec that meets the namespace\'s Pod Security level';
  return 'a permission the API server did not name';
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
    if (status === 403) {
      const missing = missingPermission(message);
      return new ForbiddenError(`forbidden: missing ${missing}: ${message}`, missing, { cause: err });
    }
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
