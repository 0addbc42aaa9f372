import { defineConfig } from 'vitest/config';
import base from '../../vitest.config';

/** `npm run test:reliability`: only this suite, at full size, with every figure printed at the end. */
export default defineConfig({
  test: {
    ...base.test,
    include: ['test/reliability/**/*.test.ts'],
    globalSetup: ['test/reliability/figures-setup.ts'],
    testTimeout: 600_000,
  },
});
