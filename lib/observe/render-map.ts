// renderMap: an SVG picture of a pool's dump, for people who would rather
// look than read JSON.
//
//   title      pool name, backing, totals
//   axis       byte offsets within a chunk
//   chunk 0    [slab|slab|slab| large |////// free //////]   free 3.1 MiB (78%)
//   chunk 1    [...]
//   huge       [==== 2 MiB ====]                              2 MiB
//   legend     one swatch per size class present, large, huge, free
//
// Every run is drawn to scale (its pages over the chunk's pages). A slab run
// is a column in its class's colour, pale for its capacity and solid from
// the bottom up for the share of its slots that are live. Large runs (one
// allocation of whole pages) are orange, huge mappings red, free pages a
// hatched light grey. The output depends on the dump alone: no dates, no
// random ids, no locale.
import { invalidArgType, outOfRange } from '../errors.js';
import { formatBytes, type ChunkDump, type PoolDump, type RunDump } from './stats.js';

export interface RenderMapOptions {
  /** Width of the picture in SVG user units (pixels): an integer from 480 to 10000. Default: 960. */
  width?: number;
  /** The title line. Default: `Pool "<name>"`. */
  title?: string;
}

const FONT = 'font-family="Helvetica, Arial, sans-serif"';
const MARGIN = 24;
const LABEL_W = 96;
const RIGHT_W = 132;
const BAR_H = 34;
const ROW_H = 50;
const HUGE_H = 18;
const HUGE_ROW = 28;
const LARGE = '#e8833a';
const HUGE = '#c8384e';
const FREE_FILL = '#f2f2f2';
const FREE_LINE = '#bdbdbd';
const INK = '#222222';
const MUTED = '#666666';

/** Colours of the slab classes, from the smallest class present to the largest. */
const RAMP = ['#4b2991', '#2f63c9', '#1f9fb0', '#2fb36b', '#9cc43a'];

function hex(c: string): [number, number, number] {
  return [parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16)];
}

function ramp(t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const a = hex(RAMP[i]);
  const b = hex(RAMP[i + 1]);
  const f = x - i;
  return `#${a.map((v, k) => Math.round(v + (b[k] - v) * f).toString(16).padStart(2, '0')).join('')}`;
}

/** Text for XML: the five special characters escaped, characters XML 1.0 forbids replaced by U+FFFD. */
export function esc(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** A coordinate: at most two decimals, no trailing zeros. */
function n(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/** An integer with commas between thousands, whatever the locale. */
function count(v: number): string {
  return String(v).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function plural(v: number, one: string, many = `${one}s`): string {
  return `${count(v)} ${v === 1 ? one : many}`;
}

/** About how wide `body` is in a sans-serif font of `size`: fonts differ, so layouts leave room. */
function textWidth(body: string, size: number): number {
  return body.length * size * 0.58;
}

/** `parts` joined by `sep` into lines of at most `max` estimated width. */
function wrap(parts: readonly string[], size: number, max: number, sep = '  ·  '): string[] {
  const lines: string[] = [];
  for (const part of parts) {
    const last = lines.length - 1;
    if (last >= 0 && textWidth(`${lines[last]}${sep}${part}`, size) <= max) lines[last] += `${sep}${part}`;
    else lines.push(part);
  }
  return lines;
}

/** `body` cut with an ellipsis to fit `max`. */
function fit(body: string, size: number, max: number): string {
  const chars = Math.max(1, Math.floor(max / (size * 0.58)));
  return body.length <= chars ? body : `${body.slice(0, chars - 1)}\u2026`;
}

function text(x: number, y: number, body: string, attrs = ''): string {
  return `<text x="${n(x)}" y="${n(y)}"${attrs ? ` ${attrs}` : ''}>${esc(body)}</text>`;
}

function checkDump(dump: PoolDump): void {
  const ok = dump !== null && typeof dump === 'object' &&
    Array.isArray(dump.chunks) && Array.isArray(dump.huge) && Array.isArray(dump.allocations) &&
    typeof dump.pageSize === 'number' && dump.pageSize > 0;
  if (!ok) throw invalidArgType('dump', 'a PoolDump (pool.dump())', dump, renderMap);
}

function checkOptions(options: RenderMapOptions | undefined): { width: number; title: string | undefined } {
  if (options === undefined) return { width: 960, title: undefined };
  if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options, renderMap);
  const { width = 960, title } = options;
  if (typeof width !== 'number') throw invalidArgType('options.width', 'of type number', width, renderMap);
  if (!Number.isInteger(width) || width < 480 || width > 10_000) {
    throw outOfRange('options.width', 'an integer >= 480 && <= 10000', width, renderMap);
  }
  if (title !== undefined && typeof title !== 'string') throw invalidArgType('options.title', 'of type string', title, renderMap);
  return { width, title };
}

function runTitle(run: RunDump, pageSize: number): string {
  const where = `pages ${run.page}-${run.page + run.pages - 1} (${formatBytes(run.pages * pageSize)})`;
  if (run.kind === 'free') return `free: ${where}`;
  if (run.kind === 'large') return `large run, ${formatBytes(run.classSize)} class: ${where}, ${run.live ? 'live' : 'free'}`;
  return `slab of ${formatBytes(run.classSize)}: ${run.live} of ${run.capacity} slots live, ${where}`;
}

/** What the sections of the picture share: its geometry, the SVG written so far and the height reached. */
interface Canvas {
  readonly width: number;
  /** The width inside the margins. */
  readonly inner: number;
  /** Where the bars start, and how wide the widest is. */
  readonly barX: number;
  readonly barW: number;
  readonly body: string[];
  y: number;
}

/** The dump's chunks and huge mappings by id, and the colour of each slab class present. */
interface Scene {
  readonly dump: PoolDump;
  readonly title: string | undefined;
  readonly chunks: ChunkDump[];
  readonly huge: PoolDump['huge'];
  readonly slabClasses: number[];
  readonly colour: ReadonlyMap<number, string>;
  readonly maxChunk: number;
}

/**
 * An SVG picture of `dump` (from pool.dump()): one bar per chunk with its
 * page runs drawn to scale (slab runs coloured by size class and filled from
 * the bottom by live/capacity, large runs orange, free pages hatched grey),
 * one bar per huge mapping below them, and a legend of the colours in use.
 * The same dump always gives the same text.
 * @throws TypeError ERR_INVALID_ARG_TYPE (not a dump; a bad option type),
 * RangeError ERR_OUT_OF_RANGE (width)
 */
export function renderMap(dump: PoolDump, options?: RenderMapOptions): string {
  checkDump(dump);
  const { width, title } = checkOptions(options);
  const scene = sceneOf(dump, title);
  const barX = MARGIN + LABEL_W;
  const canvas: Canvas = { width, inner: width - 2 * MARGIN, barX, barW: width - barX - RIGHT_W - MARGIN, body: [], y: MARGIN };
  drawTitle(canvas, scene);
  if (scene.chunks.length === 0 && scene.huge.length === 0) {
    canvas.y += 30;
    canvas.body.push(text(MARGIN, canvas.y, 'Nothing is mapped.', `font-size="14" fill="${MUTED}"`));
    canvas.y += 10;
  }
  if (scene.chunks.length > 0) drawChunks(canvas, scene);
  if (scene.huge.length > 0) drawHuge(canvas, scene);
  drawLegend(canvas, scene);
  canvas.y += MARGIN;
  return svgDocument(width, Math.ceil(canvas.y), title ?? `Pool "${dump.name}"`, canvas.body);
}

function sceneOf(dump: PoolDump, title: string | undefined): Scene {
  const chunks = [...dump.chunks].sort((a, b) => a.id - b.id);
  const huge = [...dump.huge].sort((a, b) => a.id - b.id);
  const slabClasses = [...new Set(chunks.flatMap((c) => c.runs.flatMap((r) => (r.kind === 'slab' ? [r.classSize] : []))))]
    .sort((a, b) => a - b);
  const colour = new Map(slabClasses.map((s, i) => [s, ramp(slabClasses.length === 1 ? 0.35 : i / (slabClasses.length - 1))]));
  const maxChunk = Math.max(0, ...chunks.map((c) => c.size));
  return { dump, title, chunks, huge, slabClasses, colour, maxChunk };
}

/** The title and the lines of totals under it. */
function drawTitle(canvas: Canvas, { dump, title, chunks, huge }: Scene): void {
  const { body, inner } = canvas;
  const chunkBytes = chunks.reduce((s, c) => s + c.size, 0);
  const hugeBytes = huge.reduce((s, h) => s + h.mappedBytes, 0);
  const { spareBytes } = dump;
  const usedBytes = dump.allocations.reduce((s, a) => s + a.size, 0);
  const freeBytes = chunks.reduce((s, c) => s + c.freePages * dump.pageSize, 0);
  canvas.y += 20;
  body.push(text(MARGIN, canvas.y, fit(title ?? `Pool "${dump.name}"`, 20, inner), `font-size="20" font-weight="bold" fill="${INK}"`));
  canvas.y += 4;
  const kinds = [
    `${dump.backing} memory${dump.closed ? ' (closed)' : ''}`,
    `${formatBytes(chunkBytes + hugeBytes + spareBytes)} mapped: ${plural(chunks.length, 'chunk')}` +
      (huge.length > 0 ? ` + ${plural(huge.length, 'huge mapping')}` : '') +
      (spareBytes > 0 ? ` + ${formatBytes(spareBytes)} kept from freed huge allocations` : ''),
    `${formatBytes(usedBytes)} used by ${plural(dump.allocations.length, 'live allocation')}`,
    ...(chunks.length > 0 ? [`${formatBytes(freeBytes)} free in chunks`] : []),
  ];
  for (const line of wrap(kinds, 13, inner)) {
    canvas.y += 18;
    body.push(text(MARGIN, canvas.y, line, `font-size="13" fill="${MUTED}"`));
  }
  canvas.y += 14;
}

/** The 'Chunks' heading, the axis and one row per chunk. */
function drawChunks(canvas: Canvas, { dump, chunks, colour, maxChunk }: Scene): void {
  const { body, barX, barW } = canvas;
  canvas.y += 26;
  body.push(text(MARGIN, canvas.y, 'Chunks', `font-size="14" font-weight="bold" fill="${INK}"`));
  drawAxis(canvas, maxChunk);
  canvas.y += 18;
  for (const chunk of chunks) {
    body.push(chunkRow(chunk, canvas.y, barX, (barW * chunk.size) / maxChunk, dump.pageSize, colour));
    canvas.y += ROW_H;
  }
  canvas.y -= ROW_H - BAR_H;
}

/** Byte offsets in quarters (halves, on a narrow picture) of the largest chunk, on the heading's line. */
function drawAxis({ body, barX, barW, y: axisY }: Canvas, maxChunk: number): void {
  const parts = barW / 4 >= 64 ? 4 : barW / 2 >= 64 ? 2 : 1;
  body.push(`<line x1="${n(barX)}" y1="${n(axisY + 4)}" x2="${n(barX + barW)}" y2="${n(axisY + 4)}" stroke="#999999" stroke-width="1"/>`);
  for (let q = 0; q <= parts; q++) {
    const x = barX + (barW * q) / parts;
    const anchor = q === 0 ? 'start' : q === parts ? 'end' : 'middle';
    body.push(`<line x1="${n(x)}" y1="${n(axisY)}" x2="${n(x)}" y2="${n(axisY + 8)}" stroke="#999999" stroke-width="1"/>`);
    body.push(text(x, axisY - 4, q === 0 ? '0' : formatBytes((maxChunk * q) / parts), `font-size="11" fill="${MUTED}" text-anchor="${anchor}"`));
  }
}

/** Huge mappings: drawn to the chunks' scale unless one is larger than a chunk. */
function drawHuge(canvas: Canvas, { huge, maxChunk }: Scene): void {
  const { body, inner } = canvas;
  canvas.y += 34;
  const scaleBytes = Math.max(maxChunk, Math.max(0, ...huge.map((h) => h.mappedBytes)));
  const note = scaleBytes > maxChunk && maxChunk > 0 ? `drawn to scale: full width = ${formatBytes(scaleBytes)}` : '';
  body.push(text(MARGIN, canvas.y, 'Huge allocations', `font-size="14" font-weight="bold" fill="${INK}"`));
  for (const line of wrap(['one mapping each', ...(note ? [note] : [])], 11, inner - 146)) {
    body.push(text(MARGIN + 146, canvas.y, line, `font-size="11" fill="${MUTED}"`));
    canvas.y += 15;
  }
  canvas.y -= 3;
  for (const h of huge) {
    body.push(hugeRow(canvas, h, scaleBytes));
    canvas.y += HUGE_ROW;
  }
  canvas.y -= HUGE_ROW - HUGE_H;
}

function hugeRow({ width, barX, barW, y }: Canvas, h: PoolDump['huge'][number], scaleBytes: number): string {
  const w = Math.max(2, (barW * h.mappedBytes) / scaleBytes);
  const label = h.size === h.mappedBytes ? formatBytes(h.size) : `${formatBytes(h.size)} (${formatBytes(h.mappedBytes)} mapped)`;
  return `<g class="huge" data-id="${esc(String(h.id))}">` +
    `<title>${esc(`huge mapping ${h.id}: ${label}`)}</title>` +
    text(MARGIN, y + HUGE_H / 2 + 4, `huge ${h.id}`, `font-size="12" fill="${INK}"`) +
    `<rect x="${n(barX)}" y="${n(y)}" width="${n(w)}" height="${HUGE_H}" fill="${HUGE}" rx="2"/>` +
    (barX + w + 8 + textWidth(label, 12) <= width - MARGIN
      ? text(barX + w + 8, y + HUGE_H / 2 + 4, label, `font-size="12" fill="${INK}"`)
      : text(barX + w - 6, y + HUGE_H / 2 + 4, label, `font-size="12" fill="#ffffff" text-anchor="end"`)) +
    '</g>';
}

const SW = 14;

/** One swatch and its label per colour in use: the slab classes, large runs, huge mappings, free pages. */
function legendItems({ chunks, huge, slabClasses, colour }: Scene): string[] {
  const items: string[] = [];
  const slabSwatch = (c: string): string =>
    `<rect width="${SW}" height="${SW}" fill="${c}" fill-opacity="0.3"/>` +
    `<rect y="${SW / 2}" width="${SW}" height="${SW / 2}" fill="${c}"/>`;
  for (const s of slabClasses) {
    items.push(`<g class="legend-item" data-class="${esc(String(s))}">${slabSwatch(colour.get(s) ?? '#000000')}${text(SW + 6, 11, formatBytes(s), `font-size="12" fill="${INK}"`)}</g>`);
  }
  const hasLarge = chunks.some((c) => c.runs.some((r) => r.kind === 'large'));
  const hasFree = chunks.some((c) => c.runs.some((r) => r.kind === 'free'));
  if (hasLarge) items.push(`<g class="legend-item" data-kind="large"><rect width="${SW}" height="${SW}" fill="${LARGE}"/>${text(SW + 6, 11, 'large run', `font-size="12" fill="${INK}"`)}</g>`);
  if (huge.length > 0) items.push(`<g class="legend-item" data-kind="huge"><rect width="${SW}" height="${SW}" fill="${HUGE}" rx="2"/>${text(SW + 6, 11, 'huge', `font-size="12" fill="${INK}"`)}</g>`);
  if (hasFree) items.push(`<g class="legend-item" data-kind="free"><rect x="0.5" y="0.5" width="${SW - 1}" height="${SW - 1}" fill="url(#free)" stroke="${FREE_LINE}"/>${text(SW + 6, 11, 'free pages', `font-size="12" fill="${INK}"`)}</g>`);
  return items;
}

/** The 'Legend' heading, a note on slab runs when there are any, and the swatches in rows. */
function drawLegend(canvas: Canvas, scene: Scene): void {
  const items = legendItems(scene);
  if (items.length === 0) return;
  const { body, inner, width } = canvas;
  canvas.y += 36;
  body.push(text(MARGIN, canvas.y, 'Legend', `font-size="14" font-weight="bold" fill="${INK}"`));
  if (scene.slabClasses.length > 0) {
    const note = ['slab runs by size class:', 'pale = capacity,', 'solid from the bottom = share of slots live'];
    for (const line of wrap(note, 11, inner - 66, ' ')) {
      body.push(text(MARGIN + 66, canvas.y, line, `font-size="11" fill="${MUTED}"`));
      canvas.y += 15;
    }
    canvas.y -= 15;
  }
  canvas.y += 12;
  const cellW = 104;
  const perRow = Math.max(1, Math.floor((width - 2 * MARGIN) / cellW));
  items.forEach((item, i) => {
    const x = MARGIN + (i % perRow) * cellW;
    const iy = canvas.y + Math.floor(i / perRow) * 22;
    body.push(`<g transform="translate(${n(x)} ${n(iy)})">${item}</g>`);
  });
  canvas.y += Math.ceil(items.length / perRow) * 22 - 8;
}

/** The SVG document around `body`: its size, title, the hatch pattern of free pages and a white ground. */
function svgDocument(width: number, height: number, title: string, body: readonly string[]): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>`,
    `<title>${esc(title)}: memory map</title>`,
    '<defs>',
    `<pattern id="free" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
      `<rect width="6" height="6" fill="${FREE_FILL}"/><line x1="0" y1="0" x2="0" y2="6" stroke="#d6d6d6" stroke-width="2"/></pattern>`,
    '</defs>',
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

function chunkRow(
  chunk: ChunkDump, y: number, x0: number, w: number, pageSize: number, colour: ReadonlyMap<number, string>,
): string {
  const pages = chunk.size / pageSize;
  const px = w / pages;
  const parts: string[] = [];
  parts.push(`<g class="chunk" data-id="${esc(String(chunk.id))}">`);
  parts.push(text(MARGIN, y + 14, `chunk ${chunk.id}`, `font-size="13" font-weight="bold" fill="${INK}"`));
  parts.push(text(MARGIN, y + 30, formatBytes(chunk.size), `font-size="11" fill="${MUTED}"`));
  const runs = [...chunk.runs].sort((a, b) => a.page - b.page);
  for (const run of runs) {
    const x = x0 + run.page * px;
    const rw = run.pages * px;
    // A white edge between runs where there is room for one.
    const edge = rw >= 3 ? ' stroke="#ffffff" stroke-width="0.6"' : '';
    const tip = `<title>${esc(runTitle(run, pageSize))}</title>`;
    if (run.kind === 'free') {
      parts.push(`<rect class="run free" x="${n(x)}" y="${n(y)}" width="${n(rw)}" height="${BAR_H}" fill="url(#free)" stroke="${FREE_LINE}" stroke-width="1">${tip}</rect>`);
    } else if (run.kind === 'large') {
      parts.push(`<rect class="run large" x="${n(x)}" y="${n(y)}" width="${n(rw)}" height="${BAR_H}" fill="${LARGE}"${edge}>${tip}</rect>`);
      if (rw >= 52) {
        parts.push(text(x + rw / 2, y + BAR_H / 2 + 4, formatBytes(run.classSize), `font-size="11" fill="#ffffff" text-anchor="middle"`));
      }
    } else {
      const c = colour.get(run.classSize) ?? '#000000';
      const share = run.capacity > 0 ? run.live / run.capacity : 0;
      const fh = BAR_H * share;
      parts.push(
        `<g class="run slab" data-class="${esc(String(run.classSize))}">${tip}` +
          `<rect x="${n(x)}" y="${n(y)}" width="${n(rw)}" height="${BAR_H}" fill="${c}" fill-opacity="0.3"${edge}/>` +
          (fh > 0 ? `<rect x="${n(x)}" y="${n(y + BAR_H - fh)}" width="${n(rw)}" height="${n(fh)}" fill="${c}"${edge}/>` : '') +
          '</g>',
      );
    }
  }
  parts.push(`<rect x="${n(x0)}" y="${n(y)}" width="${n(w)}" height="${BAR_H}" fill="none" stroke="#8a8a8a" stroke-width="1"/>`);
  const free = chunk.freePages * pageSize;
  const pct = Math.round((100 * chunk.freePages) / pages);
  parts.push(text(x0 + w + 10, y + 14, `${formatBytes(free)} free`, `font-size="12" fill="${INK}"`));
  parts.push(text(x0 + w + 10, y + 30, `${pct}% of the chunk`, `font-size="11" fill="${MUTED}"`));
  parts.push('</g>');
  return parts.join('');
}
