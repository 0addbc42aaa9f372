import { defineConfig } from 'vitest/config';
import base from '../../vitest.config';

/** `npm run test:model`: the model of the money at full size (100,000 commands), alone. */
export default defineConfig({
  test: {
    ...base.test,
    include: ['test/model/**/*.test.ts'],
    globalSetup: [],
  },
});
