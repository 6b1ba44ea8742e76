/**
 * Jest runs the TypeScript sources as native ES modules (oidc-provider, jose and
 * openid-client are ESM-only), transpiled by SWC without type-checking; `npm run
 * typecheck` does the type-checking once for the whole tree.
 *
 * Three tiers, each a Jest project that `npm run test:<tier>` selects and `npm test` runs one
 * after the other (scripts/test-tiers.mjs):
 * - unit: `tests/unit/`, pure modules (the decision core, the token verifier, the interaction
 *   steps, the config schema); no process, no port, no server. Seconds.
 * - integration: the service in-process or as a process, behind real proxies, with real
 *   clients, Redis, Chromium.
 * - slow: load, soak, flood, key rotation, fault injection and generated corpora
 *   (`tests/faults/`, `tests/load/`), run alone so that their bounds are not measured against
 *   another suite's load.
 * @type {import('jest').Config}
 */
const base = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2023' },
        module: { type: 'es6' },
      },
    ],
  },
};

const slow = ['<rootDir>/tests/faults/**/*.test.ts', '<rootDir>/tests/load/**/*.test.ts'];

export default {
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/tests/unit/**/*.test.ts'] },
    {
      ...base,
      displayName: 'integration',
      testMatch: ['<rootDir>/tests/**/*.test.ts'],
      testPathIgnorePatterns: [
        '/node_modules/',
        '<rootDir>/tests/unit/',
        '<rootDir>/tests/faults/',
        '<rootDir>/tests/load/',
      ],
    },
    { ...base, displayName: 'slow', testMatch: slow },
  ],
  // A global option: Jest ignores it inside a project.
  testTimeout: 60000,
  // Several suites start real servers (redis-server, Caddy, IdPs) on this 2-core machine.
  maxWorkers: 2,
  // A test that fails half-way may leave a server it started listening; exit anyway once
  // every suite has finished rather than hang CI until its time limit.
  forceExit: true,
  // Jest's summary, then one plain `Tests: N passed, N failed, N skipped` line.
  reporters: ['default', '<rootDir>/tests/reporters/closing-line.js'],
};
