import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The docs as the tests read them: README.md and docs/, their headings, links and fenced blocks. */

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** README.md and every Markdown file under docs/, relative to the repository. */
export function docFiles(): string[] {
  const docs = readdirSync(join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.md'))
    .map((name) => join('docs', name))
    .sort();
  return ['README.md', ...docs];
}

export function readDoc(file: string): string {
  return readFileSync(join(ROOT, file), 'utf8');
}

/** A fenced block: its info string (`sh`, `mermaid`, ...), its text, and the line its fence opens on (1-based). */
export interface FencedBlock {
  info: string;
  text: string;
  line: number;
}

/** The fenced blocks (``` or ~~~) of a Markdown text, and its lines outside them (blanked inside, so line numbers hold). */
export function fencedBlocks(markdown: string): { blocks: FencedBlock[]; prose: string[] } {
  const blocks: FencedBlock[] = [];
  const prose: string[] = [];
  let open: { fence: string; info: string; line: number; lines: string[] } | undefined;
  markdown.split('\n').forEach((line, index) => {
    const fence = /^\s*(`{3,}|~{3,})\s*([^`\s]*)/.exec(line);
    if (!open && fence) {
      open = { fence: fence[1] as string, info: fence[2] ?? '', line: index + 1, lines: [] };
      prose.push('');
    } else if (open && line.trim().startsWith(open.fence) && line.trim().replace(/[`~]/g, '') === '') {
      blocks.push({ info: open.info, text: open.lines.join('\n'), line: open.line });
      open = undefined;
      prose.push('');
    } else if (open) {
      open.lines.push(line);
      prose.push('');
    } else {
      prose.push(line);
    }
  });
  return { blocks, prose };
}

/**
 * GitHub's anchor of a heading's text: the text as rendered (links as their text), lower-cased,
 * every character but letters, digits, marks, `-`, `_` and spaces dropped, each space a `-`.
 */
export function githubSlug(heading: string): string {
  const rendered = heading.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1');
  return rendered
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\-_ ]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a Markdown text's headings, as GitHub makes them (a repeated one gets `-1`, `-2`, ...). */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const line of fencedBlocks(markdown).prose) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const slug = githubSlug(heading[1] as string);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    found.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return found;
}

/** A link of a Markdown text: its target as written and the line it is on (1-based). */
export interface Link {
  target: string;
  line: number;
}

/** The inline links and images of a Markdown text, outside fenced blocks and code spans. */
export function links(markdown: string): Link[] {
  const found: Link[] = [];
  fencedBlocks(markdown).prose.forEach((line, index) => {
    const text = line.replace(/(`+)[^`]*?\1/g, '');
    for (const match of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      found.push({ target: match[1] as string, line: index + 1 });
    }
  });
  return found;
}

/** The text of a section: from the heading whose text is `heading` to the next heading of its level or above. */
export function section(markdown: string, heading: string): string {
  const lines = markdown.split('\n');
  const start = lines.findIndex((line) => /^#{1,6}\s/.test(line) && line.replace(/^#+\s+/, '').trim() === heading);
  if (start < 0) throw new Error(`no heading "${heading}"`);
  const level = (/^#+/.exec(lines[start] as string)?.[0] ?? '#').length;
  const { prose } = fencedBlocks(markdown);
  let end = lines.length;
  for (let i = start + 1; i < lines.length; i++) {
    const match = /^(#+)\s/.exec(prose[i] as string);
    if (match && (match[1] as string).length <= level) {
      end = i;
      break;
    }
  }
  return lines.slice(start, end).join('\n');
}
