/**
 * The value of one sample in Prometheus text: `name` with exactly `labels` (in any order), or
 * undefined when there is no such sample.
 */
export function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([\w:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = new Map<string, string>();
    for (const m of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      found.set(m[1] ?? '', m[2] ?? '');
    }
    const wanted = Object.entries(labels);
    if (wanted.length !== found.size) continue;
    if (wanted.every(([key, value]) => found.get(key) === value)) return Number(match[3]);
  }
  return undefined;
}
