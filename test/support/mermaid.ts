/**
 * The Mermaid diagrams of the docs (test/docs/mermaid.test.ts), held to a small house style that GitHub renders: Mermaid's own
 * parser is not used here (the `mermaid` package is some 80 MB and needs a DOM; `@mermaid-js/parser`
 * reads neither flowcharts nor sequence diagrams), so this checks the mistakes that broke the old
 * README's diagram, and the rules that keep them away:
 * - a flowchart's nodes each defined once, with a quoted label (`id["label"]`, `id[("label")]`, ...),
 *   node ids unique (two nodes of one id merge their edges), every edge between defined nodes;
 * - subgraphs opened and closed in pairs, each id once;
 * - edge labels quoted (`a -- "label" --> b`);
 * - a sequence diagram's participants declared once, every message between declared ones.
 */

const NODE = /([A-Za-z][\w-]*)\s*(\(\[|\[\(|\[\[|\(\(|\[\/|\[\\|\[|\(|\{\{|\{|>)/y;
const CLOSERS: Record<string, string> = {
  '([': '])',
  '[(': ')]',
  '[[': ']]',
  '((': '))',
  '[/': '/]',
  '[\\': '\\]',
  '[': ']',
  '(': ')',
  '{{': '}}',
  '{': '}',
  '>': ']',
};

/** The problems of one flowchart, each naming its line within the diagram. */
function flowchartProblems(lines: string[]): string[] {
  const problems: string[] = [];
  const labels = new Map<string, number>();
  const subgraphs = new Set<string>();
  const used: Array<{ id: string; line: number }> = [];
  const open: string[] = [];
  lines.forEach((raw, index) => {
    const line = raw.trim();
    const at = `line ${index + 1}`;
    if (index === 0 || line === '' || line.startsWith('%%')) return;
    if (/^(classDef|class|style|linkStyle|click|direction)\b/.test(line)) return;
    const subgraph = /^subgraph\s+([\w-]+)\s*(.*)$/.exec(line);
    if (subgraph) {
      const [, id = '', title = ''] = subgraph;
      if (subgraphs.has(id) || labels.has(id)) problems.push(`${at}: subgraph ${id} is opened twice, or names a node`);
      subgraphs.add(id);
      if (title !== '' && !/^\["[^"]*"\]$/.test(title)) problems.push(`${at}: subgraph ${id}'s title is not quoted: ${title}`);
      open.push(id);
      return;
    }
    if (line === 'end') {
      if (open.pop() === undefined) problems.push(`${at}: an end with no subgraph open`);
      return;
    }
    // Edge labels: `-- "text" -->`, `-. "text" .->`, `== "text" ==>`, or `-->|"text"|`; then set aside.
    for (const label of line.matchAll(/(?:--|==|-\.)\s+([^">|-][^>]*?)\s+(?:-->|==>|\.->|---)/g))
      problems.push(`${at}: an edge label is not quoted: ${label[1]}`);
    for (const label of line.matchAll(/\|([^|]*)\|/g))
      if (!/^"[^"]*"$/.test(label[1] as string)) problems.push(`${at}: an edge label is not quoted: ${label[1]}`);
    const rest = line
      .replace(/(?:--|==|-\.)\s*(?:"[^"]*"|[^">|-][^>]*?)\s*(-->|==>|\.->|---)/g, ' $1 ')
      .replace(/\|[^|]*\|/g, ' ')
      // What a quoted label holds is never read as an edge, a shape or a separator.
      .replace(/"[^"]*"/g, (quoted) => quoted.replace(/[[\](){}<>|&-]/g, '_'));
    // Each node: an id, then either a shape with its label, or nothing (a reference).
    for (const part of rest.split(/\s*(?:-->|---|==>|-\.->|-\.-|&)\s*/)) {
      if (part === '') continue;
      NODE.lastIndex = 0;
      const node = NODE.exec(part);
      const id = node?.[1] ?? /^[A-Za-z][\w-]*$/.exec(part)?.[0];
      if (id === undefined) {
        problems.push(`${at}: cannot read "${part}"`);
        continue;
      }
      if (!node) {
        used.push({ id, line: index + 1 });
        continue;
      }
      const opener = node[2] as string;
      const closer = CLOSERS[opener] as string;
      const label = part.slice(NODE.lastIndex);
      if (!label.endsWith(closer) || !/^"[^"]*"$/.test(label.slice(0, label.length - closer.length))) {
        problems.push(`${at}: node ${id}'s label is not one quoted string in ${opener}${closer}`);
      }
      if (labels.has(id) || subgraphs.has(id))
        problems.push(`${at}: node id ${id} is defined twice (first on line ${labels.get(id) ?? '?'})`);
      labels.set(id, index + 1);
    }
  });
  for (const id of open) problems.push(`subgraph ${id} is never closed`);
  for (const { id, line } of used) {
    if (!labels.has(id) && !subgraphs.has(id)) problems.push(`line ${line}: ${id} is used but never defined with a label`);
  }
  return problems;
}

/** The problems of one sequence diagram. */
function sequenceProblems(lines: string[]): string[] {
  const problems: string[] = [];
  const participants = new Set<string>();
  lines.forEach((raw, index) => {
    const line = raw.trim();
    const at = `line ${index + 1}`;
    if (
      index === 0 ||
      line === '' ||
      line.startsWith('%%') ||
      /^(autonumber|note|loop|alt|else|opt|par|and|end|rect|critical|break|activate|deactivate)\b/i.test(line)
    )
      return;
    const declared = /^(participant|actor)\s+(\w+)(\s+as\s+.+)?$/.exec(line);
    if (declared) {
      const id = declared[2] as string;
      if (participants.has(id)) problems.push(`${at}: participant ${id} is declared twice`);
      participants.add(id);
      return;
    }
    const message = /^(\w+)\s*(-->>|->>|-->|->|--x|-x|--\)|-\))\s*([+-]?)(\w+)\s*:\s*(.+)$/.exec(line);
    if (!message) {
      problems.push(`${at}: cannot read "${line}"`);
      return;
    }
    for (const id of [message[1] as string, message[4] as string]) {
      if (!participants.has(id)) problems.push(`${at}: ${id} is not a declared participant`);
    }
  });
  return problems;
}

/** What is wrong with one diagram: [] when it keeps to the house style. */
export function mermaidProblems(diagram: string): string[] {
  const lines = diagram.split('\n');
  const first = lines.findIndex((line) => line.trim() !== '' && !line.trim().startsWith('%%'));
  const kind = (lines[first] ?? '').trim();
  // Line numbers count from the diagram's first line, its kind; what comes before it is blank.
  const body = lines.map((line, index) => (index < first ? '' : line));
  if (/^(flowchart|graph)\s+(TB|TD|BT|LR|RL)$/.test(kind)) return flowchartProblems(body);
  if (kind === 'sequenceDiagram') return sequenceProblems(body);
  return [`a diagram of a kind this check does not read: "${kind}" (flowchart or sequenceDiagram)`];
}
