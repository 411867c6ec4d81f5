import * as k8s from '@kubernetes/client-node';
import { z } from 'zod';
test('esm imports work', () => {
  expect(typeof k8s.KubeConfig).toBe('function');
  expect(z.string().parse('a')).toBe('a');
});
