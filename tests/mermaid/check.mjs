// Parses a Mermaid diagram from stdin with mermaid's own parser; exit 0 if valid, 1 if not.
// mermaid.parse needs a DOM (for DOMPurify), so jsdom provides one.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');

const text = readFileSync(0, 'utf8');
try {
  const result = await mermaid.parse(text);
  console.log(`valid ${result.diagramType}`);
} catch (e) {
  console.error(`invalid: ${e.message ?? e}`);
  process.exit(1);
}
