import { defineConfig } from 'vitest/config';

/** `npm run test:browser`: the demo page in Chromium against the whole local stack. */
export default defineConfig({
  test: {
    include: ['test/browser/**/*.e2e.ts'],
    // One stack and one browser, shared by the tests of this file, one test at a time.
    fileParallelism: false,
    testTimeout: 90_000,
    hookTimeout: 180_000,
  },
});
