import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { removeDir, runScript, tempDir } from './run-script.ts';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

type CopiedFile = { name: string; bytes: number; sha256: string };

describe('copy.py', () => {
  let src: string;
  let dst: string;
  const model = Buffer.from(randomBytes(300_000));
  const metrics = Buffer.from('{"auc": 0.93}\n');

  beforeEach(() => {
    src = tempDir('copy-src-');
    dst = tempDir('copy-dst-');
    const staged = path.join(src, '.runs', 'run-1', 'anomaly-detector');
    mkdirSync(path.join(staged, 'extra'), { recursive: true });
    writeFileSync(path.join(staged, 'model.pkl'), model);
    writeFileSync(path.join(staged, 'extra', 'metrics.json'), metrics);
  });

  afterEach(() => {
    removeDir(src);
    removeDir(dst);
  });

  const env = (over: Record<string, string> = {}): Record<string, string> => ({
    SRC_ROOT: src,
    DST_ROOT: dst,
    RUN: 'run-1',
    MODEL: 'anomaly-detector',
    ...over,
  });

  const expectedFiles: CopiedFile[] = [
    { name: 'extra/metrics.json', bytes: metrics.length, sha256: sha256(metrics) },
    { name: 'model.pkl', bytes: model.length, sha256: sha256(model) },
  ];

  test('copies every file, verified by sha256, into the shared staging folder', async () => {
    const run = await runScript('copy', env());
    expect(run.code).toBe(0);
    expect(run.result).toEqual({
      ok: true,
      files: expectedFiles,
      bytes: model.length + metrics.length,
      sha256: sha256(model),
      path: '.runs/run-1/anomaly-detector',
    });
    const out = path.join(dst, '.runs', 'run-1', 'anomaly-detector');
    expect(sha256(readFileSync(path.join(out, 'model.pkl')))).toBe(sha256(model));
    expect(readFileSync(path.join(out, 'extra', 'metrics.json'))).toEqual(metrics);
    expect(JSON.parse(run.stdout.trim())).toEqual(run.result);
  });

  test('needs only the standard library (runs with site-packages disabled)', async () => {
    const run = await runScript('copy', env(), ['-S', '-I']);
    expect(run.code).toBe(0);
    expect(run.result['ok']).toBe(true);
  });

  test('a re-run after a crash removes temp leftovers, replaces stale files and gives the same result', async () => {
    const out = path.join(dst, '.runs', 'run-1', 'anomaly-detector');
    mkdirSync(path.join(out, 'extra'), { recursive: true });
    writeFileSync(path.join(out, '.model.pkl.tmp-copy'), model.subarray(0, 1000));
    writeFileSync(path.join(out, 'extra', '.metrics.json.tmp-copy'), 'partial');
    writeFileSync(path.join(out, 'model.pkl'), Buffer.from('stale bytes from another attempt'));
    const first = await runScript('copy', env());
    expect(first.code).toBe(0);
    expect(first.result['ok']).toBe(true);
    expect(readdirSync(out).sort()).toEqual(['extra', 'model.pkl']);
    expect(readdirSync(path.join(out, 'extra'))).toEqual(['metrics.json']);
    expect(sha256(readFileSync(path.join(out, 'model.pkl')))).toBe(sha256(model));
    const second = await runScript('copy', env());
    expect(second.result).toEqual(first.result);
  });

  test('a missing source folder is a failed copy, not a usage error', async () => {
    const run = await runScript('copy', env({ RUN: 'run-2' }));
    expect(run.code).toBe(0);
    expect(run.result).toEqual({
      ok: false,
      files: [],
      bytes: 0,
      sha256: null,
      path: '.runs/run-2/anomaly-detector',
      error: 'source directory missing: .runs/run-2/anomaly-detector',
    });
    expect(existsSync(path.join(dst, '.runs', 'run-2'))).toBe(false);
  });

  test('a source folder without model.pkl fails', async () => {
    const staged = path.join(src, '.runs', 'run-3', 'anomaly-detector');
    mkdirSync(staged, { recursive: true });
    writeFileSync(path.join(staged, 'notes.txt'), 'no model here');
    const run = await runScript('copy', env({ RUN: 'run-3' }));
    expect(run.code).toBe(0);
    expect(run.result['ok']).toBe(false);
    expect(run.result['error']).toBe('model.pkl missing in source .runs/run-3/anomaly-detector');
  });

  test('a symlink planted in the staging folder fails the copy instead of copying its target', async () => {
    const staged = path.join(src, '.runs', 'run-1', 'anomaly-detector');
    symlinkSync('/etc/hostname', path.join(staged, 'leak'));
    const run = await runScript('copy', env());
    expect(run.result['ok']).toBe(false);
    expect(run.result['error']).toBe('not a regular file in source: leak');
    expect(existsSync(path.join(dst, '.runs', 'run-1', 'anomaly-detector', 'leak'))).toBe(false);
  });

  test('a staging folder that is itself a symlink is refused', async () => {
    const elsewhere = tempDir('copy-elsewhere-');
    try {
      writeFileSync(path.join(elsewhere, 'model.pkl'), 'secret');
      mkdirSync(path.join(src, '.runs', 'run-4'), { recursive: true });
      symlinkSync(elsewhere, path.join(src, '.runs', 'run-4', 'anomaly-detector'));
      const run = await runScript('copy', env({ RUN: 'run-4' }));
      expect(run.code).toBe(0);
      expect(run.result['ok']).toBe(false);
      expect(run.result['error']).toBe('symlink in path .runs/run-4/anomaly-detector');
    } finally {
      removeDir(elsewhere);
    }
  });

  test.each([
    [{ RUN: '../etc' }, 'usage: RUN must be a DNS-1123 label'],
    [{ MODEL: 'Anomaly' }, 'usage: MODEL must be a DNS-1123 label'],
    [{ MODEL: '' }, 'usage: MODEL is required'],
    [{ SRC_ROOT: 'relative/path' }, 'usage: SRC_ROOT must be an absolute path'],
    [{ DST_ROOT: '/tmp/../etc' }, 'usage: DST_ROOT must be an absolute path'],
  ])('usage error %j exits 2 with a JSON error', async (over, message) => {
    const run = await runScript('copy', env(over));
    expect(run.code).toBe(2);
    expect(run.result['ok']).toBe(false);
    expect(String(run.result['error']).startsWith(message)).toBe(true);
  });

  test('a result with many files is truncated to 4 KiB and keeps model.pkl', async () => {
    const staged = path.join(src, '.runs', 'run-1', 'anomaly-detector');
    for (let i = 0; i < 80; i++) writeFileSync(path.join(staged, `shard-${String(i).padStart(3, '0')}.bin`), `shard ${i}`);
    const run = await runScript('copy', env());
    expect(run.result['ok']).toBe(true);
    expect(run.result['truncated']).toBe(true);
    expect(run.resultBytes).toBeLessThanOrEqual(4096);
    const files = run.result['files'] as CopiedFile[];
    expect(files[0]).toEqual({ name: 'model.pkl', bytes: model.length, sha256: sha256(model) });
    expect(files.length).toBeLessThan(82);
    expect(run.result['bytes']).toBe(model.length + metrics.length + Array.from({ length: 80 }, (_, i) => `shard ${i}`.length).reduce((a, b) => a + b, 0));
    expect(readdirSync(path.join(dst, '.runs', 'run-1', 'anomaly-detector')).length).toBe(82);
  });
});
