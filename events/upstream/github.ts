// GitHub webhook payloads we read: `push` and `ping` (https://docs.github.com/webhooks/webhook-events-and-payloads).
import { z } from 'zod';
import { parseWith, type ParseResult } from './common.ts';

// GitHub includes at most 2048 commits in a push payload.
export const PUSH_COMMITS_MAX = 2048;
const FILES_MAX = 5000;

const Sha = z.string().regex(/^[0-9a-f]{40}$/, 'must be a 40 hex character commit SHA');
const FilePath = z.string().min(1).max(4096);
const FileList = z.array(FilePath).max(FILES_MAX).default([]);

export const PushCommit = z
  .object({
    id: Sha,
    message: z.string().optional(),
    timestamp: z.string().optional(),
    added: FileList,
    removed: FileList,
    modified: FileList,
  })
  .loose();
export type PushCommit = z.infer<typeof PushCommit>;

export const GitHubRepository = z
  .object({
    full_name: z.string().min(1).max(512),
    clone_url: z.string().max(2048),
    html_url: z.string().max(2048),
  })
  .loose();
export type GitHubRepository = z.infer<typeof GitHubRepository>;

export const GitHubPush = z
  .object({
    ref: z.string().min(1).max(1024),
    before: Sha,
    after: Sha,
    repository: GitHubRepository,
    pusher: z.object({ name: z.string().max(256), email: z.string().max(512).nullish() }).loose(),
    head_commit: PushCommit.nullish(),
    commits: z.array(PushCommit).max(PUSH_COMMITS_MAX).default([]),
    created: z.boolean().optional(),
    deleted: z.boolean().optional(),
    forced: z.boolean().optional(),
  })
  .loose();
export type GitHubPush = z.infer<typeof GitHubPush>;

export const GitHubPing = z
  .object({
    zen: z.string().max(1024),
    hook_id: z.int(),
    hook: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();
export type GitHubPing = z.infer<typeof GitHubPing>;

export function parseGitHubPush(input: unknown): ParseResult<GitHubPush> {
  return parseWith(GitHubPush, input);
}

export function parseGitHubPing(input: unknown): ParseResult<GitHubPing> {
  return parseWith(GitHubPing, input);
}

/** Every path added, removed or modified by the push's commits (head_commit included), deduplicated. */
export function changedFiles(push: GitHubPush): string[] {
  const files = new Set<string>();
  const commits = push.head_commit ? [...push.commits, push.head_commit] : push.commits;
  for (const commit of commits) {
    for (const list of [commit.added, commit.removed, commit.modified]) {
      for (const file of list) files.add(file);
    }
  }
  return [...files];
}

/** `refs/heads/main` → `main`; tags and other refs → undefined. */
export function branchOf(ref: string): string | undefined {
  const prefix = 'refs/heads/';
  return ref.startsWith(prefix) && ref.length > prefix.length ? ref.slice(prefix.length) : undefined;
}

/** `refs/tags/v1` → `v1`; anything else → undefined. */
export function tagOf(ref: string): string | undefined {
  const prefix = 'refs/tags/';
  return ref.startsWith(prefix) && ref.length > prefix.length ? ref.slice(prefix.length) : undefined;
}
