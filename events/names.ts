// Names and primitive schemas shared by every event and upstream payload.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { clip, MESSAGE_MAX } from './text.ts';

export const DNS1123_LABEL_MAX = 63;
// A model name is embedded in derived names (`model-lock-<model>`, run names with a suffix).
export const MODEL_NAME_MAX = 40;
// `<run>-promote` (the longest Job suffix) must still fit a 63-char label.
export const RUN_NAME_MAX = 52;
export const GIT_REF_MAX = 200;
export const NOTEBOOK_PATH_MAX = 512;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function isDns1123Label(value: string, maxLength: number = DNS1123_LABEL_MAX): boolean {
  return value.length <= maxLength && DNS1123_LABEL.test(value);
}

/**
 * Turns any text into a valid DNS-1123 label of at most `maxLength` chars. When the text had to be
 * changed or cut, a short hash of the original is appended so distinct inputs stay distinct.
 */
export function toDns1123Label(input: string, maxLength: number = DNS1123_LABEL_MAX): string {
  if (maxLength < 10) throw new RangeError(`maxLength must be >= 10, got ${maxLength}`);
  if (isDns1123Label(input, maxLength)) return input;
  const hash = createHash('sha256').update(input).digest('hex').slice(0, 8);
  const cleaned = input
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+|-+$/g, '');
  const room = maxLength - hash.length - 1;
  const head = cleaned.slice(0, room).replace(/-+$/, '');
  return head ? `${head}-${hash}` : hash;
}

function dns1123Label(maxLength: number) {
  return z
    .string()
    .max(maxLength, `must be at most ${maxLength} characters`)
    .regex(DNS1123_LABEL, 'must be a DNS-1123 label (lower-case letters, digits and "-", alphanumeric at both ends)');
}

/** A Kubernetes object name we reference (label-shaped: Jobs, NVJs, InferenceServices, Pods). */
export const K8sName = dns1123Label(DNS1123_LABEL_MAX);
export type K8sName = z.infer<typeof K8sName>;

export const ModelName = dns1123Label(MODEL_NAME_MAX);
export type ModelName = z.infer<typeof ModelName>;

export const RunName = dns1123Label(RUN_NAME_MAX);
export type RunName = z.infer<typeof RunName>;

// Control characters (C0 and DEL) are never valid in refs or paths.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

export function hasControlChars(text: string): boolean {
  return CONTROL_CHARS.test(text);
}

/**
 * Why `ref` is not a valid branch or tag name (rules of `git check-ref-format --allow-onelevel`,
 * plus no leading "-" so it can never be read as an option), or undefined when it is valid.
 */
export function gitRefProblem(ref: string): string | undefined {
  if (ref.length === 0) return 'is empty';
  if (ref.length > GIT_REF_MAX) return `must be at most ${GIT_REF_MAX} characters`;
  if (CONTROL_CHARS.test(ref)) return 'must not contain control characters';
  if (ref.includes(' ')) return 'must not contain spaces';
  const bad = /[~^:?*[\\]/.exec(ref);
  if (bad) return `must not contain "${bad[0]}"`;
  if (ref.includes('..')) return 'must not contain ".."';
  if (ref.includes('@{')) return 'must not contain "@{"';
  if (ref === '@') return 'must not be "@"';
  if (ref.startsWith('-')) return 'must not start with "-"';
  if (ref.startsWith('/')) return 'must not start with "/"';
  if (ref.endsWith('/')) return 'must not end with "/"';
  if (ref.endsWith('.')) return 'must not end with "."';
  if (ref.includes('//')) return 'must not contain "//"';
  for (const component of ref.split('/')) {
    if (component.startsWith('.')) return 'a path component must not start with "."';
    if (component.endsWith('.lock')) return 'a path component must not end with ".lock"';
  }
  return undefined;
}

export function isGitRef(ref: string): boolean {
  return gitRefProblem(ref) === undefined;
}

/** A git branch or tag name (optionally `refs/heads/...` or `refs/tags/...`), never an option. */
export const GitRef = z.string().superRefine((ref, ctx) => {
  const problem = gitRefProblem(ref);
  if (problem) ctx.addIssue({ code: 'custom', message: `invalid git ref: ${problem}` });
});
export type GitRef = z.infer<typeof GitRef>;

/**
 * Why `path` is not a safe relative notebook path, or undefined when it is. Relative to the
 * repository root; no traversal, no absolute paths, no characters that change meaning in a shell.
 */
export function notebookPathProblem(path: string): string | undefined {
  if (path.length === 0) return 'is empty';
  if (path.length > NOTEBOOK_PATH_MAX) return `must be at most ${NOTEBOOK_PATH_MAX} characters`;
  if (CONTROL_CHARS.test(path)) return 'must not contain control characters';
  if (path.includes('\\')) return 'must not contain "\\"';
  if (path.startsWith('/')) return 'must be relative (no leading "/")';
  if (path.startsWith('-')) return 'must not start with "-"';
  if (!path.endsWith('.ipynb')) return 'must end in ".ipynb"';
  const segments = path.split('/');
  if (segments.some((s) => s === '..')) return 'must not contain ".." segments';
  if (segments.some((s) => s === '')) return 'must not contain empty segments';
  if (segments[segments.length - 1] === '.ipynb') return 'must name a file before ".ipynb"';
  return undefined;
}

export const NotebookPath = z.string().superRefine((path, ctx) => {
  const problem = notebookPathProblem(path);
  if (problem) ctx.addIssue({ code: 'custom', message: `invalid notebook path: ${problem}` });
});
export type NotebookPath = z.infer<typeof NotebookPath>;

export const DataSource = z.enum(['synthetic', 'prometheus', 'hybrid']);
export type DataSource = z.infer<typeof DataSource>;

export const Profile = z.enum(['cpu', 'gpu']);
export type Profile = z.infer<typeof Profile>;

export const Trigger = z.enum(['schedule', 'drift', 'git', 'manual', 'pipeline', 'retry', 'catchup']);
export type Trigger = z.infer<typeof Trigger>;

/** ISO-8601 / RFC 3339 date-time with `Z` or a numeric offset, any sub-second precision. */
export const IsoTime = z.iso.datetime({ offset: true });
export type IsoTime = z.infer<typeof IsoTime>;

/** Free text meant for humans (messages, reasons); bounded so events stay small. */
export const Message = z.string().max(MESSAGE_MAX);
export type Message = z.infer<typeof Message>;

/** Cuts text to fit `Message` (producers pass error text of unknown length); see events/text.ts. */
export function clipMessage(text: string, max: number = MESSAGE_MAX): string {
  return clip(text, max);
}

export const Sha256 = z.string().regex(/^[a-f0-9]{64}$/, 'must be 64 lower-case hex characters');
export type Sha256 = z.infer<typeof Sha256>;

export const CommitSha = z.string().regex(/^[a-f0-9]{40}$/, 'must be a 40 lower-case hex character commit SHA');
export type CommitSha = z.infer<typeof CommitSha>;

/** One-line description of the first zod issue(s), each with its field path (`data.checks[0].ok`). */
export function describeIssues(error: z.ZodError, root?: string, limit = 2): string {
  const parts = error.issues.slice(0, limit).map((issue) => {
    const path = formatPath(root, issue.path);
    return path ? `${path}: ${issue.message}` : issue.message;
  });
  const more = error.issues.length - limit;
  const text = parts.join('; ') + (more > 0 ? ` (+${more} more)` : '');
  return text.replace(/[\r\n]+/g, ' ');
}

function formatPath(root: string | undefined, path: readonly PropertyKey[]): string {
  let out = root ?? '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}
