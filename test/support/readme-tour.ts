import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fencedBlocks, section } from './markdown';

/**
 * The README's tour as a reader runs it: the shell commands of its fenced blocks, each with the
 * answer the README says it gives (its `# → ...` comment), the ports it says where to move, and the
 * placeholders it tells the reader to fill in.
 */

export const TOUR_HEADING = 'Pay an order locally in three requests';

export interface TourStep {
  /** The command as written, its `\`-continued lines joined. */
  command: string;
  /** The answer as the README shows it (`# → ...`, continued on the `#   ` lines after it). */
  expected?: string;
}

export interface Tour {
  steps: TourStep[];
  /** The variable each local port comes from, as the README names it: `{ "3000": "PORT" }`. */
  ports: Record<string, string>;
  /** The placeholders the prose tells the reader to replace, `<outTradeNo>` as `outTradeNo`. */
  placeholders: string[];
}

export function readTour(readme: string): Tour {
  const text = section(readme, TOUR_HEADING);
  const { blocks, prose } = fencedBlocks(text);
  const steps: TourStep[] = [];
  for (const block of blocks.filter((candidate) => candidate.info === 'sh')) {
    let command = '';
    let expecting = false;
    for (const line of block.text.split('\n')) {
      if (command.endsWith('\\')) {
        command = `${command.slice(0, -1).trimEnd()} ${line.trim()}`;
        if (!line.trimEnd().endsWith('\\')) steps.push({ command });
        continue;
      }
      const answer = /^#\s*→\s*(.*)$/.exec(line);
      const last = steps[steps.length - 1];
      if (answer && last) {
        last.expected = answer[1];
        expecting = true;
      } else if (expecting && /^#\s{2,}\S/.test(line) && last) {
        last.expected = `${last.expected ?? ''}${line.replace(/^#\s+/, '')}`;
      } else if (line.trim() === '' || line.startsWith('#')) {
        expecting = false;
      } else {
        expecting = false;
        command = line.trim();
        if (!command.endsWith('\\')) steps.push({ command });
      }
    }
  }
  const words = prose.join('\n');
  const ports: Record<string, string> = {};
  for (const match of words.matchAll(/`http:\/\/127\.0\.0\.1:(\d+)`[^`]*`([A-Z][A-Z0-9_]*)`/g))
    ports[match[1] as string] = match[2] as string;
  const placeholders = [...words.matchAll(/replac\w*\s+`<(\w+)>`/g)].map((match) => match[1] as string);
  return { steps, ports, placeholders };
}

/** The first value of `key` in an answer, looking into nested objects and arrays. */
function valueOf(answer: unknown, key: string): unknown {
  if (Array.isArray(answer)) {
    for (const item of answer) {
      const found = valueOf(item, key);
      if (found !== undefined) return found;
    }
  } else if (answer && typeof answer === 'object') {
    const record = answer as Record<string, unknown>;
    if (key in record) return record[key];
    for (const value of Object.values(record)) {
      const found = valueOf(value, key);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/**
 * The command as the reader types it here: each `<placeholder>` the README tells them to replace
 * filled from the latest answer that has it, and each local port moved to where the variable the
 * README names for it put it.
 */
export function commandToRun(command: string, tour: Tour, answers: readonly unknown[], env: Record<string, string | undefined>): string {
  let filled = command.replace(/<(\w+)>/g, (whole, name: string) => {
    if (!tour.placeholders.includes(name)) throw new Error(`the README does not tell the reader what to put for ${whole}`);
    for (const answer of [...answers].reverse()) {
      const value = valueOf(answer, name);
      if (typeof value === 'string' || typeof value === 'number') return String(value);
    }
    throw new Error(`no answer before "${command}" gave ${name}`);
  });
  filled = filled.replace(/127\.0\.0\.1:(\d+)/g, (whole, port: string) => {
    const variable = tour.ports[port];
    if (!variable) throw new Error(`the README names no variable for port ${port} ("${command}")`);
    return `127.0.0.1:${env[variable] ?? port}`;
  });
  return filled;
}

const run = promisify(execFile);

/** Runs a command of the tour in a POSIX shell, as a reader's terminal would; its standard output. */
export async function runTourCommand(command: string): Promise<string> {
  const { stdout } = await run('sh', ['-c', command], { timeout: 30_000 });
  return stdout;
}

/**
 * Whether an answer looks as the README shows it. The README writes JSON with `...`: inside a string
 * it stands for any text; as a member of an object or an element of an array, for any others. An
 * object or array without a `...` of its own must have exactly the members shown.
 */
export function answerProblems(expected: string, actual: unknown): string[] {
  const pattern = parsePattern(expected);
  const problems: string[] = [];
  compare(pattern, actual, '$', problems);
  return problems;
}

type Pattern =
  | { kind: 'object'; members: Array<[string, Pattern]>; open: boolean }
  | { kind: 'array'; items: Pattern[]; open: boolean }
  | { kind: 'string'; glob: string }
  | { kind: 'literal'; value: number | boolean | null };

function parsePattern(text: string): Pattern {
  let at = 0;
  const fail = (what: string): never => {
    throw new Error(`cannot read the README's answer at ${at} (${what}): ${text}`);
  };
  const space = () => {
    while (/\s/.test(text[at] ?? '')) at++;
  };
  const ellipsis = () => {
    space();
    if (text.startsWith('...', at)) {
      at += 3;
      return true;
    }
    return false;
  };
  const string = (): string => {
    if (text[at] !== '"') fail('a string');
    const end = text.indexOf('"', at + 1);
    if (end < 0) fail('an unclosed string');
    const value = text.slice(at + 1, end);
    at = end + 1;
    return value;
  };
  const value = (): Pattern => {
    space();
    const char = text[at];
    if (char === '{') {
      at++;
      const members: Array<[string, Pattern]> = [];
      let open = false;
      for (;;) {
        space();
        if (text[at] === '}') break;
        if (ellipsis()) open = true;
        else {
          const key = string();
          space();
          if (text[at] !== ':') fail('a colon');
          at++;
          members.push([key, value()]);
        }
        space();
        if (text[at] === ',') at++;
        else if (text[at] !== '}') fail('a comma or }');
      }
      at++;
      return { kind: 'object', members, open };
    }
    if (char === '[') {
      at++;
      const items: Pattern[] = [];
      let open = false;
      for (;;) {
        space();
        if (text[at] === ']') break;
        if (ellipsis()) open = true;
        else items.push(value());
        space();
        if (text[at] === ',') at++;
        else if (text[at] !== ']') fail('a comma or ]');
      }
      at++;
      return { kind: 'array', items, open };
    }
    if (char === '"') return { kind: 'string', glob: string() };
    const literal = /^(-?\d+(?:\.\d+)?|true|false|null)/.exec(text.slice(at));
    if (!literal) return fail('a value');
    at += (literal[0] as string).length;
    return { kind: 'literal', value: JSON.parse(literal[0] as string) as number | boolean | null };
  };
  const pattern = value();
  space();
  if (at !== text.length) fail('text after the answer');
  return pattern;
}

function compare(pattern: Pattern, actual: unknown, path: string, problems: string[]): void {
  switch (pattern.kind) {
    case 'object': {
      if (!actual || typeof actual !== 'object' || Array.isArray(actual)) return void problems.push(`${path}: not an object`);
      const record = actual as Record<string, unknown>;
      for (const [key, member] of pattern.members) {
        if (!(key in record)) problems.push(`${path}.${key}: missing`);
        else compare(member, record[key], `${path}.${key}`, problems);
      }
      if (!pattern.open) {
        const shown = new Set(pattern.members.map(([key]) => key));
        for (const key of Object.keys(record))
          if (!shown.has(key)) problems.push(`${path}.${key}: there, but the README shows no "..." for it`);
      }
      return;
    }
    case 'array': {
      if (!Array.isArray(actual)) return void problems.push(`${path}: not an array`);
      if (pattern.open ? actual.length < pattern.items.length : actual.length !== pattern.items.length)
        problems.push(`${path}: ${actual.length} items`);
      pattern.items.forEach((item, index) => compare(item, actual[index], `${path}[${index}]`, problems));
      return;
    }
    case 'string': {
      const glob = new RegExp(
        `^${pattern.glob
          .split('...')
          .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
          .join('[\\s\\S]*')}$`,
      );
      if (typeof actual !== 'string' || !glob.test(actual)) problems.push(`${path}: ${JSON.stringify(actual)} is not "${pattern.glob}"`);
      return;
    }
    case 'literal':
      if (actual !== pattern.value) problems.push(`${path}: ${JSON.stringify(actual)} is not ${JSON.stringify(pattern.value)}`);
  }
}
