// Runs the notify bundle and the floor bundle in one process, as Lambda would run each, and times
// their invocations alternately: notify with the first callback of a pending order, the floor with
// its one UpdateItem. Input: a JSON file { notify, floor, env, warmup: [{ notify, floor }], pairs: [...] };
// output: a JSON file of the durations and the answers. The functions' own log lines go to stdout,
// which the bench discards (written as in production: at INFO, with metrics on).
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const [jobFile, outFile] = process.argv.slice(2);
const job = JSON.parse(readFileSync(jobFile, 'utf8'));
Object.assign(process.env, job.env);
const notify = require(job.notify).handler;
const floor = require(job.floor).handler;
const context = (i) => ({
  awsRequestId: `bench-${i}`,
  functionName: 'wechatpay-bench-notify',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:ap-southeast-1:123456789012:function:wechatpay-bench-notify',
  memoryLimitInMB: '128',
  getRemainingTimeInMillis: () => 15_000,
});

(async () => {
  // The first invocations build each side's clients and warm the code: not timed.
  for (const [i, pair] of job.warmup.entries()) {
    await notify(pair.notify, context(`warmup-${i}`));
    await floor(pair.floor);
  }
  const notifyMs = [];
  const floorMs = [];
  const answers = [];
  for (const [i, pair] of job.pairs.entries()) {
    // Alternate which side goes first, so neither always follows the other.
    const sides = i % 2 === 0 ? ['notify', 'floor'] : ['floor', 'notify'];
    for (const side of sides) {
      const started = process.hrtime.bigint();
      if (side === 'notify') {
        const answer = await notify(pair.notify, context(i));
        notifyMs.push(Number(process.hrtime.bigint() - started) / 1e6);
        answers.push(answer.body);
      } else {
        await floor(pair.floor);
        floorMs.push(Number(process.hrtime.bigint() - started) / 1e6);
      }
    }
  }
  writeFileSync(outFile, JSON.stringify({ notifyMs, floorMs, answers }));
})().catch((error) => {
  process.stderr.write(String((error && error.stack) || error));
  process.exit(1);
});
