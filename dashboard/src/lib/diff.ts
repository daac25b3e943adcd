//! What an edit of a desired list will change, as the lines of the YAML diff the commit
//! will show (`git log -p`), computed from the list as loaded and the user's changes.

/** A service and its version. */
export interface Entry {
  service: string;
  version: string;
}

/** One change: a new version, or null to remove the service. */
export interface Change {
  service: string;
  version: string | null;
}

/** One line of a diff: removed, added or context (` `, unchanged, says where the others are). */
export interface DiffLine {
  kind: '-' | '+' | ' ';
  text: string;
}

/** A file's changed lines. */
export interface FileDiff {
  file: string;
  lines: DiffLine[];
}

/** The changes that really change something (a version set to what it is is dropped). */
export function effective(current: Entry[], changes: Change[]): Change[] {
  const now = new Map(current.map((e) => [e.service, e.version]));
  const last = new Map<string, string | null>();
  for (const change of changes) last.set(change.service, change.version);
  return [...last]
    .filter(([service, version]) => (version === null ? now.has(service) : now.get(service) !== version))
    .map(([service, version]) => ({ service, version }))
    .sort((a, b) => a.service.localeCompare(b.service));
}

/** The diff of `file` (a `versions:` map) for `changes` over `current`. */
export function desiredDiff(file: string, current: Entry[], changes: Change[]): FileDiff {
  const now = new Map(current.map((e) => [e.service, e.version]));
  const lines: DiffLine[] = [];
  for (const { service, version } of effective(current, changes)) {
    const old = now.get(service);
    if (old !== undefined) lines.push({ kind: '-', text: `  ${service}: ${old}` });
    if (version !== null) lines.push({ kind: '+', text: `  ${service}: ${version}` });
  }
  return { file, lines };
}

/** Per service, what changed from `before` to `after` (for history rows). */
export function listChanges(before: Entry[], after: Entry[]): { service: string; from: string | null; to: string | null }[] {
  const old = new Map(before.map((e) => [e.service, e.version]));
  const fresh = new Map(after.map((e) => [e.service, e.version]));
  const services = [...new Set([...old.keys(), ...fresh.keys()])].sort();
  return services
    .map((service) => ({ service, from: old.get(service) ?? null, to: fresh.get(service) ?? null }))
    .filter((c) => c.from !== c.to);
}
