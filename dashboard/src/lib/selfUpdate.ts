//! The distribution's self-update in one line a person reads: up to date, updating,
//! checking a swapped-in version, or refusing one that failed; and how the last one ended.

/** The parts of `status.selfUpdate` read here. */
export interface SelfUpdateInput {
  programVersion: string;
  runningVersion?: string | null;
  desiredVersion?: string | null;
  pendingVersion?: string | null;
  refusedVersion?: string | null;
  last?: { outcome: string } | null;
}

/** Where the self-update stands, with the colour the page gives it. */
export interface SelfUpdateState {
  label: string;
  color: string;
}

/** Where the distribution's self-update stands. */
export function selfUpdateState(s: SelfUpdateInput): SelfUpdateState {
  if (s.pendingVersion) return { label: `checking ${s.pendingVersion}: swapped in, not confirmed healthy yet`, color: 'blue' };
  if (!s.desiredVersion) return { label: 'off: no client version of the service distribution is desired', color: 'gray' };
  if (s.desiredVersion === s.runningVersion) return { label: `up to date: runs ${s.desiredVersion}`, color: 'teal' };
  if (s.desiredVersion === s.refusedVersion) return { label: `${s.desiredVersion} failed; not tried again while it stays desired`, color: 'red' };
  return { label: `updating to ${s.desiredVersion}`, color: 'blue' };
}

/** The colour of a last outcome: green when it succeeded, red otherwise. */
export function outcomeColor(outcome: string): string {
  return outcome === 'SUCCEEDED' ? 'teal' : 'red';
}
