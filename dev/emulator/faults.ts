// Fault injection for HTTP requests: errors, latency and connection resets, drawn from a seeded PRNG.

export type FaultVerb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection' | 'write' | 'read';

export interface FaultRule {
  /** `write` = create/update/patch/delete/deletecollection; `read` = get/list/watch. Unset: every verb. */
  verb?: FaultVerb;
  /** Plural resource name (`leases`); unset: every resource. */
  resource?: string;
  subresource?: string;
  namespace?: string;
  /** Only requests of users whose name starts with this (e.g. the functions' ServiceAccounts). */
  userPrefix?: string;
  /** Probability per matching request; default 1. */
  rate?: number;
  /** Answer with this HTTP status (a Status body with the matching reason). */
  status?: number;
  message?: string;
  /** Delay before the request is handled. */
  latencyMs?: number;
  /** Destroy the connection without an answer. */
  reset?: boolean;
}

export interface FaultRequest {
  verb: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  user?: string;
}

export interface FaultDecision {
  latencyMs: number;
  reset: boolean;
  status?: number;
  message?: string;
}

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
const READ_VERBS = new Set(['get', 'list', 'watch']);

/** mulberry32: tiny, fast and good enough to make fault runs reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function verbMatches(rule: FaultVerb | undefined, verb: string): boolean {
  if (rule === undefined) return true;
  if (rule === 'write') return WRITE_VERBS.has(verb);
  if (rule === 'read') return READ_VERBS.has(verb);
  return rule === verb;
}

export class Faults {
  private list: FaultRule[] = [];
  private random: () => number;

  constructor(seed = 1) {
    this.random = prng(seed);
  }

  /** Replaces every rule. */
  set(rules: FaultRule[]): void {
    this.list = rules.map((r) => ({ ...r }));
  }

  add(rule: FaultRule): void {
    this.list.push({ ...rule });
  }

  clear(): void {
    this.list = [];
  }

  /** Restarts the PRNG, so a run can be replayed. */
  reseed(seed: number): void {
    this.random = prng(seed);
  }

  get rules(): readonly FaultRule[] {
    return this.list;
  }

  /** Rules apply in order; latency adds up, the first reset or status that fires wins. */
  decide(req: FaultRequest): FaultDecision {
    const out: FaultDecision = { latencyMs: 0, reset: false };
    for (const r of this.list) {
      if (!verbMatches(r.verb, req.verb)) continue;
      if (r.resource !== undefined && r.resource !== req.resource) continue;
      if (r.subresource !== undefined && r.subresource !== req.subresource) continue;
      if (r.namespace !== undefined && r.namespace !== req.namespace) continue;
      if (r.userPrefix !== undefined && !(req.user ?? '').startsWith(r.userPrefix)) continue;
      if (this.random() >= (r.rate ?? 1)) continue;
      if (r.latencyMs) out.latencyMs += r.latencyMs;
      if (out.reset || out.status !== undefined) continue;
      if (r.reset) out.reset = true;
      else if (r.status !== undefined) {
        out.status = r.status;
        if (r.message !== undefined) out.message = r.message;
      }
    }
    return out;
  }
}
