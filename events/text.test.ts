import { CONDITION_MESSAGE_MAX, ELLIPSIS, MESSAGE_MAX, clip } from './text.ts';
import { Message } from './names.ts';

describe('clip', () => {
  test('short text is unchanged; long text ends in … at exactly max', () => {
    expect(clip('short', 10)).toBe('short');
    expect(clip('x'.repeat(10), 10)).toBe('x'.repeat(10));
    expect(clip('x'.repeat(11), 10)).toBe(`${'x'.repeat(9)}${ELLIPSIS}`);
  });

  test('a 100 KB message fits the event Message schema after clipping', () => {
    const clipped = clip('y'.repeat(100_000), MESSAGE_MAX);
    expect(clipped).toHaveLength(MESSAGE_MAX);
    expect(Message.safeParse(clipped).success).toBe(true);
    expect(clip('y'.repeat(100_000), CONDITION_MESSAGE_MAX)).toHaveLength(CONDITION_MESSAGE_MAX);
  });

  test('never splits a surrogate pair', () => {
    const text = `${'a'.repeat(8)}😀😀`; // 8 + 2 + 2 code units
    const clipped = clip(text, 10);
    expect(clipped).toBe(`${'a'.repeat(8)}${ELLIPSIS}`);
    expect(clipped.length).toBeLessThanOrEqual(10);
    expect(clip(`${'a'.repeat(7)}😀😀`, 10)).toBe(`${'a'.repeat(7)}😀${ELLIPSIS}`);
  });

  test('oneLine flattens white space first', () => {
    expect(clip('a\n  b\r\nc\t', 100, { oneLine: true })).toBe('a b c');
  });

  test('a non-string (a status field of the wrong type) becomes empty; max must be positive', () => {
    expect(clip(undefined, 5)).toBe('');
    expect(clip({ x: 1 }, 5)).toBe('');
    expect(() => clip('x', 0)).toThrow(RangeError);
  });
});
