//! A plan (`plan(base, head)`: what merging a change would do) in sentences a person
//! reads before merging: per service the version changes, where images come from, the
//! instances that would update, the rollout waves a new client version starts with, and
//! the warnings (known-bad versions desired again, validation problems) apart so they
//! cannot be missed.
import type { PlanImage } from '../gql/graphql';

/** The parts of a plan this module reads (a subset of the GraphQL `Plan`). */
export interface PlanInput {
  valid: boolean;
  problems: PlanProblemInput[];
  baseProblems: PlanProblemInput[];
  commonSettingsChanged: boolean;
  profiles: { profile: string; added: string[]; removed: string[] }[];
  unknown: string[];
  services: {
    service: string;
    change: 'ADDED' | 'CHANGED' | 'REMOVED' | 'RENAMED';
    renamedFrom?: string | null;
    developer?: { from?: string | null; to?: string | null } | null;
    client?: { from?: string | null; to?: string | null } | null;
    developerImage?: PlanImage | null;
    clientImage?: PlanImage | null;
    consumers: string[];
    instances: { role?: string | null; instances: string[] }[];
    knownBad: { version: string; reason: string }[];
    profilesJoined: string[];
    profilesLeft: string[];
    settingsChanged: boolean;
    /** The waves its new client version goes to, in order (empty: all at once). */
    waves?: string[];
  }[];
}

interface PlanProblemInput {
  path: string;
  line?: number | null;
  column?: number | null;
  message: string;
}

/** One service's part of the plan. */
export interface ServiceLines {
  service: string;
  /** `added`, `removed`, `renamed from x`, or null for a change in place. */
  change: string | null;
  lines: string[];
  /** Whether a build is needed for it. */
  builds: boolean;
  /** How many instances would update. */
  updates: number;
}

/** A plan as lines to show. */
export interface PlanSummary {
  valid: boolean;
  /** Validation problems of HEAD, `file:line:column: message`. */
  problems: string[];
  /** Known-bad versions desired again, and problems of BASE. */
  warnings: string[];
  /** Changes beyond the services (common settings, profiles) and what could not be known. */
  notes: string[];
  services: ServiceLines[];
  /** One line: how many services change, builds, instances. */
  headline: string;
}

const IMAGE: Record<PlanImage, string> = {
  PRESENT: 'image present',
  BUILD: 'needs a build',
  DOWNLOAD: 'downloaded from its provider',
  UNKNOWN: 'image not known',
};

/** `path:line:column: message`, leaving out what is not known. */
export function problemLine(p: PlanProblemInput): string {
  return `${p.path}${p.line != null ? `:${p.line}` : ''}${p.column != null ? `:${p.column}` : ''}: ${p.message}`;
}

function versionLine(kind: string, change: { from?: string | null; to?: string | null }, image: PlanImage | null | undefined): string {
  const to = change.to ?? 'none';
  const from = change.from ?? 'none';
  return `${kind} ${from} → ${to}${change.to && image ? ` (${IMAGE[image]})` : ''}`;
}

/** How many instances a plan line names; a fleet of thousands gets a count for the rest. */
const NAMED_INSTANCES = 10;

/** `vm-1, vm-2` in no role, `vm-3 (blue)`: the instances that would update, the first ten
 * named and the rest counted. */
export function instancesLine(groups: { role?: string | null; instances: string[] }[]): string {
  const all = groups.flatMap((g) => (g.role ? g.instances.map((i) => `${i} (${g.role})`) : g.instances));
  const named = all.slice(0, NAMED_INSTANCES).join(', ');
  return all.length > NAMED_INSTANCES ? `${named} and ${all.length - NAMED_INSTANCES} more` : named;
}

/** `rolls out by waves: starts with canary, then europe, everyone`. */
export function wavesLine(waves: readonly string[]): string {
  const [first, ...rest] = waves;
  return `rolls out by waves: starts with ${first}${rest.length ? `, then ${rest.join(', ')}` : ''}`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The plan in lines, warnings first. */
export function summarize(plan: PlanInput): PlanSummary {
  const problems = plan.problems.map(problemLine);
  const warnings: string[] = [];
  for (const s of plan.services) for (const bad of s.knownBad) warnings.push(`${s.service} ${bad.version} is known-bad and desired again: ${bad.reason}`);
  for (const p of plan.baseProblems) warnings.push(`the base is invalid (taken as empty): ${problemLine(p)}`);
  const notes: string[] = [];
  if (plan.commonSettingsChanged) notes.push('common.yaml changes: every service’s build settings');
  for (const p of plan.profiles) {
    if (p.added.length) notes.push(`profile ${p.profile} gains ${p.added.join(', ')}`);
    if (p.removed.length) notes.push(`profile ${p.profile} loses ${p.removed.join(', ')}`);
  }
  notes.push(...plan.unknown.map((u) => `not known: ${u}`));

  const services = plan.services.map((s): ServiceLines => {
    const lines: string[] = [];
    if (s.developer) lines.push(versionLine('developer', s.developer, s.developerImage));
    if (s.client) lines.push(versionLine('client', s.client, s.clientImage));
    if (s.waves?.length) lines.push(wavesLine(s.waves));
    if (s.settingsChanged) lines.push('build settings change');
    const updates = s.instances.reduce((n, g) => n + g.instances.length, 0);
    if (updates) lines.push(`${plural(updates, 'instance')} would update: ${instancesLine(s.instances)}`);
    if (s.consumers.length) lines.push(`consumers receive it: ${s.consumers.join(', ')}`);
    if (s.profilesJoined.length) lines.push(`joins ${s.profilesJoined.join(', ')}`);
    if (s.profilesLeft.length) lines.push(`leaves ${s.profilesLeft.join(', ')}`);
    const change = s.change === 'ADDED' ? 'added' : s.change === 'REMOVED' ? 'removed' : s.change === 'RENAMED' ? `renamed from ${s.renamedFrom ?? '?'}` : null;
    return { service: s.service, change, lines, builds: s.developerImage === 'BUILD' || s.clientImage === 'BUILD', updates };
  });

  const builds = services.filter((s) => s.builds).length;
  const updates = services.reduce((n, s) => n + s.updates, 0);
  const headline = plan.valid
    ? services.length
      ? `${plural(services.length, 'service')} change; ${plural(builds, 'build')} needed; ${plural(updates, 'instance update', 'instance updates')}`
      : 'No service changes'
    : `Invalid: ${plural(problems.length, 'problem')}; merging it changes nothing until fixed`;
  return { valid: plan.valid, problems, warnings, notes, services, headline };
}
