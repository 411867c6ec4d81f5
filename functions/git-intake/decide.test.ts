import { parseGitHubPush, type GitHubPush } from '../../events/index.ts';
import { parseCatalog } from '../../runtime/catalog.ts';
import { decide, gitEventId, normaliseGitUrl, type GitAction } from './decide.ts';

const catalog = parseCatalog(`
defaults:
  notebook: { gitUrl: https://github.com/Example/Models.git, gitRef: main, image: img }
  features: { count: 5 }
  output: { kind: regression, width: 5 }
models:
  - name: anomaly-detector
    inferenceService: anomaly-detector
    notebook: { path: notebooks/anomaly/train.ipynb }
    git: { watchPaths: [src/features/, requirements.txt] }
  - name: predictive-analytics
    inferenceService: predictive-analytics
    notebook: { path: notebooks/predictive/train.ipynb, gitUrl: "git@github.com:example/models.git", gitRef: release }
  - name: churn
    inferenceService: churn
    notebook: { path: nb/churn.ipynb, gitUrl: "https://gitlab.example.com/ds/churn.git" }
  - name: paused
    inferenceService: paused
    enabled: false
    notebook: { path: notebooks/paused/train.ipynb }
`);

const AFTER = '59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5';
const DELIVERY = '72d3162e-cc78-11e3-81ab-4c9367dc0958';

function push(opts: { ref?: string; files?: string[]; message?: string | null; deleted?: boolean; repo?: Record<string, unknown>; pusher?: string } = {}): GitHubPush {
  const files = opts.files ?? ['notebooks/anomaly/train.ipynb'];
  const head = opts.message === null ? null : { id: AFTER, message: opts.message ?? 'Tune the detector\n\nLonger body', added: [], removed: [], modified: files };
  const parsed = parseGitHubPush({
    ref: opts.ref ?? 'refs/heads/main', before: '6113728f27ae82c7b1a177c8d03f9e96e0adf246', after: AFTER, deleted: opts.deleted ?? false,
    repository: opts.repo ?? { full_name: 'example/models', clone_url: 'https://github.com/example/models.git', html_url: 'https://github.com/example/models', ssh_url: 'git@github.com:example/models.git' },
    pusher: { name: opts.pusher ?? 'octocat', email: 'octocat@example.com' },
    head_commit: head,
    commits: head ? [head] : [],
  });
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.value;
}

function request(model: string, gitRef = 'main', reason: string | undefined = 'Tune the detector'): GitAction {
  const data: Record<string, unknown> = { model, trigger: 'git', gitRef, requestedBy: 'octocat', provenance: { commitSha: AFTER, deliveryId: DELIVERY, pusher: 'octocat', repository: 'example/models' } };
  if (reason !== undefined) data.reason = reason;
  return { kind: 'request-training', id: gitEventId(DELIVERY, model), data } as GitAction;
}
const ignore = (model: string, reason: string): GitAction => ({ kind: 'ignore', model, reason } as GitAction);
const others = [ignore('predictive-analytics', 'other-branch'), ignore('churn', 'other-repository')];

const rows: Array<[string, GitHubPush, GitAction[]]> = [
  ['the notebook itself changed on the branch', push(), [request('anomaly-detector'), ...others, ignore('paused', 'no-watched-change')]],
  ['a file under a watched folder', push({ files: ['src/features/window.py'] }), [request('anomaly-detector'), ...others, ignore('paused', 'no-watched-change')]],
  ['a watched file, exact match', push({ files: ['requirements.txt'] }), [request('anomaly-detector'), ...others, ignore('paused', 'no-watched-change')]],
  ['a file merely starting like an exact watch entry does not count', push({ files: ['requirements.txt.bak', 'src/featuresX/a.py', 'README.md'] }),
    [ignore('anomaly-detector', 'no-watched-change'), ...others, ignore('paused', 'no-watched-change')]],
  ['a disabled model is ignored only once it would have matched', push({ files: ['notebooks/paused/train.ipynb'] }),
    [ignore('anomaly-detector', 'no-watched-change'), ...others, ignore('paused', 'disabled')]],
  ['another branch of the same repo (scp-style catalog URL)', push({ ref: 'refs/heads/release', files: ['notebooks/predictive/train.ipynb'] }),
    [ignore('anomaly-detector', 'other-branch'), request('predictive-analytics', 'release'), ignore('churn', 'other-repository'), ignore('paused', 'other-branch')]],
  ['a push to another repository', push({ repo: { full_name: 'someone/else', clone_url: 'https://github.com/someone/else.git', html_url: 'https://github.com/someone/else' } }),
    [ignore('anomaly-detector', 'other-repository'), ignore('predictive-analytics', 'other-repository'), ignore('churn', 'other-repository'), ignore('paused', 'other-repository')]],
  ['a fork named like the repo on another host', push({ repo: { full_name: 'example/models', clone_url: 'https://evil.example/example/models.git', html_url: 'https://evil.example/example/models' } }),
    [ignore('anomaly-detector', 'other-repository'), ignore('predictive-analytics', 'other-repository'), ignore('churn', 'other-repository'), ignore('paused', 'other-repository')]],
  ['only html_url known, mixed case', push({ repo: { full_name: 'Example/Models', clone_url: '', html_url: 'HTTPS://GitHub.com/EXAMPLE/models/' } }),
    [{ kind: 'request-training', id: gitEventId(DELIVERY, 'anomaly-detector'), data: { model: 'anomaly-detector', trigger: 'git', gitRef: 'main', requestedBy: 'octocat', reason: 'Tune the detector', provenance: { commitSha: AFTER, deliveryId: DELIVERY, pusher: 'octocat', repository: 'Example/Models' } } }, ...others, ignore('paused', 'no-watched-change')]],
  ['no head commit and no commits: nothing touched', push({ message: null, files: [] }),
    [ignore('anomaly-detector', 'no-watched-change'), ...others, ignore('paused', 'no-watched-change')]],
  ['a deleted branch', push({ deleted: true }), [{ kind: 'ignore', reason: 'branch-deleted' }]],
  ['a tag', push({ ref: 'refs/tags/v1.0' }), [{ kind: 'ignore', reason: 'tag' }]],
  ['another kind of ref', push({ ref: 'refs/pull/1/head' }), [{ kind: 'ignore', reason: 'not-a-branch' }]],
  ['a branch name git would never accept', push({ ref: 'refs/heads/x/../../etc' }), [{ kind: 'refuse', error: 'invalid', message: 'pushed branch "x/../../etc" must not contain ".."' }]],
  ['a branch name that reads as an option', push({ ref: 'refs/heads/-upload-pack=evil' }), [{ kind: 'refuse', error: 'invalid', message: 'pushed branch "-upload-pack=evil" must not start with "-"' }]],
];

describe('git-intake decide', () => {
  test.each(rows)('%s', (_name, payload, expected) => {
    expect(decide(payload, DELIVERY, catalog)).toEqual(expected);
  });

  test('the reason is the first line of the head commit, cut to 1024 characters', () => {
    const [action] = decide(push({ message: `${'m'.repeat(3000)}\nsecond line` }), DELIVERY, catalog);
    if (action?.kind !== 'request-training') throw new Error('expected a request');
    expect(action.data.reason).toBe(`${'m'.repeat(1023)}…`);
  });

  test.each([
    ['https://github.com/Example/Models.git', 'github.com/example/models'],
    ['https://token:x@github.com/example/models/', 'github.com/example/models'],
    ['ssh://git@github.com:22/example/models.git', 'github.com/example/models'],
    ['git@github.com:example/models.git', 'github.com/example/models'],
    ['git://github.com/example/models.git', 'github.com/example/models'],
    ['ftp://github.com/example/models', undefined],
    ['not a url', undefined],
    ['', undefined],
  ])('normaliseGitUrl(%j) = %j', (url, expected) => {
    expect(normaliseGitUrl(url)).toBe(expected);
  });

  test('ids: same delivery and model → same id; another model or delivery → another id', () => {
    const id = gitEventId(DELIVERY, 'anomaly-detector');
    expect(id).toMatch(/^git-[0-9a-f]{32}$/);
    expect(gitEventId(DELIVERY, 'anomaly-detector')).toBe(id);
    expect(gitEventId(DELIVERY, 'churn')).not.toBe(id);
    expect(gitEventId('other', 'anomaly-detector')).not.toBe(id);
  });
});
