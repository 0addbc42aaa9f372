import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.config';

/** `npm run test:reliability`: only this suite, at full size, with every figure printed at the end. */
export default mergeConfig(
  base,
  defineConfig({
    test: {
      include: ['test/reliability/**/*.test.ts'],
      globalSetup: ['test/reliability/figures-setup.ts'],
      testTimeout: 600_000,
    },
  }),
);
