import { describe, expect, it } from 'vitest';
import { docFiles, fencedBlocks, readDoc, section } from '../support/markdown';
import { mermaidProblems } from '../support/mermaid';

const diagrams = docFiles().flatMap((file) =>
  fencedBlocks(readDoc(file))
    .blocks.filter((block) => block.info === 'mermaid')
    .map((block) => ({ name: `${file}:${block.line}`, text: block.text })),
);

/** The keys of an object as a diagram writes it, `tradeType, items: [{sku, quantity}]`, at its top level only. */
function topLevelKeys(body: string): string[] {
  let depth = 0;
  let flat = '';
  for (const char of body) {
    if ('[{('.includes(char)) depth++;
    else if (']})'.includes(char)) depth--;
    else if (depth === 0) flat += char;
  }
  return flat
    .split(',')
    .map((entry) => (entry.split(':')[0] as string).trim())
    .filter((key) => key !== '');
}

describe('the Mermaid diagrams of the docs', () => {
  it("include the architecture page's layers, request flow and payment sequence", () => {
    expect(diagrams.filter(({ name }) => name.startsWith('docs/internals/architecture.md')).length).toBeGreaterThanOrEqual(3);
  });

  it("send POST /orders only the fields the API takes, as the reference's table of POST /orders lists them", () => {
    const taken = new Set(
      [...section(readDoc('docs/reference/http-api.md'), '`POST /orders`').matchAll(/^\| `(\w+)` \|/gm)].map((match) => match[1]),
    );
    expect([...taken]).toEqual(expect.arrayContaining(['tradeType', 'items']));
    expect(taken.has('totalFee')).toBe(false);
    const sent = diagrams.flatMap(({ name, text }) =>
      [...text.matchAll(/:\s*POST \/orders \{(.*)\}\s*$/gm)].map((match) => ({ name, fields: topLevelKeys(match[1] as string) })),
    );
    expect(sent.length).toBeGreaterThan(0);
    for (const { name, fields } of sent)
      expect(
        fields.filter((field) => !taken.has(field)),
        name,
      ).toEqual([]);
  });

  it.each(diagrams)(
    '$name keeps to the house style: unique node ids, quoted labels, subgraphs closed, declared participants',
    ({ text }) => {
      expect(mermaidProblems(text)).toEqual([]);
    },
  );
});

describe('the diagram check', () => {
  it("finds what broke the old README's flowchart: an id for two nodes, a node defined twice, a subgraph opened twice, an orphan end", () => {
    const broken = [
      'flowchart LR',
      '  merchant["Merchant\'s server<br/>Bearer token"]',
      '  subgraph lib ["lib/"]',
      '    store["orders/store.ts"]',
      '  end',
      '  db[("DynamoDB<br/>orders table")]',
      '  merchant["Merchant\'s systems<br/>functions, queues, HTTPS"]',
      '  end',
      '  subgraph lib ["lib/"]',
      '    store["orders/store.ts, catalog/store.ts"]',
      '  end',
      '  db[("DynamoDB<br/>orders and catalog tables")]',
      '  merchant -- "JSON + Bearer" --> store --> db',
    ].join('\n');
    const problems = mermaidProblems(broken);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/line 7: node id merchant is defined twice/),
        expect.stringMatching(/line 8: an end with no subgraph open/),
        expect.stringMatching(/line 9: subgraph lib is opened twice/),
        expect.stringMatching(/line 10: node id store is defined twice/),
        expect.stringMatching(/line 12: node id db is defined twice/),
      ]),
    );
  });

  it('finds unquoted labels, unquoted edge labels, undefined nodes and undeclared participants', () => {
    expect(mermaidProblems('flowchart TB\n  a[functions (AWS Lambda)]\n  b["b"]\n  a -- imports --> b\n  b --> c')).toEqual([
      expect.stringMatching(/line 2: node a's label is not one quoted string/),
      expect.stringMatching(/line 4: an edge label is not quoted: imports/),
      expect.stringMatching(/line 5: c is used but never defined/),
    ]);
    expect(
      mermaidProblems('sequenceDiagram\n  participant F as Frontend\n  participant F as Again\n  F->>C: POST /orders {items}'),
    ).toEqual([
      expect.stringMatching(/line 3: participant F is declared twice/),
      expect.stringMatching(/line 4: C is not a declared participant/),
    ]);
  });

  it('passes a diagram in the house style', () => {
    const good =
      'flowchart LR\n  subgraph fns ["functions/"]\n    a["createOrder<br/>POST /orders"]\n  end\n  db[("DynamoDB")]\n  a & b -- "PutItem (only if new)" --> db\n  b["notify"]';
    expect(mermaidProblems(good)).toEqual([]);
  });
});
