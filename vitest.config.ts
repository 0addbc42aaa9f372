import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The stages test/infra packages, shared by its files (test/support/packaging.ts).
    globalSetup: ['test/support/packaging-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The product logs structured JSON; tests that check logs capture them themselves.
    env: { POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' },
  },
});
