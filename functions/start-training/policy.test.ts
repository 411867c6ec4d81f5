import type { TrainingRequested } from '../../events/index.ts';
import { findModel, parseCatalog, type CatalogModel } from '../../runtime/catalog.ts';
import { checkOverrides, effectiveSender, senderName, type OverrideVerdict } from './policy.ts';

// Table tests: each row a request, a sender and the model's policy → the exact verdict.

const catalog = parseCatalog(`
defaults:
  notebook: { gitUrl: https://github.com/example/models.git, gitRef: main, image: img }
  features: { count: 5 }
  output: { kind: regression, width: 5 }
models:
  - name: strict
    inferenceService: strict
    notebook: { path: nb/strict.ipynb }
  - name: open
    inferenceService: open
    notebook: { path: nb/open.ipynb, gitRef: release }
    overrides: { gitRef: [git-intake, mlops-cli], notebookPath: ["*"], dataSource: [drift-intake], trainingHours: [], profile: [mlops-cli] }
`);
const strict = findModel(catalog, 'strict') as CatalogModel;
const open = findModel(catalog, 'open') as CatalogModel;
const base = (model: string, extra: Partial<TrainingRequested> = {}): TrainingRequested => ({ model, trigger: 'manual', ...extra });
const ok: OverrideVerdict = { ok: true };
const no = (rule: string, detail: string): OverrideVerdict => ({ ok: false, rule, message: `refused by rule ${rule}: ${detail}` });

describe('training.requested override policy', () => {
  test('the default policy: gitRef only from git-intake, notebookPath from nobody, the rest from anyone', () => {
    expect(strict.overrides).toEqual({ gitRef: ['git-intake'], notebookPath: [], dataSource: ['*'], trainingHours: ['*'], profile: ['*'] });
  });

  test.each<[string, CatalogModel, TrainingRequested, string, OverrideVerdict]>([
    ['no overrides, any sender', strict, base('strict'), 'anything', ok],
    ['no overrides, a foreign source', strict, base('strict'), 'https://evil.example/x', ok],
    ['dataSource from the CLI', strict, base('strict', { dataSource: 'prometheus' }), 'mlops-cli', ok],
    ['trainingHours from drift-intake', strict, base('strict', { trainingHours: 24 }), 'drift-intake', ok],
    ['profile from the CLI', strict, base('strict', { profile: 'gpu' }), 'mlops-cli', ok],
    ['gitRef from git-intake, the watched branch', strict, base('strict', { trigger: 'git', gitRef: 'main' }), 'git-intake', ok],
    ['gitRef from git-intake, another branch', strict, base('strict', { trigger: 'git', gitRef: 'feature' }), 'git-intake',
      no('overrides.gitRef.watched-branch', 'git-intake may only request the watched branch "main" of model strict, not "feature"')],
    ['gitRef from the CLI', strict, base('strict', { gitRef: 'main' }), 'mlops-cli',
      no('overrides.gitRef', 'sender "mlops-cli" may not set gitRef for model strict (allowed: git-intake)')],
    ['gitRef from a pod posting to the Broker', strict, base('strict', { trigger: 'git', gitRef: 'evil' }), 'https://evil.example/x',
      no('overrides.gitRef', 'sender "https://evil.example/x" may not set gitRef for model strict (allowed: git-intake)')],
    ['gitRef from a forged step source', strict, base('strict', { gitRef: 'evil' }), 'watchdog',
      no('overrides.gitRef', 'sender "watchdog" may not set gitRef for model strict (allowed: git-intake)')],
    ['notebookPath from git-intake', strict, base('strict', { trigger: 'git', notebookPath: 'nb/other.ipynb' }), 'git-intake',
      no('overrides.notebookPath', 'sender "git-intake" may not set notebookPath for model strict (allowed: nobody)')],
    ['notebookPath from the CLI', strict, base('strict', { notebookPath: 'nb/strict.ipynb' }), 'mlops-cli',
      no('overrides.notebookPath', 'sender "mlops-cli" may not set notebookPath for model strict (allowed: nobody)')],
    ['the first refused field is named (gitRef before notebookPath)', strict, base('strict', { gitRef: 'x', notebookPath: 'nb/x.ipynb' }), 'mlops-cli',
      no('overrides.gitRef', 'sender "mlops-cli" may not set gitRef for model strict (allowed: git-intake)')],
    ['open: gitRef from the CLI, any branch', open, base('open', { gitRef: 'experiment' }), 'mlops-cli', ok],
    ['open: notebookPath from anyone', open, base('open', { notebookPath: 'nb/x.ipynb' }), 'somebody', ok],
    ['open: git-intake still only for the watched branch', open, base('open', { trigger: 'git', gitRef: 'main' }), 'git-intake',
      no('overrides.gitRef.watched-branch', 'git-intake may only request the watched branch "release" of model open, not "main"')],
    ['open: dataSource only from drift-intake', open, base('open', { dataSource: 'hybrid' }), 'mlops-cli',
      no('overrides.dataSource', 'sender "mlops-cli" may not set dataSource for model open (allowed: drift-intake)')],
    ['open: dataSource from drift-intake', open, base('open', { dataSource: 'hybrid' }), 'drift-intake', ok],
    ['open: trainingHours from nobody', open, base('open', { trainingHours: 1 }), 'drift-intake',
      no('overrides.trainingHours', 'sender "drift-intake" may not set trainingHours for model open (allowed: nobody)')],
    ['open: profile from the CLI only', open, base('open', { profile: 'cpu' }), 'watchdog',
      no('overrides.profile', 'sender "watchdog" may not set profile for model open (allowed: mlops-cli)')],
  ])('%s', (_name, model, data, sender, expected) => {
    expect(checkOverrides(data, sender, model)).toEqual(expected);
  });

  test.each([
    ['/model-lifecycle/git-intake', {}, 'git-intake'],
    ['/model-lifecycle/mlops-cli', {}, 'mlops-cli'],
    ['/apis/v1/namespaces/x/pods/y', {}, '/apis/v1/namespaces/x/pods/y'],
    // A queued request re-submitted by the step that freed the lock is judged as its first sender.
    ['/model-lifecycle/verify-endpoint', { provenance: { queuedFrom: 'strict-0000000001', eventSource: '/model-lifecycle/git-intake', eventId: 'e1' } }, 'git-intake'],
    ['/model-lifecycle/watchdog', { provenance: { queuedFrom: 'strict-0000000001', eventSource: '/model-lifecycle/mlops-cli', eventId: 'e1' } }, 'mlops-cli'],
    // Without queuedFrom an eventSource is only a claim in the data; the envelope's source counts.
    ['/model-lifecycle/mlops-cli', { provenance: { eventSource: '/model-lifecycle/git-intake', eventId: 'e1' } }, 'mlops-cli'],
  ] as const)('the effective sender of %s %j is %s', (source, extra, expected) => {
    expect(effectiveSender(source, { ...base('strict'), ...extra })).toBe(expected);
  });

  test('senderName strips only our prefix', () => {
    expect(senderName('/model-lifecycle/gate-health')).toBe('gate-health');
    expect(senderName('/model-lifecycle-evil/gate-health')).toBe('/model-lifecycle-evil/gate-health');
  });
});
