//! Instances' labels (`labels` in updater.yaml, which rollout waves select by): as text,
//! and the Hosts page's label filter (`ring=canary`, or `ring` for any value).

/** One label (the GraphQL `Label`). */
export interface Label {
  name: string;
  value: string;
}

/** A label as people write it in a filter: `ring=canary`. */
export function labelText(label: Label): string {
  return `${label.name}=${label.value}`;
}

/** A label filter: a name, and a value unless any value will do. */
export interface LabelFilter {
  name: string;
  value: string | null;
}

/** `ring=canary` or `ring` (any value); null for an empty filter. Spaces around are ignored. */
export function parseLabelFilter(text: string | null | undefined): LabelFilter | null {
  const trimmed = (text ?? '').trim();
  if (!trimmed) return null;
  const eq = trimmed.indexOf('=');
  if (eq < 0) return { name: trimmed, value: null };
  return { name: trimmed.slice(0, eq).trim(), value: trimmed.slice(eq + 1).trim() };
}

/** Whether `labels` pass `filter` (no filter: all do). */
export function matchesLabel(labels: readonly Label[], filter: LabelFilter | null): boolean {
  if (!filter) return true;
  return labels.some((l) => l.name === filter.name && (filter.value === null || l.value === filter.value));
}

/** Each instance's labels, from status's instances of every service (one updater sends
 * the same labels for all its services; the first seen counts). */
export function labelsByInstance(services: readonly { instances: readonly { instance: string; labels: readonly Label[] }[] }[]): Map<string, readonly Label[]> {
  const by = new Map<string, readonly Label[]>();
  for (const service of services) for (const i of service.instances) if (!by.has(i.instance)) by.set(i.instance, i.labels);
  return by;
}

/** Every label seen, sorted, as filter text (`ring=canary`), for the filter's choices. */
export function labelChoices(by: ReadonlyMap<string, readonly Label[]>): string[] {
  const all = new Set<string>();
  for (const labels of by.values()) for (const l of labels) all.add(labelText(l));
  return [...all].sort();
}
