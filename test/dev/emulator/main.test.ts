import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { verifySignature } from '../../../lib/wechatpay/sign';
import type { RunningEmulator } from '../../../dev/emulator/server';
import { call, orderFields } from '../../support/emulator';

describe('tsx dev/emulator/main.ts', () => {
  it('uses the merchant of the environment, prints its URL as JSON and stops cleanly on SIGTERM', async () => {
    const merchant = { appId: 'wx1111222233334444', mchId: '1900000109', apiKey: 'k'.repeat(32) };
    const child = spawn(process.execPath, ['--import', 'tsx', 'dev/emulator/main.ts'], {
      env: {
        ...process.env,
        WECHATPAY_APPID: merchant.appId,
        WECHATPAY_MCHID: merchant.mchId,
        WECHATPAY_API_KEY: merchant.apiKey,
        WECHATPAY_SIM_PORT: '0',
        WECHATPAY_SIM_TLS_PORT: '0',
        WECHATPAY_SIM_TIME_SCALE: '0.001',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const lines = createInterface({ input: child.stdout });
      const [first] = (await once(lines, 'line')) as [string];
      const started = JSON.parse(first) as { event: string; url: string };
      expect(started.event).toBe('listening');
      expect(first).not.toContain(merchant.apiKey);

      const emulator = { url: started.url } as RunningEmulator;
      const fields = orderFields({ appid: merchant.appId, mch_id: merchant.mchId });
      const reply = await call(emulator, 'unifiedorder', fields, 'MD5', merchant.apiKey);
      expect(reply.fields.result_code).toBe('SUCCESS');
      expect(verifySignature(reply.fields, merchant.apiKey, 'MD5').ok).toBe(true);

      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
