/* global setInterval, clearInterval */
// Runs one function bundle in its own process, serves the bench's events one after another, and
// reports the process's peak memory. Input: a JSON file { bundle, env, events }.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
Object.assign(process.env, job.env);
let rssPeak = 0;
let heapPeak = 0;
const sample = () => {
  const m = process.memoryUsage();
  if (m.rss > rssPeak) rssPeak = m.rss;
  if (m.heapUsed > heapPeak) heapPeak = m.heapUsed;
};
const timer = setInterval(sample, 2);

(async () => {
  sample();
  const before = process.memoryUsage().rss;
  const { handler } = require(job.bundle);
  sample();
  const afterRequire = process.memoryUsage().rss;
  const statuses = {};
  for (const event of job.events) {
    const result = await handler(event, job.context ? { getRemainingTimeInMillis: () => 60_000 } : undefined);
    const status = result && (result.statusCode ?? (typeof result.examined === 'number' ? 'run' : 'ok'));
    statuses[status] = (statuses[status] || 0) + 1;
    sample();
  }
  clearInterval(timer);
  sample();
  process.stdout.write(
    JSON.stringify({
      rssPeak,
      heapPeak,
      rssBefore: before,
      rssAfterRequire: afterRequire,
      statuses,
    }),
  );
})().catch((error) => {
  process.stderr.write(String((error && error.stack) || error));
  process.exit(1);
});
