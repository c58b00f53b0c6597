/** One row of the benchmark table, and how the table is printed and saved. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { round, type Summary } from './stats.js';

export interface Row {
  scenario: string;
  unit: string;
  muse?: Summary;
  baseline?: Summary;
  /** What the baseline is (bare BullMQ, bare JetStream, …). */
  baselineLabel: string;
  /** muse / baseline (higher is worse for times and sizes, better for rates). */
  ratio?: number;
  target: string;
  met?: boolean;
  /** Secondary figures (p99 beside a p50, …). */
  extra?: Record<string, number>;
  /** Figures saved in the JSON but not printed (a breakdown by service, …). */
  detail?: Record<string, number>;
  /** Why a row has no figure (a feature the build does not have yet, an error). */
  note?: string;
}

/** Two decimals, or three significant digits for ratios under 0.01 (so 0.0017 does not print as 0). */
const fmtRatio = (r: number) => (r !== 0 && Math.abs(r) < 0.01 ? Number(r.toPrecision(3)) : round(r));

const fmt = (s?: Summary) => (s ? `${round(s.median)} (${round(s.min)}–${round(s.max)})` : '—');

export function printTable(rows: Row[], out: (line: string) => void = console.log): void {
  const header = ['scenario', 'unit', 'muse median (min–max)', 'baseline median (min–max)', 'ratio', 'target', 'met?'];
  const lines = rows.map((r) => [
    r.scenario,
    r.unit,
    fmt(r.muse) + (r.extra ? ` ${Object.entries(r.extra).map(([k, v]) => `${k}=${round(v)}`).join(' ')}` : ''),
    `${fmt(r.baseline)} ${r.baselineLabel}`,
    r.ratio === undefined ? '—' : `${fmtRatio(r.ratio)}x`,
    r.target,
    r.met === undefined ? (r.note ? `n/a: ${r.note.slice(0, 60)}` : '—') : r.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  out(row(header));
  out(`| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`);
  for (const l of lines) out(row(l));
}

export function saveJson(file: string, meta: Record<string, unknown>, rows: Row[]): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({ ...meta, rows }, null, 2) + '\n');
}
