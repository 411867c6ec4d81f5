import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { removeDir, runScript, tempDir } from './run-script.ts';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const MODEL = 'anomaly-detector';

type ReleaseRecord = { run: string; sha256: string; bytes: number; promotedAt: string };

describe('promote.py', () => {
  let root: string;
  const models = new Map<string, Buffer>();

  beforeEach(() => {
    root = tempDir('promote-');
    models.clear();
  });
  afterEach(() => removeDir(root));

  function stage(run: string): Buffer {
    const data = Buffer.from(randomBytes(20_000 + models.size * 100));
    const folder = path.join(root, '.runs', run, MODEL);
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, 'model.pkl'), data);
    models.set(run, data);
    return data;
  }

  const promote = (run: string, over: Record<string, string> = {}) =>
    runScript('promote', { ROOT: root, MODEL, RUN: run, SOURCE: 'staging', ...over });
  const served = (): Buffer => readFileSync(path.join(root, MODEL, 'model.pkl'));
  const servedRelease = (): string => readFileSync(path.join(root, MODEL, 'RELEASE'), 'utf8').trim();
  const releases = (): string[] => readdirSync(path.join(root, '.releases', MODEL)).sort();
  const record = (run: string): ReleaseRecord =>
    JSON.parse(readFileSync(path.join(root, '.releases', MODEL, run, 'release.json'), 'utf8')) as ReleaseRecord;

  test('first promotion: served file replaced, release kept, previousRelease null', async () => {
    const data = stage('run-1');
    const run = await promote('run-1');
    expect(run.code).toBe(0);
    expect(run.result).toEqual({
      ok: true,
      release: 'run-1',
      previousRelease: null,
      sha256: sha256(data),
      bytes: data.length,
      servedPath: `${MODEL}/model.pkl`,
      kept: ['run-1'],
      pruned: [],
    });
    expect(served()).toEqual(data);
    expect(servedRelease()).toBe('run-1');
    expect(readFileSync(path.join(root, '.releases', MODEL, 'run-1', 'model.pkl'))).toEqual(data);
    const rec = record('run-1');
    expect({ ...rec, promotedAt: 'checked below' }).toEqual({ run: 'run-1', sha256: sha256(data), bytes: data.length, promotedAt: 'checked below' });
    expect(rec.promotedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(Number.isNaN(Date.parse(rec.promotedAt))).toBe(false);
    expect(readdirSync(path.join(root, MODEL)).sort()).toEqual(['RELEASE', 'model.pkl']);
    expect(JSON.parse(run.stdout.trim())).toEqual(run.result);
  });

  test('STAGED promotes a model staged under another folder (a notebook validated outside model-lifecycle)', async () => {
    const data = stage('nightly-anomaly');
    const run = await promote('run-gated', { STAGED: `.runs/nightly-anomaly/${MODEL}/model.pkl` });
    expect(run.result).toMatchObject({ ok: true, release: 'run-gated', sha256: sha256(data) });
    expect(served()).toEqual(data);
    expect(servedRelease()).toBe('run-gated');
  });

  test.each(['../outside/model.pkl', '/etc/passwd.pkl', '.runs//x.pkl', '.runs/x/model.txt', '.runs/x y/model.pkl'])('STAGED %j is refused as a usage error', async (staged) => {
    stage('run-1');
    const run = await promote('run-1', { STAGED: staged });
    expect(run.code).toBe(2);
    expect(run.result).toMatchObject({ ok: false, error: expect.stringContaining('STAGED must be a relative path') });
    expect(existsSync(path.join(root, MODEL, 'model.pkl'))).toBe(false);
  });

  test('needs only the standard library (runs with site-packages disabled)', async () => {
    stage('run-1');
    const run = await runScript('promote', { ROOT: root, MODEL, RUN: 'run-1', SOURCE: 'staging' }, ['-S', '-I']);
    expect(run.code).toBe(0);
    expect(run.result['ok']).toBe(true);
  });

  test('second promotion records the first as previous; an identical re-run changes nothing', async () => {
    stage('run-1');
    const second = stage('run-2');
    await promote('run-1');
    const run = await promote('run-2');
    expect(run.result).toMatchObject({ ok: true, release: 'run-2', previousRelease: 'run-1', sha256: sha256(second), kept: ['run-2', 'run-1'], pruned: [] });
    expect(served()).toEqual(second);
    const promotedAt = record('run-2').promotedAt;
    const again = await promote('run-2');
    expect(again.result).toEqual(run.result);
    expect(record('run-2').promotedAt).toBe(promotedAt);
    expect(servedRelease()).toBe('run-2');
    expect(readdirSync(path.join(root, MODEL)).sort()).toEqual(['PREVIOUS_RELEASE', 'RELEASE', 'model.pkl']);
  });

  test('a re-run after a crash cleans temp leftovers and finishes the promotion', async () => {
    const data = stage('run-1');
    mkdirSync(path.join(root, MODEL), { recursive: true });
    mkdirSync(path.join(root, '.releases', MODEL, 'run-1'), { recursive: true });
    writeFileSync(path.join(root, MODEL, 'model.pkl.tmp-run-1'), data.subarray(0, 100));
    writeFileSync(path.join(root, MODEL, 'model.pkl.tmp-run-0'), 'older crash');
    writeFileSync(path.join(root, '.releases', MODEL, 'run-1', '.model.pkl.tmp-promote'), data.subarray(0, 50));
    const run = await promote('run-1');
    expect(run.result['ok']).toBe(true);
    expect(served()).toEqual(data);
    expect(readdirSync(path.join(root, MODEL)).sort()).toEqual(['RELEASE', 'model.pkl']);
    expect(readdirSync(path.join(root, '.releases', MODEL, 'run-1')).sort()).toEqual(['model.pkl', 'release.json']);
  });

  test('the model served before the first promotion (no RELEASE) is archived first, and can be rolled back to', async () => {
    const original = Buffer.from(randomBytes(15_000));
    mkdirSync(path.join(root, MODEL), { recursive: true });
    writeFileSync(path.join(root, MODEL, 'model.pkl'), original);
    const archivedName = `pre-lifecycle-${sha256(original).slice(0, 12)}`;
    const data = stage('run-1');
    const run = await promote('run-1');
    expect(run.result).toMatchObject({ ok: true, release: 'run-1', previousRelease: archivedName, archived: archivedName, sha256: sha256(data) });
    expect(served()).toEqual(data);
    expect(readFileSync(path.join(root, '.releases', MODEL, archivedName, 'model.pkl'))).toEqual(original);
    expect(record(archivedName)).toMatchObject({ run: archivedName, sha256: sha256(original), bytes: original.length, archived: true });
    // A re-run of the same promotion (a crash after the copy) reports the same previous release, archives nothing new.
    const again = await promote('run-1');
    expect(again.result).toMatchObject({ ok: true, previousRelease: archivedName });
    expect(again.result['archived']).toBeUndefined();
    // Verification failed: the rollback serves the original bytes again.
    const back = await promote(archivedName, { SOURCE: 'release' });
    expect(back.result).toMatchObject({ ok: true, release: archivedName, previousRelease: 'run-1', sha256: sha256(original) });
    expect(served()).toEqual(original);
  });

  test('a crash between writing the new model and RELEASE on a first promotion still reports the archived release', async () => {
    const original = Buffer.from(randomBytes(12_000));
    mkdirSync(path.join(root, MODEL), { recursive: true });
    writeFileSync(path.join(root, MODEL, 'model.pkl'), original);
    const archivedName = `pre-lifecycle-${sha256(original).slice(0, 12)}`;
    const data = stage('run-1');
    await promote('run-1');
    // Simulate the crash: RELEASE never written.
    rmSync(path.join(root, MODEL, 'RELEASE'));
    const rerun = await promote('run-1');
    expect(rerun.result).toMatchObject({ ok: true, previousRelease: archivedName });
    expect(served()).toEqual(data);
    expect(releases()).toEqual([archivedName, 'run-1'].sort());
  });

  test('rollback with SOURCE=release serves the kept release again', async () => {
    const first = stage('run-1');
    stage('run-2');
    await promote('run-1');
    await promote('run-2');
    const run = await promote('run-1', { SOURCE: 'release' });
    expect(run.result).toEqual({
      ok: true,
      release: 'run-1',
      previousRelease: 'run-2',
      sha256: sha256(first),
      bytes: first.length,
      servedPath: `${MODEL}/model.pkl`,
      kept: ['run-2', 'run-1'],
      pruned: [],
    });
    expect(served()).toEqual(first);
    expect(servedRelease()).toBe('run-1');
  });

  test('rollback to a missing release fails and leaves the served model alone', async () => {
    const data = stage('run-1');
    await promote('run-1');
    const run = await promote('run-9', { SOURCE: 'release' });
    expect(run.code).toBe(0);
    expect(run.result).toMatchObject({ ok: false, release: 'run-9', error: `release missing: .releases/${MODEL}/run-9/model.pkl` });
    expect(served()).toEqual(data);
    expect(servedRelease()).toBe('run-1');
  });

  test('rollback to a release whose file no longer matches release.json is refused', async () => {
    stage('run-1');
    const second = stage('run-2');
    await promote('run-1');
    await promote('run-2');
    writeFileSync(path.join(root, '.releases', MODEL, 'run-1', 'model.pkl'), 'bit rot');
    const run = await promote('run-1', { SOURCE: 'release' });
    expect(run.result['ok']).toBe(false);
    expect(String(run.result['error'])).toMatch(/^release \.releases\/anomaly-detector\/run-1 is corrupt/);
    expect(served()).toEqual(second);
    expect(servedRelease()).toBe('run-2');
  });

  test('promoting a run with no staged model fails without touching the served model', async () => {
    const run = await promote('run-3');
    expect(run.code).toBe(0);
    expect(run.result).toMatchObject({ ok: false, error: `staged model missing: .runs/run-3/${MODEL}/model.pkl` });
    expect(existsSync(path.join(root, MODEL))).toBe(false);
  });

  test('pruning keeps the newest KEEP releases', async () => {
    for (const run of ['run-1', 'run-2', 'run-3', 'run-4', 'run-5']) stage(run);
    const pruned: string[] = [];
    for (const run of ['run-1', 'run-2', 'run-3', 'run-4', 'run-5']) {
      const result = await promote(run, { KEEP: '2' });
      expect(result.result['ok']).toBe(true);
      pruned.push(...(result.result['pruned'] as string[]));
    }
    expect(pruned).toEqual(['run-1', 'run-2', 'run-3']);
    expect(releases()).toEqual(['run-4', 'run-5']);
  });

  test('pruning never removes the served or the previous release', async () => {
    for (const run of ['run-a', 'run-b', 'run-c']) {
      stage(run);
      await promote(run);
    }
    // Served run-a (oldest) after rollback, previous run-c.
    const rollback = await promote('run-a', { SOURCE: 'release', KEEP: '5' });
    expect(rollback.result).toMatchObject({ ok: true, previousRelease: 'run-c', pruned: [] });
    // KEEP=1 keeps only run-c by age, plus served run-b and previous run-a.
    const again = await promote('run-b', { SOURCE: 'release', KEEP: '1' });
    expect(again.result).toMatchObject({ ok: true, release: 'run-b', previousRelease: 'run-a', kept: ['run-c', 'run-b', 'run-a'], pruned: [] });
    // Served run-a, previous run-b, and run-c stays as the newest by promotedAt.
    const third = await promote('run-a', { SOURCE: 'release', KEEP: '1' });
    expect(third.result).toMatchObject({ ok: true, previousRelease: 'run-b', kept: ['run-c', 'run-b', 'run-a'], pruned: [] });
    // A new promotion with KEEP=1: newest is run-d (served), previous run-a; run-b and run-c go.
    stage('run-d');
    const fresh = await promote('run-d', { KEEP: '1' });
    expect(fresh.result).toMatchObject({ ok: true, previousRelease: 'run-a', kept: ['run-d', 'run-a'], pruned: ['run-c', 'run-b'] });
    expect(releases()).toEqual(['run-a', 'run-d']);
  });

  test('foreign entries under .releases/<model> are never pruned', async () => {
    mkdirSync(path.join(root, '.releases', MODEL, 'Not_A_Run'), { recursive: true });
    writeFileSync(path.join(root, '.releases', MODEL, 'notes.txt'), 'keep me');
    stage('run-1');
    stage('run-2');
    await promote('run-1', { KEEP: '1' });
    const run = await promote('run-2', { KEEP: '1' });
    expect(run.result).toMatchObject({ ok: true, kept: ['run-2', 'run-1'], pruned: [] });
    expect(releases()).toEqual(['Not_A_Run', 'notes.txt', 'run-1', 'run-2']);
  });

  test.each([
    [{ SOURCE: 'git' }, 'usage: SOURCE must be "staging" or "release"'],
    [{ KEEP: '0' }, 'usage: KEEP must be an integer >= 1'],
    [{ KEEP: 'all' }, 'usage: KEEP must be an integer >= 1'],
    [{ MODEL: '../etc' }, 'usage: MODEL must be a DNS-1123 label'],
    [{ RUN: 'run/../../x' }, 'usage: RUN must be a DNS-1123 label'],
    [{ ROOT: 'models' }, 'usage: ROOT must be an absolute path'],
  ])('usage error %j exits 2 with a JSON error', async (over, message) => {
    const run = await promote('run-1', over);
    expect(run.code).toBe(2);
    expect(run.result['ok']).toBe(false);
    expect(String(run.result['error']).startsWith(message)).toBe(true);
  });
});
