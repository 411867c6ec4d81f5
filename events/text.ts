// The one helper that bounds text taken from cluster objects (operator status messages, Job and Pod
// termination messages, condition reasons) before it goes into an event or a ModelRun status, and the
// limits it clips to. Upstream text has no useful bound (a failed notebook's traceback can be 100 KB);
// an event that cannot be built would be retried forever, so text is cut, never refused.

/** `Message` in events/catalog.ts (every event's free-text `message`, `warning`, check messages). */
export const MESSAGE_MAX = 4096;
/** `TrainingRequested.reason` in events/catalog.ts and `spec.reason` in the ModelRun CRD. */
export const REASON_MAX = 1024;
/** `TrainingRequested.requestedBy` in events/catalog.ts. */
export const REQUESTED_BY_MAX = 256;
/** Provenance strings (`groupKey`) in events/catalog.ts. */
export const PROVENANCE_TEXT_MAX = 2048;
/** Every other provenance field (names, ids, times) in events/catalog.ts. */
export const PROVENANCE_FIELD_MAX = 512;
/** A gate check's `name` (`GateCheck`, `ModelRejected.failed`) in events/catalog.ts. */
export const CHECK_NAME_MAX = 128;
/** URLs in events/catalog.ts (`generatorURL`). */
export const URL_MAX = 2048;
/** A ModelRun condition's `message` (maxLength in config/crds/modelrun.yaml, as metav1.Condition). */
export const CONDITION_MESSAGE_MAX = 32768;
/** A Kubernetes Event's `message` as we write it (the API server truncates at 1 KiB in practice). */
export const K8S_EVENT_MESSAGE_MAX = 1024;
/** One-line summaries shown in step records and notifications. */
export const SUMMARY_MAX = 1000;

export const ELLIPSIS = '…';

export interface ClipOptions {
  /** Replace line breaks (and runs of white space) with one space first: for one-line fields. */
  oneLine?: boolean;
}

/**
 * `text` cut to at most `max` UTF-16 code units, ending in "…" when it was cut; a surrogate pair is
 * never split. Never throws on length; non-strings (a status field of the wrong type) become "".
 */
export function clip(text: unknown, max: number, opts: ClipOptions = {}): string {
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`clip: max must be a positive integer, got ${max}`);
  let s = typeof text === 'string' ? text : '';
  if (opts.oneLine) s = s.replace(/\s+/g, ' ').trim();
  if (s.length <= max) return s;
  let end = max - ELLIPSIS.length;
  const last = s.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${s.slice(0, end)}${ELLIPSIS}`;
}
