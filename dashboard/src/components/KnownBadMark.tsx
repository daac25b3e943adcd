//! The mark on a known-bad version wherever a version is shown (its hint says why), and a
//! marker that finds the versions of a list to mark.
import { Badge } from '@mantine/core';
import { knownBadIndex } from '../lib/commits';

/** What a mark needs of a known-bad version. */
interface Known {
  service: string;
  version: string;
  reason: string;
  instances: string[];
}

/** Why a version is known-bad, in one line (a mark's hint). */
export function knownBadHint(bad: Pick<Known, 'reason' | 'instances'>): string {
  return `known-bad: ${bad.reason} (rolled back on ${bad.instances.join(', ')})`;
}

/** The mark on a known-bad version where a version is shown; its hint (`why`) says why. */
export function KnownBadMark({ why }: { why: string }) {
  return (
    // Never shrunk to an ellipsis: the mark is what must be seen.
    <Badge size="sm" color="red" variant="filled" tt="none" data-testid="known-bad" title={why} aria-label={why} style={{ flexShrink: 0, overflow: 'visible' }}>
      known-bad
    </Badge>
  );
}

/** A function that gives the mark of `version` of `service` when it is in `list`, else nothing. */
export function markerOf(list: readonly Known[]) {
  const find = knownBadIndex(list);
  return (service: string, version: string | null | undefined) => {
    const bad = find(service, version);
    return bad ? <KnownBadMark why={knownBadHint(bad)} /> : null;
  };
}

