// ESM + TypeScript: ts-jest transpiles each file (type checking is `npm run typecheck`), jest runs it
// as a native ES module under --experimental-vm-modules (client-node 2.x is ESM-only).
/** @type {import('jest').Config} */
export default {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, diagnostics: false }],
  },
  testMatch: ['<rootDir>/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '/.dev/'],
  // Whole scenarios on 2 shared cores take up to about a minute each; a hung test still fails.
  testTimeout: 180000,
  maxWorkers: 2,
};
