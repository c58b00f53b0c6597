/** What the README documents, read from the README itself, so tests can hold code and docs to each other. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '@muse/cluster';

export interface DocumentedMetric {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  labels: string[];
  service: string;
}

function readme(): string {
  return readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
}

function tableRows(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
}

/** The metrics table between `<!-- metrics:start -->` and `<!-- metrics:end -->`. */
export function documentedMetrics(): DocumentedMetric[] {
  const text = readme();
  const start = text.indexOf('<!-- metrics:start -->');
  const end = text.indexOf('<!-- metrics:end -->');
  if (start < 0 || end < start) throw new Error('README.md has no metrics table between the markers');
  return tableRows(text.slice(start, end)).map(([name, type, labels, service]) => ({
    name: name!.replace(/`/g, ''),
    type: type as DocumentedMetric['type'],
    labels: (labels ?? '').split(',').map((l) => l.replace(/`/g, '').trim()).filter(Boolean),
    service: service!,
  }));
}

/** Variable names in the README's configuration table. */
export function documentedConfigVars(): string[] {
  const text = readme();
  const start = text.indexOf('## Configuration');
  const end = text.indexOf('\n## ', start + 1);
  return tableRows(text.slice(start, end)).map((r) => r[0]!.replace(/`/g, ''));
}
