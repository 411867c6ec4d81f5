import { createHash } from 'node:crypto';
import { REASON_MAX, REQUESTED_BY_MAX, branchOf, changedFiles, clipMessage, gitRefProblem, tagOf, type GitHubPush, type TrainingRequested } from '../../events/index.ts';
import type { Catalog, CatalogModel } from '../../runtime/catalog.ts';

// Pure: a GitHub push + its delivery id + the catalog → which models to retrain. No I/O, no clock.

export type IgnoreReason = 'branch-deleted' | 'tag' | 'not-a-branch' | 'other-repository' | 'other-branch' | 'no-watched-change' | 'disabled';

export type GitAction =
  | { kind: 'request-training'; id: string; data: TrainingRequested }
  | { kind: 'ignore'; reason: IgnoreReason; model?: string }
  | { kind: 'refuse'; error: 'invalid'; message: string };

/** GitHub re-delivers with the same delivery id, so a redelivery maps to the same event (and ModelRun). */
export function gitEventId(deliveryId: string, model: string): string {
  return `git-${createHash('sha256').update(`${deliveryId}\n${model}`).digest('hex').slice(0, 32)}`;
}

/**
 * `host/owner/repo` in lower case for https://, ssh:// and scp-like `git@host:owner/repo` URLs, without
 * credentials, port, `.git` or trailing slashes; undefined when it is none of those.
 */
export function normaliseGitUrl(url: string): string | undefined {
  let host: string;
  let path: string;
  const scp = url.includes('://') ? null : /^(?:[^@/\s]+@)?([^:/\s]+):(.+)$/.exec(url);
  if (scp) {
    host = scp[1] ?? '';
    path = scp[2] ?? '';
  } else {
    try {
      const parsed = new URL(url);
      if (!['https:', 'http:', 'ssh:', 'git:'].includes(parsed.protocol)) return undefined;
      host = parsed.hostname;
      path = parsed.pathname;
    } catch {
      return undefined;
    }
  }
  path = path.replace(/^\/+/, '').replace(/\/+$/, '').replace(/\.git$/i, '');
  if (!host || !path) return undefined;
  return `${host}/${path}`.toLowerCase();
}

/** Every URL form of the pushed repository, normalised. */
export function repositoryUrls(push: GitHubPush): Set<string> {
  const repo = push.repository as Record<string, unknown>;
  const urls = new Set<string>();
  for (const key of ['clone_url', 'html_url', 'ssh_url', 'git_url', 'url']) {
    const value = repo[key];
    const normal = typeof value === 'string' ? normaliseGitUrl(value) : undefined;
    if (normal) urls.add(normal);
  }
  return urls;
}

/** Entries ending in `/` watch everything below them; others name one file. */
export function touches(model: CatalogModel, files: readonly string[]): boolean {
  const watched = [model.notebook.path, ...model.git.watchPaths];
  return files.some((file) => watched.some((w) => (w.endsWith('/') ? file.startsWith(w) : file === w)));
}

export function decide(push: GitHubPush, deliveryId: string, catalog: Catalog): GitAction[] {
  if (push.deleted === true) return [{ kind: 'ignore', reason: 'branch-deleted' }];
  if (tagOf(push.ref) !== undefined) return [{ kind: 'ignore', reason: 'tag' }];
  const branch = branchOf(push.ref);
  if (branch === undefined) return [{ kind: 'ignore', reason: 'not-a-branch' }];
  const problem = gitRefProblem(branch);
  // git itself never accepts such a branch name; something forged this payload.
  if (problem) return [{ kind: 'refuse', error: 'invalid', message: `pushed branch ${JSON.stringify(branch.slice(0, 64))} ${problem}` }];

  const urls = repositoryUrls(push);
  const files = changedFiles(push);
  return catalog.models.map((model): GitAction => {
    const own = normaliseGitUrl(model.notebook.gitUrl);
    if (own === undefined || !urls.has(own)) return { kind: 'ignore', reason: 'other-repository', model: model.name };
    if (model.notebook.gitRef !== branch) return { kind: 'ignore', reason: 'other-branch', model: model.name };
    if (!touches(model, files)) return { kind: 'ignore', reason: 'no-watched-change', model: model.name };
    if (!model.enabled) return { kind: 'ignore', reason: 'disabled', model: model.name };
    return { kind: 'request-training', id: gitEventId(deliveryId, model.name), data: requestData(push, branch, deliveryId, model) };
  });
}

function requestData(push: GitHubPush, branch: string, deliveryId: string, model: CatalogModel): TrainingRequested {
  const data: TrainingRequested = {
    model: model.name,
    trigger: 'git',
    gitRef: branch,
    requestedBy: clipMessage(push.pusher.name, REQUESTED_BY_MAX),
    provenance: { commitSha: push.after, deliveryId, pusher: push.pusher.name, repository: push.repository.full_name },
  };
  const subject = (push.head_commit?.message ?? '').split(/\r?\n/, 1)[0]?.trim();
  if (subject) data.reason = clipMessage(subject, REASON_MAX);
  return data;
}
