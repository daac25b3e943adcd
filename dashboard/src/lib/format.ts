//! Small display helpers shared by the pages.

/** A commit id as people read it. */
export function short(commit: string | null | undefined): string {
  return commit ? commit.slice(0, 10) : '—';
}

/** A time in the browser's zone, to the second. */
export function time(value: string | null | undefined): string {
  if (!value) return '—';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString(undefined, { hour12: false });
}

/** How long ago, roughly (`5 s`, `3 min`, `2 h`, `4 d`). */
export function ago(value: string | null | undefined, now = Date.now()): string {
  if (!value) return '—';
  const seconds = Math.max(0, Math.round((now - new Date(value).getTime()) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** A service as run (`name-role`) split into its name and role, by the dash rule (names have no dash). */
export function splitRole(service: string): { name: string; role: string | null } {
  const dash = service.indexOf('-');
  return dash < 0 ? { name: service, role: null } : { name: service.slice(0, dash), role: service.slice(dash + 1) };
}
