//! Where a host's state commit stands against the followed branch, and known-bad
//! versions looked up by service and version: small rules the pages share.

/** Where a reported state commit stands: the branch tip, the commit in force (an
 * invalid tip after it), an older commit, or not reported. */
export type CommitPlace = 'tip' | 'in-force' | 'older' | 'unknown';

/** Where `stateCommit` stands against the branch's `tip` and the commit in force. */
export function commitPlace(stateCommit: string | null | undefined, repo: { tip?: string | null; commit?: string | null }): CommitPlace {
  if (!stateCommit) return 'unknown';
  if (stateCommit === repo.tip) return 'tip';
  if (stateCommit === repo.commit) return 'in-force';
  return 'older';
}

/** Words for a place, as the pages show it. */
export const PLACE_LABEL: Record<CommitPlace, string> = {
  tip: 'on the tip',
  'in-force': 'in force (the tip is invalid)',
  older: 'not on the tip',
  unknown: 'not reported',
};

/** Known-bad versions by `service` and `version`. */
export function knownBadIndex<T extends { service: string; version: string }>(list: readonly T[]): (service: string, version: string | null | undefined) => T | undefined {
  const by = new Map(list.map((bad) => [`${bad.service}\u0000${bad.version}`, bad]));
  return (service, version) => (version ? by.get(`${service}\u0000${version}`) : undefined);
}
