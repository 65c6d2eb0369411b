// The service section of bench/RESULTS.md: written by `npm run bench:service`
// between two markers, and kept as it is when `npm run bench` rewrites the
// rest of the file.
import { existsSync, readFileSync } from 'node:fs';

const BEGIN = '<!-- service results: npm run bench:service -->';
const END = '<!-- end of service results -->';

/** The service block of the file at `file` (markers included), or '' when it has none. */
export function serviceBlock(file: string): string {
  if (!existsSync(file)) return '';
  const text = readFileSync(file, 'utf8');
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  return a >= 0 && b > a ? text.slice(a, b + END.length) + '\n' : '';
}

/** `text` (RESULTS.md) with its service block replaced by `block` (body without markers), or the block appended. */
export function withServiceBlock(text: string, body: string): string {
  const block = `${BEGIN}\n${body.trimEnd()}\n${END}\n`;
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a >= 0 && b > a) return text.slice(0, a) + block + text.slice(b + END.length + 1);
  return `${text.trimEnd()}\n\n${block}`;
}
