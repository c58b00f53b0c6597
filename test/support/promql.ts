/**
 * Reading metric names out of PromQL, for the checks that hold Grafana
 * dashboards to what the services export (test/compose.test.ts against the
 * README table, test/e2e/dashboards.test.ts against live /metrics).
 *
 * Not a PromQL parser: it removes everything that is not a metric name —
 * strings, label matchers, range and subquery selectors, `offset`/`@`
 * modifiers, label lists of `by`/`without`/`on`/`ignoring`/`group_*`,
 * Grafana variables, numbers and durations, keywords — and what remains
 * before no `(` is a metric name (a name followed by `(` is a function or an
 * aggregation).
 */

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless', 'inf', 'nan', 'atan2']);

export function promqlMetricNames(expr: string): string[] {
  let s = expr;
  s = s.replace(/#[^\n]*/g, ' '); // comments
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""'); // strings (before braces: a matcher value may hold `}`)
  s = s.replace(/\{[^}]*\}/g, ' '); // label matchers
  s = s.replace(/\[[^\]]*\]/g, ' '); // [5m], [5m:1m], [$__rate_interval], Grafana's [[var]]
  s = s.replace(/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*/g, ' 1 '); // Grafana variables ($__interval, ${role})
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' '); // label lists
  s = s.replace(/\boffset\s+-?[0-9a-z.]+/gi, ' '); // offset 5m
  s = s.replace(/@\s*(start\s*\(\s*\)|end\s*\(\s*\)|[0-9.]+)/gi, ' '); // @ modifier
  s = s.replace(/\b(?:0x[0-9a-f]+|[0-9][0-9.]*(?:e[+-]?[0-9]+)?(?:ms|s|m|h|d|w|y)?)\b/gi, ' '); // numbers and durations
  const names = new Set<string>();
  for (const m of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = m[0];
    if (/^\s*\(/.test(s.slice(m.index + word.length))) continue; // function or aggregation
    if (KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names];
}

/** Every `expr` string anywhere in a dashboard document (panels, rows, nested panels, templating queries with `expr`). */
export function dashboardExprs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) {
    for (const n of node) dashboardExprs(n, out);
  } else if (typeof node === 'object' && node !== null) {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'expr' && typeof v === 'string') out.push(v);
      else dashboardExprs(v, out);
    }
  }
  return out;
}

/**
 * Metric names and types in a Prometheus text exposition (`# TYPE` lines and
 * sample lines). A histogram or summary also gives its `_bucket`, `_sum`,
 * `_count` (and `_created`) series.
 */
export function exposedMetricNames(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE ([A-Za-z_:][A-Za-z0-9_:]*) (\w+)/.exec(line);
    if (type) {
      out.set(type[1]!, type[2]!);
      if (type[2] === 'histogram' || type[2] === 'summary') {
        for (const suffix of ['_bucket', '_sum', '_count', '_created']) out.set(`${type[1]}${suffix}`, `${type[2]}${suffix}`);
      }
      continue;
    }
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]/.exec(line);
    if (sample && !out.has(sample[1]!)) out.set(sample[1]!, 'untyped');
  }
  return out;
}
