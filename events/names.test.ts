import { z } from 'zod';
import {
  clipMessage,
  DataSource,
  describeIssues,
  GitRef,
  gitRefProblem,
  isDns1123Label,
  IsoTime,
  ModelName,
  NotebookPath,
  Profile,
  RunName,
  toDns1123Label,
  Trigger,
} from './names.ts';

describe('ModelName', () => {
  test.each([
    ['anomaly-detector', true],
    ['m', true],
    ['a1-b2', true],
    ['0model', true],
    ['a'.repeat(40), true],
    ['a'.repeat(41), false],
    ['', false],
    ['Anomaly', false],
    ['-model', false],
    ['model-', false],
    ['my_model', false],
    ['my.model', false],
    ['a;rm -rf /', false],
    ['$(id)', false],
    ['../etc', false],
    ['model\n', false],
  ])('%j → %s', (value, ok) => {
    expect(ModelName.safeParse(value).success).toBe(ok);
  });
});

describe('RunName', () => {
  test.each([
    ['anomaly-detector-20240331-0100', true],
    ['a'.repeat(52), true],
    ['a'.repeat(53), false],
    ['run_1', false],
    ['RUN', false],
  ])('%j → %s', (value, ok) => {
    expect(RunName.safeParse(value).success).toBe(ok);
  });

  test('the longest run name leaves room for "-promote" in a 63-char label', () => {
    expect(isDns1123Label(`${'a'.repeat(52)}-promote`)).toBe(true);
  });
});

describe('GitRef', () => {
  test.each([
    ['main', undefined],
    ['feature/drift-fix', undefined],
    ['refs/heads/main', undefined],
    ['refs/tags/v1.2.0', undefined],
    ['v1.2.0', undefined],
    ['release-2024.04', undefined],
    ['a@b', undefined],
    ['ünïcode', undefined],
    ['a'.repeat(200), undefined],
    ['a'.repeat(201), 'must be at most 200 characters'],
    ['', 'is empty'],
    ['main..x', 'must not contain ".."'],
    ['-rf', 'must not start with "-"'],
    ['--upload-pack=touch', 'must not start with "-"'],
    ['refs/heads/a b', 'must not contain spaces'],
    ['x.lock', 'a path component must not end with ".lock"'],
    ['refs/heads/x.lock/y', 'a path component must not end with ".lock"'],
    ['a~1', 'must not contain "~"'],
    ['a^', 'must not contain "^"'],
    ['a:b', 'must not contain ":"'],
    ['a?', 'must not contain "?"'],
    ['a*', 'must not contain "*"'],
    ['a[b', 'must not contain "["'],
    ['a\\b', 'must not contain "\\"'],
    ['a@{1}', 'must not contain "@{"'],
    ['@', 'must not be "@"'],
    ['/main', 'must not start with "/"'],
    ['main/', 'must not end with "/"'],
    ['main.', 'must not end with "."'],
    ['a//b', 'must not contain "//"'],
    ['.hidden', 'a path component must not start with "."'],
    ['refs/heads/.x', 'a path component must not start with "."'],
    ['a\u0000b', 'must not contain control characters'],
    ['a\nb', 'must not contain control characters'],
    ['a\u007fb', 'must not contain control characters'],
    ['a\tb', 'must not contain control characters'],
  ])('%j → %s', (ref, problem) => {
    expect(gitRefProblem(ref)).toBe(problem);
    const parsed = GitRef.safeParse(ref);
    expect(parsed.success).toBe(problem === undefined);
    if (!parsed.success) expect(parsed.error.issues[0]?.message).toBe(`invalid git ref: ${problem}`);
  });

  test('a SHA is a valid ref name too (not a SHA-only rule, not a SHA ban)', () => {
    expect(GitRef.safeParse('59b20b8d5c6ff8d09518454d4dd8b7a30f095ab5').success).toBe(true);
  });

  test('non-strings are rejected', () => {
    expect(GitRef.safeParse(42).success).toBe(false);
  });
});

describe('NotebookPath', () => {
  test.each([
    ['notebooks/anomaly-detector.ipynb', true],
    ['train.ipynb', true],
    ['a/b/c/d.e.ipynb', true],
    ['notebooks/my notebook.ipynb', true],
    ['x'.repeat(506) + '.ipynb', true],
    ['x'.repeat(507) + '.ipynb', false],
    ['', false],
    ['.ipynb', false],
    ['notebooks/.ipynb', false],
    ['../x.ipynb', false],
    ['a/../../x.ipynb', false],
    ['a/..', false],
    ['/abs/x.ipynb', false],
    ['a\\x.ipynb', false],
    ['a\u0000.ipynb', false],
    ['a\n.ipynb', false],
    ['a//x.ipynb', false],
    ['notebooks/run.py', false],
    ['notebooks/x.IPYNB', false],
    ['-x.ipynb', false],
  ])('%j → %s', (path, ok) => {
    expect(NotebookPath.safeParse(path).success).toBe(ok);
  });
});

describe('enums', () => {
  test.each([
    [DataSource, ['synthetic', 'prometheus', 'hybrid'], 'csv'],
    [Profile, ['cpu', 'gpu'], 'tpu'],
    [Trigger, ['schedule', 'drift', 'git', 'manual', 'pipeline', 'retry', 'catchup'], 'cron'],
  ] as const)('%#', (schema, good, bad) => {
    expect(schema.options).toEqual(good);
    for (const value of good) expect(schema.safeParse(value).success).toBe(true);
    expect(schema.safeParse(bad).success).toBe(false);
    expect(schema.safeParse(good[0].toUpperCase()).success).toBe(false);
  });
});

describe('IsoTime', () => {
  test.each([
    ['2024-03-31T01:00:00Z', true],
    ['2024-03-31T01:00:00.123456789Z', true],
    ['2024-03-31T03:00:00+02:00', true],
    ['2024-03-31', false],
    ['2024-03-31 01:00:00Z', false],
    ['yesterday', false],
    ['', false],
  ])('%j → %s', (value, ok) => {
    expect(IsoTime.safeParse(value).success).toBe(ok);
  });
});

describe('toDns1123Label', () => {
  test.each([
    ['anomaly-detector', 63, 'anomaly-detector'],
    ['Anomaly_Detector', 63, 'anomaly-detector-' + 'HASH'],
    ['---', 63, 'HASH'],
  ])('%j', (input, max, expected) => {
    const out = toDns1123Label(input, max);
    expect(isDns1123Label(out, max)).toBe(true);
    if (expected.includes('HASH')) expect(out).toMatch(new RegExp('^' + expected.replace('HASH', '[0-9a-f]{8}') + '$'));
    else expect(out).toBe(expected);
  });

  test('long names are cut to the limit and stay distinct', () => {
    const a = toDns1123Label('x'.repeat(100) + 'a', 52);
    const b = toDns1123Label('x'.repeat(100) + 'b', 52);
    expect(a).toHaveLength(52);
    expect(isDns1123Label(a, 52)).toBe(true);
    expect(a).not.toBe(b);
  });

  test('refuses limits too small for the hash suffix', () => {
    expect(() => toDns1123Label('x', 5)).toThrow(RangeError);
  });
});

describe('clipMessage', () => {
  test('keeps short text and clips long text to the limit', () => {
    expect(clipMessage('short')).toBe('short');
    const clipped = clipMessage('y'.repeat(5000));
    expect(clipped).toHaveLength(4096);
    expect(clipped.endsWith('…')).toBe(true);
  });
});

describe('describeIssues', () => {
  test('names the field paths of the first issues on one line', () => {
    const schema = z.object({ a: z.string(), b: z.array(z.object({ c: z.int() })), d: z.string(), e: z.string() });
    const result = schema.safeParse({ a: 1, b: [{ c: 'x' }] });
    expect(result.success).toBe(false);
    if (result.success) return;
    const text = describeIssues(result.error, 'data');
    expect(text).toBe('data.a: Invalid input: expected string, received number; data.b[0].c: Invalid input: expected number, received string (+2 more)');
    expect(text).not.toContain('\n');
  });
});
