import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Gathers the figures every reliability test file reports, and prints them together at the end. */
export default function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'reliability-'));
  const file = join(dir, 'figures.jsonl');
  process.env.RELIABILITY_FIGURES_FILE = file;
  return () => {
    const lines = existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
    const out = ['', `Reliability figures (${process.env.RELIABILITY_SCALE === 'full' ? 'full size' : 'CI size'}):`];
    for (const line of lines) {
      const { section, figures } = JSON.parse(line) as { section: string; figures: Record<string, unknown> };
      out.push(`  ${section}`);
      for (const [name, value] of Object.entries(figures))
        out.push(`    ${name}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
    rmSync(dir, { recursive: true, force: true });
  };
}
