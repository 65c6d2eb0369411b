// renderMap: the SVG is well-formed XML (checked by a strict little parser
// below, no dependency), shows one row per chunk with its runs to scale, a
// bar per huge mapping and a legend of the classes present, and is the same
// text for the same dump.
import { describe, expect, it } from 'vitest';

import { formatBytes, Pool, type PoolDump, type PoolOptions } from '../lib/index.js';
import { hold, KiB, make, MiB } from './helpers.js';
import { renderMap } from '../lib/observe/render-map.js';


interface Element {
  name: string;
  attrs: Record<string, string>;
  children: Element[];
  /** The element's own text, entities decoded (not its descendants'). */
  text: string;
}

/**
 * A strict XML 1.0 well-formedness check for what an SVG writer produces:
 * an optional declaration, comments, elements with quoted attributes
 * (no duplicates), text with the predefined and numeric entities only,
 * matched tags and a single root. Throws on anything else.
 */
function parseXml(src: string): Element {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`not well-formed at ${i}: ${why}: ${JSON.stringify(src.slice(i, i + 40))}`);
  };
  const NAME = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
  const name = (): string => {
    NAME.lastIndex = i;
    const m = NAME.exec(src);
    if (!m) fail('expected a name');
    i = NAME.lastIndex;
    return (m as RegExpExecArray)[0];
  };
  const space = (): void => {
    while (/[ \t\r\n]/.test(src[i] ?? '')) i++;
  };
  const decode = (raw: string): string => {
    if (/[<]/.test(raw)) fail('"<" in text or attribute');
    if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(raw)) fail('a character XML forbids');
    return raw.replace(/&([^;]*);|&/g, (_match, ref: string | undefined) => {
      if (ref === undefined) return fail('bare "&"');
      const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
      if (ref in named) return named[ref];
      const num = /^#(?:x([0-9a-fA-F]+)|([0-9]+))$/.exec(ref);
      if (!num) return fail(`unknown entity &${ref};`);
      return String.fromCodePoint(num[1] ? parseInt(num[1], 16) : Number(num[2]));
    });
  };
  const misc = (): void => {
    for (;;) {
      space();
      if (src.startsWith('<!--', i)) {
        const end = src.indexOf('-->', i + 4);
        if (end < 0) fail('unclosed comment');
        i = end + 3;
      } else return;
    }
  };
  const element = (): Element => {
    if (src[i] !== '<') fail('expected "<"');
    i++;
    const el: Element = { name: name(), attrs: {}, children: [], text: '' };
    for (;;) {
      const before = i;
      space();
      if (src.startsWith('/>', i)) {
        i += 2;
        return el;
      }
      if (src[i] === '>') {
        i++;
        break;
      }
      if (i === before) fail('expected space before an attribute');
      const key = name();
      space();
      if (src[i] !== '=') fail('expected "="');
      i++;
      space();
      const q = src[i];
      if (q !== '"' && q !== "'") fail('unquoted attribute');
      const end = src.indexOf(q, i + 1);
      if (end < 0) fail('unclosed attribute');
      if (key in el.attrs) fail(`duplicate attribute ${key}`);
      el.attrs[key] = decode(src.slice(i + 1, end));
      i = end + 1;
    }
    for (;;) {
      const lt = src.indexOf('<', i);
      if (lt < 0) fail(`unclosed <${el.name}>`);
      el.text += decode(src.slice(i, lt));
      i = lt;
      if (src.startsWith('</', i)) {
        i += 2;
        const closing = name();
        if (closing !== el.name) fail(`</${closing}> closes <${el.name}>`);
        space();
        if (src[i] !== '>') fail('expected ">"');
        i++;
        return el;
      }
      if (src.startsWith('<!--', i)) {
        misc();
        continue;
      }
      el.children.push(element());
    }
  };
  if (src.startsWith('<?xml', 0)) {
    const end = src.indexOf('?>');
    if (!/^<\?xml version="1\.0"( encoding="UTF-8")?\?>$/.test(src.slice(0, end + 2))) fail('bad XML declaration');
    i = end + 2;
  }
  misc();
  const root = element();
  misc();
  if (i !== src.length) fail('content after the root element');
  return root;
}

function all(el: Element, pred: (e: Element) => boolean, out: Element[] = []): Element[] {
  if (pred(el)) out.push(el);
  for (const c of el.children) all(c, pred, out);
  return out;
}

function hasClass(el: Element, cls: string): boolean {
  return (el.attrs.class ?? '').split(' ').includes(cls);
}

/** All text under `el`, in document order. */
function textOf(el: Element): string {
  return el.text + el.children.map(textOf).join('');
}

/** A pool with slabs of several classes, large runs, free runs and two huge mappings. */
function realistic(): Pool {
  const pool = make({ name: 'map', chunkSize: 1 * MiB, hugeThreshold: 512 * KiB });
  const bufs: Buffer[] = hold([]);
  for (let i = 0; i < 900; i++) bufs.push(pool.allocUnsafe(16 + ((i * 53) % 700)));
  for (let i = 0; i < 12; i++) bufs.push(pool.allocUnsafe(20 * KiB + i * 9 * KiB));
  hold([pool.alloc(3 * MiB), pool.alloc(600 * KiB + 7)]);
  for (let i = 0; i < bufs.length; i += 3) pool.free(bufs[i]);
  return pool;
}

/** A dump written by hand, for exact geometry. */
function synthetic(): PoolDump {
  return {
    name: 'hand',
    backing: 'anonymous',
    closed: false,
    pageSize: 4096,
    chunkSize: 64 * KiB,
    hugeThreshold: 32 * KiB,
    spareBytes: 0,
    chunks: [
      {
        id: 0,
        size: 64 * KiB,
        freePages: 8,
        runs: [
          { page: 0, pages: 2, kind: 'slab', classSize: 32, live: 64, capacity: 256 },
          { page: 2, pages: 2, kind: 'slab', classSize: 256, live: 32, capacity: 32 },
          { page: 4, pages: 4, kind: 'large', classSize: 16 * KiB, live: 1, capacity: 1 },
          { page: 8, pages: 8, kind: 'free' },
        ],
      },
      {
        id: 3,
        size: 64 * KiB,
        freePages: 15,
        runs: [
          { page: 0, pages: 1, kind: 'slab', classSize: 32, live: 0, capacity: 128 },
          { page: 1, pages: 15, kind: 'free' },
        ],
      },
    ],
    huge: [{ id: 5, size: 100 * KiB + 1, mappedBytes: 104 * KiB }],
    allocations: [],
  };
}

describe('renderMap', () => {
  it('writes well-formed SVG with a viewBox and a sans-serif font', () => {
    const svg = renderMap(realistic().dump());
    const root = parseXml(svg);
    expect(root.name).toBe('svg');
    expect(root.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
    expect(root.attrs.viewBox).toBe(`0 0 ${root.attrs.width} ${root.attrs.height}`);
    expect(Number(root.attrs.width)).toBe(960);
    expect(root.attrs['font-family']).toMatch(/sans-serif$/);
  });

  it('draws one row per chunk, with every run of the chunk in it', () => {
    const dump = realistic().dump();
    expect(dump.chunks.length).toBeGreaterThan(1);
    const root = parseXml(renderMap(dump));
    const rows = all(root, (e) => hasClass(e, 'chunk'));
    expect(rows.map((r) => Number(r.attrs['data-id']))).toEqual(dump.chunks.map((c) => c.id).sort((a, b) => a - b));
    for (const row of rows) {
      const chunk = dump.chunks.find((c) => c.id === Number(row.attrs['data-id']));
      const runs = all(row, (e) => hasClass(e, 'run'));
      expect(runs).toHaveLength(chunk?.runs.length ?? -1);
      expect(textOf(row)).toContain(`chunk ${chunk?.id}`);
      expect(textOf(row)).toContain(formatBytes(chunk?.size ?? 0));
    }
  });

  it('draws runs to scale and fills slab runs by live/capacity', () => {
    const root = parseXml(renderMap(synthetic(), { width: 1000 }));
    const row = all(root, (e) => hasClass(e, 'chunk') && e.attrs['data-id'] === '0')[0];
    const rectOf = (run: Element): Element => (run.name === 'rect' ? run : run.children.find((c) => c.name === 'rect') as Element);
    const runs = all(row, (e) => hasClass(e, 'run'));
    const widths = runs.map((r) => Number(rectOf(r).attrs.width));
    const unit = widths[0] / 2;  // the first run has 2 pages
    expect(widths.map((w) => Math.round((w / unit) * 100) / 100)).toEqual([2, 2, 4, 8]);
    // Runs tile the bar left to right.
    const xs = runs.map((r) => Number(rectOf(r).attrs.x));
    for (let k = 1; k < xs.length; k++) expect(xs[k]).toBeCloseTo(xs[k - 1] + widths[k - 1], 1);
    // Slab fill: a solid part of height live/capacity of the bar.
    const [quarter, full] = runs.slice(0, 2).map((g) => g.children.filter((c) => c.name === 'rect'));
    const barH = Number(quarter[0].attrs.height);
    expect(Number(quarter[1].attrs.height)).toBeCloseTo(barH / 4, 1);
    expect(Number(full[1].attrs.height)).toBeCloseTo(barH, 1);
    expect(runs[2].attrs.class).toBe('run large');
    expect(runs[3].attrs.class).toBe('run free');
    // An empty slab has no solid part.
    const empty = all(root, (e) => hasClass(e, 'chunk') && e.attrs['data-id'] === '3')[0];
    expect(all(empty, (e) => hasClass(e, 'slab'))[0].children.filter((c) => c.name === 'rect')).toHaveLength(1);
  });

  it('has a legend entry for each slab class present and for large, huge and free', () => {
    const dump = realistic().dump();
    const root = parseXml(renderMap(dump));
    const items = all(root, (e) => hasClass(e, 'legend-item'));
    const classes = [...new Set(dump.chunks.flatMap((c) => c.runs.flatMap((r) => (r.kind === 'slab' ? [r.classSize] : []))))]
      .sort((a, b) => a - b);
    expect(classes.length).toBeGreaterThan(5);
    expect(items.filter((e) => e.attrs['data-class']).map((e) => Number(e.attrs['data-class']))).toEqual(classes);
    expect(items.filter((e) => e.attrs['data-kind']).map((e) => e.attrs['data-kind'])).toEqual(['large', 'huge', 'free']);
    for (const item of items.filter((e) => e.attrs['data-class'])) {
      expect(textOf(item)).toBe(formatBytes(Number(item.attrs['data-class'])));
    }
    // Each class's legend colour is the colour of its runs.
    const solid = (g: Element): string | undefined => g.children.filter((c) => c.name === 'rect').at(-1)?.attrs.fill;
    for (const item of items.filter((e) => e.attrs['data-class'])) {
      const run = all(root, (e) => hasClass(e, 'slab') && e.attrs['data-class'] === item.attrs['data-class'])[0];
      expect(run.children.find((c) => c.name === 'rect')?.attrs.fill).toBe(solid(item));
    }
  });

  it('leaves out legend entries for kinds not present', () => {
    const pool = make({ name: 'small' });
    hold(pool.alloc(100));
    const items = all(parseXml(renderMap(pool.dump())), (e) => hasClass(e, 'legend-item'));
    expect(items.map((e) => e.attrs['data-class'] ?? e.attrs['data-kind'])).toEqual(['112', 'free']);
  });

  it('draws a bar per huge mapping, labelled with its size', () => {
    const dump = realistic().dump();
    expect(dump.huge).toHaveLength(2);
    const root = parseXml(renderMap(dump));
    const bars = all(root, (e) => hasClass(e, 'huge'));
    expect(bars.map((b) => Number(b.attrs['data-id']))).toEqual(dump.huge.map((h) => h.id).sort((a, b) => a - b));
    const [big, small] = [...dump.huge].sort((a, b) => a.id - b.id);
    expect(textOf(bars[0])).toContain(formatBytes(big.size));
    expect(textOf(bars[1])).toContain(`${formatBytes(small.size)} (${formatBytes(small.mappedBytes)} mapped)`);
    const w = (b: Element): number => Number(b.children.find((c) => c.name === 'rect')?.attrs.width);
    expect(w(bars[1]) / w(bars[0])).toBeCloseTo(small.mappedBytes / big.mappedBytes, 2);
  });

  it('puts the pool name, backing and totals in the title', () => {
    const pool = realistic();
    const root = parseXml(renderMap(pool.dump()));
    const s = pool.stats();
    const head = root.children.filter((c) => c.name === 'text').slice(0, 3).map(textOf).join(' ');
    expect(head).toContain('Pool "map"');
    expect(head).toContain(`${s.backing} memory`);  // the default: anonymous, file on Windows
    expect(head).toContain(`${formatBytes(s.mappedBytes)} mapped`);
    expect(head).toContain(`${formatBytes(s.usedBytes)} used by ${s.liveAllocations} live allocations`);
    expect(renderMap(pool.dump(), { title: 'Cache at noon' })).toContain('>Cache at noon</text>');
  });

  it('gives the same SVG for the same dump, whatever the order of its arrays', () => {
    const dump = realistic().dump();
    const svg = renderMap(dump);
    expect(renderMap(structuredClone(dump))).toBe(svg);
    const shuffled = structuredClone(dump);
    shuffled.chunks.reverse();
    shuffled.huge.reverse();
    for (const c of shuffled.chunks) c.runs.reverse();
    expect(renderMap(shuffled)).toBe(svg);
  });

  it('escapes names and titles, and replaces characters XML cannot carry', () => {
    const pool = make({ name: `<&"'>\u0001 \ud800 ok` });
    hold(pool.alloc(10));
    const root = parseXml(renderMap(pool.dump()));
    expect(textOf(root.children.find((c) => c.name === 'title') as Element)).toBe(`Pool "<&"'>\ufffd \ufffd ok": memory map`);
    const t = parseXml(renderMap(pool.dump(), { title: 'a < b && c' }));
    expect(t.children.filter((c) => c.name === 'text')[0].text).toBe('a < b && c');
  });

  it('draws an empty or closed pool', () => {
    const pool = make({ name: 'empty' });
    const svg = renderMap(pool.dump());
    expect(textOf(parseXml(svg))).toContain('Nothing is mapped.');
    hold(pool.alloc(1));
    pool.close();
    const closed = parseXml(renderMap(pool.dump()));
    expect(textOf(closed)).toContain('(closed)');
  });

  it('takes a width', () => {
    const dump = realistic().dump();
    const root = parseXml(renderMap(dump, { width: 480 }));
    expect(root.attrs.viewBox).toMatch(/^0 0 480 \d+$/);
    expect(Math.max(...all(root, (e) => e.name === 'rect').map((r) => Number(r.attrs.x ?? 0) + Number(r.attrs.width ?? 0))))
      .toBeLessThanOrEqual(480);
  });

  it('checks its arguments', () => {
    const dump = synthetic();
    expect(() => renderMap({} as PoolDump)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => renderMap(dump, { width: 100 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }));
    expect(() => renderMap(dump, { width: '900' as unknown as number })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => renderMap(dump, { title: 3 as unknown as string })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('parses as XML only when well-formed (the checker itself)', () => {
    expect(() => parseXml('<a><b></a>')).toThrow(/closes/);
    expect(() => parseXml('<a x="1" x="2"/>')).toThrow(/duplicate/);
    expect(() => parseXml('<a>&nbsp;</a>')).toThrow(/entity/);
    expect(() => parseXml('<a>a & b</a>')).toThrow(/bare/);
    expect(() => parseXml('<a/><b/>')).toThrow(/after the root/);
    expect(() => parseXml('<a x=1/>')).toThrow(/unquoted/);
    expect(parseXml('<?xml version="1.0" encoding="UTF-8"?>\n<a k="&lt;&#x41;">t<!-- c --><b/></a>\n').attrs.k).toBe('<A');
  });
});
