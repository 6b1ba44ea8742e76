/**
 * Jest runs the TypeScript sources as native ES modules (oidc-provider, jose and
 * openid-client are ESM-only), transpiled by SWC without type-checking; `npm run
 * typecheck` does the type-checking once for the whole tree.
 * @type {import('jest').Config}
 */
export default {
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
  testMatch: ['<rootDir>/tests/**/*.test.ts'],
  testTimeout: 60000,
  // Several suites start real servers (redis-server, Caddy, IdPs) on this 2-core machine.
  maxWorkers: 2,
  // A test that fails half-way may leave a server it started listening; exit anyway once
  // every suite has finished rather than hang CI until its time limit.
  forceExit: true,
  // Jest's summary, then one plain `Tests: N passed, N failed, N skipped` line.
  reporters: ['default', '<rootDir>/tests/reporters/closing-line.js'],
};
