// bench/ratios.svg: one bar per speed case, ratio = Buffer time / pool time
// on a log axis, drawn from the 1x line (right: the pool is faster; left:
// slower), with each case's goal marked and, as a hollow dot, the ratio of
// means (garbage-collector pauses included, see harness.ts). Plain SVG 1.1 with no scripts or
// external references, so GitHub and rsvg-convert both render it.
import { esc } from '../lib/observe/render-map.js';

export interface ChartRow {
  label: string;
  ratio: number;
  goal: number;
  /** Ratio of per-round means; drawn as a dot when given. */
  meanRatio?: number;
}

export interface ChartOptions {
  title: string;
  subtitle: string;
  /** The caption under the axis; says what a ratio is. */
  axis?: string;
}

const W = 900;
const LABEL_W = 290;
const PLOT_X0 = LABEL_W + 20;
const PLOT_X1 = W - 40;
const TOP = 92;
const ROW_H = 44;
const BAR_H = 18;
const MET = '#2e7d32';
const NOT_MET = '#d84315';
const INK = '#222';
const GRID = '#d0d0d0';
const FONT = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\"";


/** 1-2-5 steps: ..., 0.1, 0.2, 0.5, 1, 2, 5, 10, ... */
function steps(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)) - 1; e <= Math.ceil(Math.log10(hi)) + 1; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(Number(v.toPrecision(3)));
    }
  }
  return out;
}

/** Tick and goal values: 0.05x, 0.9x, 1x, 10x. */
function shortText(v: number): string {
  return `${Number(v.toPrecision(2))}x`;
}

function ratioText(r: number): string {
  if (!Number.isFinite(r)) return '?';
  if (r >= 10) return `${r.toFixed(0)}x`;
  if (r >= 1) return `${r.toFixed(1)}x`;
  return `${r.toPrecision(2)}x`;
}

export function renderRatios(rows: ChartRow[], o: ChartOptions): string {
  const values = rows.flatMap((r) => [r.ratio, r.goal, r.meanRatio ?? 1]).filter((v) => Number.isFinite(v) && v > 0);
  const all125 = steps(1e-4, 1e4);
  const lo = [...all125].reverse().find((v) => v <= Math.min(1, ...values) / 1.6) ?? 1e-4;
  const hi = all125.find((v) => v >= Math.max(1, ...values) * 1.6) ?? 1e4;
  const x = (v: number): number =>
    PLOT_X0 + ((Math.log10(Math.min(Math.max(v, lo), hi)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (PLOT_X1 - PLOT_X0);
  const plotBottom = TOP + rows.length * ROW_H;
  const H = plotBottom + 112;
  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT} font-size="13">`);
  out.push(`<title>${esc(o.title)}</title>`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="20" y="30" font-size="18" font-weight="bold" fill="${INK}">${esc(o.title)}</text>`);
  out.push(`<text x="20" y="52" font-size="12" fill="#555">${esc(o.subtitle)}</text>`);

  // Grid and axis labels.
  for (const v of steps(lo, hi)) {
    const major = Number.isInteger(Math.log10(v));
    out.push(`<line x1="${x(v).toFixed(1)}" y1="${TOP - 6}" x2="${x(v).toFixed(1)}" y2="${plotBottom}" stroke="${GRID}" stroke-width="${major ? 1 : 0.6}"${major ? '' : ' stroke-dasharray="2,3"'}/>`);
    out.push(`<text x="${x(v).toFixed(1)}" y="${plotBottom + 18}" text-anchor="middle" font-size="12" fill="#444">${esc(shortText(v))}</text>`);
  }
  // Parity.
  out.push(`<line x1="${x(1)}" y1="${TOP - 10}" x2="${x(1)}" y2="${plotBottom + 4}" stroke="#777" stroke-width="1.5"/>`);
  out.push(`<text x="${x(1) - 6}" y="${TOP - 14}" text-anchor="end" font-size="11" fill="#666">◀ pool slower</text>`);
  out.push(`<text x="${x(1) + 6}" y="${TOP - 14}" font-size="11" fill="#666">pool faster ▶</text>`);

  rows.forEach((r, i) => {
    const yMid = TOP + i * ROW_H + ROW_H / 2;
    const met = r.ratio >= r.goal;
    const color = met ? MET : NOT_MET;
    if (i % 2 === 1) out.push(`<rect x="10" y="${TOP + i * ROW_H}" width="${W - 20}" height="${ROW_H}" fill="#000" fill-opacity="0.035"/>`);
    out.push(`<text x="${LABEL_W}" y="${yMid + 4.5}" text-anchor="end" fill="${INK}">${esc(r.label)}</text>`);
    if (Number.isFinite(r.ratio) && r.ratio > 0) {
      const a = Math.min(x(1), x(r.ratio));
      const b = Math.max(x(1), x(r.ratio));
      out.push(`<rect x="${a.toFixed(1)}" y="${yMid - BAR_H / 2}" width="${Math.max(1, b - a).toFixed(1)}" height="${BAR_H}" fill="${color}"/>`);
      // The value outside the bar's end, or inside it in white where the
      // outside would run into the row label.
      const right = r.ratio >= 1;
      const text = ratioText(r.ratio);
      const roomLeft = a - PLOT_X0 >= 8 + 8.5 * text.length;
      const inside = !right && !roomLeft;
      const tx = right ? b + 6 : inside ? a + 6 : a - 6;
      out.push(`<text x="${tx.toFixed(1)}" y="${yMid + 4.5}" text-anchor="${right || inside ? 'start' : 'end'}" font-weight="bold" fill="${inside ? '#fff' : color}">${esc(text)}</text>`);
    }
    if (r.meanRatio !== undefined && Number.isFinite(r.meanRatio) && r.meanRatio > 0) {
      out.push(`<circle cx="${x(r.meanRatio).toFixed(1)}" cy="${yMid + BAR_H / 2 + 6}" r="4" fill="#fff" stroke="${INK}" stroke-width="1.5"/>`);
    }
    // The goal: a bracket across the row, its value just above the bar.
    const gx = x(r.goal).toFixed(1);
    out.push(`<line x1="${gx}" y1="${yMid - ROW_H / 2 + 5}" x2="${gx}" y2="${yMid + ROW_H / 2 - 5}" stroke="${INK}" stroke-width="2.5"/>`);
    out.push(`<path d="M ${Number(gx) - 5} ${yMid - ROW_H / 2 + 3} h 10 l -5 6 z" fill="${INK}"/>`);
    out.push(`<text x="${Number(gx) + 5}" y="${yMid - ROW_H / 2 + 11}" font-size="10" fill="${INK}">goal ${esc(shortText(r.goal))}</text>`);
  });

  // Axis caption and legend.
  const axis = o.axis ?? 'Buffer time / pool time, log scale (medians of interleaved rounds in one process)';
  out.push(`<text x="${(PLOT_X0 + PLOT_X1) / 2}" y="${plotBottom + 40}" text-anchor="middle" font-size="12" fill="#333">${esc(axis)}</text>`);
  const ly = plotBottom + 72;
  const lx = 40;
  out.push(`<rect x="${lx}" y="${ly - 11}" width="14" height="14" fill="${MET}"/>`);
  out.push(`<text x="${lx + 20}" y="${ly}" fill="${INK}">goal met</text>`);
  out.push(`<rect x="${lx + 110}" y="${ly - 11}" width="14" height="14" fill="${NOT_MET}"/>`);
  out.push(`<text x="${lx + 130}" y="${ly}" fill="${INK}">goal not met</text>`);
  out.push(`<line x1="${lx + 252}" y1="${ly - 13}" x2="${lx + 252}" y2="${ly + 4}" stroke="${INK}" stroke-width="2.5"/>`);
  out.push(`<path d="M ${lx + 247} ${ly - 15} h 10 l -5 6 z" fill="${INK}"/>`);
  out.push(`<text x="${lx + 262}" y="${ly}" fill="${INK}">goal (minimum ratio)</text>`);
  if (rows.some((r) => r.meanRatio !== undefined)) {
    out.push(`<circle cx="${lx + 422}" cy="${ly - 4}" r="4" fill="#fff" stroke="${INK}" stroke-width="1.5"/>`);
    out.push(`<text x="${lx + 432}" y="${ly}" fill="${INK}">ratio of means (GC pauses included)</text>`);
  }
  out.push(`</svg>`);
  return `${out.join('\n')}\n`;
}
