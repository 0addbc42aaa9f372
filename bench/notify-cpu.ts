/**
 * The notify CPU path (read, verify, answer a payment callback) against two peer SDKs doing the
 * same work, and against the limit: the hash alone plus the XML parse alone over the same input.
 * Every implementation gets the callback as it arrives: this project the raw bytes (as
 * functions/notify.ts hands them over), the peers the text they take.
 */
import { createHmac, createSecretKey } from 'node:crypto';
import { createRequire } from 'node:module';
import { XMLParser } from 'fast-xml-parser';
import { TEST_MERCHANT } from '../dev/emulator/test-merchant';
import { notificationReply, parseNotification, verifyNotification } from '../lib/wechatpay/notification';
import { signedNotification } from '../dev/wechatpay-documents/payment-notification';
import { stringToSign } from '../lib/wechatpay/sign';
import { XML_PARSER_OPTIONS } from '../lib/wechatpay/xml';
import { median } from './bundles';

const require = createRequire(__filename);
const { appId, mchId, apiKey } = TEST_MERCHANT;

/** A realistic HMAC-SHA256 callback: a JSAPI payment of 100.00 yuan, two coupons, an attach in Chinese. */
export function sampleCallback(): string {
  return signedNotification({
    apiKey,
    signType: 'HMAC-SHA256',
    fields: {
      appid: appId,
      mch_id: mchId,
      out_trade_no: 'bench1234567890abcdefABCDEF',
      total_fee: '10000',
      attach: '支付测试 订单额外描述',
      device_info: 'WEB',
    },
    coupons: [
      { id: '10000', fee: 300, type: 'NO_CASH' },
      { id: '10001', fee: 200, type: 'CASH' },
    ],
    now: new Date('2025-01-02T03:04:05Z'),
  });
}

type Candidate = { name: string; run: () => unknown };

function candidates(xml: string): Candidate[] {
  const bytes = Buffer.from(xml, 'utf8');
  const ours: Candidate = {
    name: OURS,
    run: () => {
      // As functions/notify.ts gets it: raw bytes. Sign type from the signature's length, as lib/orders/notify.ts does.
      const parsed = parseNotification(bytes);
      if (!parsed.ok) throw new Error(parsed.message);
      const verified = verifyNotification(parsed, { apiKey, appId, mchId, orderSignType: 'HMAC-SHA256' });
      if (!verified.ok) throw new Error(verified.message);
      return notificationReply('SUCCESS');
    },
  };

  // tenpay 2.x: its notify middleware runs _parse(body, 'middleware_pay') (xml2js, return/result
  // codes, appid, mch_id, sign) and answers with util.buildXML (xml2js builder).
  const Tenpay = require('tenpay');
  const tenpayUtil = require('tenpay/lib/util');
  const tenpay = new Tenpay({ appid: appId, mchid: mchId, partnerKey: apiKey });
  const tenpayRun: Candidate = {
    name: 'tenpay',
    run: async () => {
      await tenpay._parse(xml, 'middleware_pay', 'HMAC-SHA256');
      return tenpayUtil.buildXML({ return_code: 'SUCCESS' });
    },
  };

  // wechatpay-axios-plugin: its v2 response transformer (fast-xml-parser) and verifier (return and
  // result codes, sign by its length, constant-time compare); appid/mch_id checked here as it leaves them to the caller.
  const { Transformer } = require('wechatpay-axios-plugin');
  const transformer = new Transformer(mchId, apiKey);
  const [toObject, verifier] = transformer.response as [
    (this: object, x: string) => Record<string, string>,
    (this: object, d: unknown) => unknown,
  ];
  const request = { url: '/wechatpay/notify' };
  const axiosRun: Candidate = {
    name: 'wechatpay-axios-plugin',
    run: () => {
      const data = toObject.call(request, xml);
      const checked = verifier.call(request, data);
      if (checked instanceof Error) throw checked;
      if (data.appid !== appId || data.mch_id !== mchId) throw new Error('foreign callback');
      return Transformer.toXml.call({}, { return_code: 'SUCCESS', return_msg: 'OK' });
    },
  };

  // The limit: HMAC-SHA256 over the same string-to-sign (taken as given, with the key made once),
  // plus fast-xml-parser's parse of the same bytes with the options lib/wechatpay/xml.ts uses. What
  // this project adds to it is its own code: decoding, the DOCTYPE check, reading the fields,
  // building the string to sign, the comparison and the payment-document checks.
  const parsedOnce = parseNotification(xml);
  if (!parsedOnce.ok) throw new Error(parsedOnce.message);
  const text = stringToSign(parsedOnce.fields, apiKey);
  const key = createSecretKey(Buffer.from(apiKey, 'utf8'));
  const parser = new XMLParser(XML_PARSER_OPTIONS);
  const limit: Candidate = {
    name: LIMIT,
    run: () => {
      parser.parse(bytes);
      return createHmac('sha256', key).update(text, 'utf8').digest('hex');
    },
  };
  // The limit as the bench first defined it: the parser's defaults (an object tree, path strings
  // for its callbacks) and the key given as text each time. Shown, not judged.
  const defaultParser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, trimValues: false });
  const formerLimit: Candidate = {
    name: FORMER_LIMIT,
    run: () => {
      defaultParser.parse(bytes);
      return createHmac('sha256', apiKey).update(text, 'utf8').digest('hex');
    },
  };
  return [ours, tenpayRun, axiosRun, limit, formerLimit];
}

/**
 * Runs `candidate` for about `ms` milliseconds, in batches of 50: how many runs, and the CPU time
 * they took (this process's, every thread: the collector's too). CPU time, not wall time: while
 * another process has the core, no time is counted against whoever was running.
 */
async function slice(candidate: Candidate, ms: number): Promise<{ runs: number; ms: number }> {
  let runs = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  while (performance.now() - started < ms) {
    for (let i = 0; i < 50; i += 1) {
      const result = candidate.run();
      if (result instanceof Promise) await result;
    }
    runs += 50;
  }
  const used = process.cpuUsage(cpu);
  return { runs, ms: (used.user + used.system) / 1000 };
}

export const OURS = 'this project';
export const PEERS = ['tenpay', 'wechatpay-axios-plugin'] as const;
export const LIMIT = 'limit (HMAC + XML parse)';
export const FORMER_LIMIT = 'HMAC + XML parse, parser defaults (the former limit)';

export interface Spread {
  min: number;
  median: number;
  max: number;
}

export interface CpuRound {
  /** Runs per second of CPU time of each implementation in this round. */
  opsPerSecond: Record<string, number>;
  /** This project's ops/s over the best peer's, in this round. */
  overBestPeer: number;
  /** The limit's ops/s over this project's (how much slower than the limit this project is), in this round. */
  limitOverOurs: number;
}

export interface CpuResult {
  inputBytes: number;
  msPerRound: number;
  rounds: CpuRound[];
  /** min, median and max ops/s of each implementation over the rounds. */
  opsPerSecond: Record<string, Spread>;
  overBestPeer: Spread;
  limitOverOurs: Spread;
}

export function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0]!, median: median(sorted), max: sorted[sorted.length - 1]! };
}

/**
 * Interleaved rounds after a warm-up. A round is `slices` turns of `msPerSlice` for each
 * implementation in turn (this project, the peers, the limits, again...), so that whatever else the
 * machine does hits them alike; each implementation's ops/s in a round is over its own turns, and
 * the ratios are taken within each round.
 */
export async function notifyCpu(rounds = 7, slices = 10, msPerSlice = 25): Promise<CpuResult> {
  const xml = sampleCallback();
  const list = candidates(xml);
  for (const c of list) {
    const check = await c.run();
    if (typeof check !== 'string') throw new Error(`${c.name} did not produce an answer`);
    await slice(c, 200);
  }
  const all: CpuRound[] = [];
  for (let r = 0; r < rounds; r += 1) {
    const runs: Record<string, number> = Object.fromEntries(list.map((c) => [c.name, 0]));
    const ms: Record<string, number> = Object.fromEntries(list.map((c) => [c.name, 0]));
    for (let s = 0; s < slices; s += 1) {
      for (const c of list) {
        const done = await slice(c, msPerSlice);
        runs[c.name]! += done.runs;
        ms[c.name]! += done.ms;
      }
    }
    const ops = Object.fromEntries(list.map((c) => [c.name, (runs[c.name]! * 1000) / ms[c.name]!]));
    const bestPeer = Math.max(...PEERS.map((peer) => ops[peer]!));
    all.push({ opsPerSecond: ops, overBestPeer: ops[OURS]! / bestPeer, limitOverOurs: ops[LIMIT]! / ops[OURS]! });
  }
  return {
    inputBytes: Buffer.byteLength(xml),
    msPerRound: slices * msPerSlice,
    rounds: all,
    opsPerSecond: Object.fromEntries(list.map((c) => [c.name, spread(all.map((round) => round.opsPerSecond[c.name]!))])),
    overBestPeer: spread(all.map((round) => round.overBestPeer)),
    limitOverOurs: spread(all.map((round) => round.limitOverOurs)),
  };
}
