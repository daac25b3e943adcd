//! The mesh as the dashboard edits and shows it: an entry of `providers.yaml` or
//! `consumers.yaml` as the YAML lines its commit writes (so the review diff shows only
//! the fields that change), and the one-word state of a provider from the `providers` query.
import type { DiffLine } from './diff';

/** What happens when a provider offers other versions, as the API names it. */
export type AutoUpdate = 'COMMIT' | 'PULL_REQUEST' | 'OFF';

/** An entry of `providers.yaml`, as `setProvider` takes it. */
export interface ProviderEntry {
  provider: string;
  url: string;
  accessTokenSecret: string;
  autoUpdate: AutoUpdate;
  testConsumer: string | null;
  uploadState: boolean;
  pinnedPublicKey: string | null;
}

/** An entry of `consumers.yaml`, as `setConsumer` takes it. */
export interface ConsumerEntry {
  consumer: string;
  profile: string;
  url: string | null;
  testConsumer: string | null;
}

const AUTO_UPDATE_YAML: Record<AutoUpdate, string> = { COMMIT: 'commit', PULL_REQUEST: 'pullRequest', OFF: 'off' };

/** `autoUpdate` as `providers.yaml` writes it. */
export function autoUpdateYaml(mode: AutoUpdate): string {
  return AUTO_UPDATE_YAML[mode];
}

const SPECIAL = new Set(['true', 'false', 'yes', 'no', 'on', 'off', 'y', 'n', 'null', 'nan', 'inf']);

/**
 * A scalar as the server's YAML editor writes it (crates/state/src/yaml/render.rs): plain
 * when a letter first, then letters, digits and `-_./`, and no special word; otherwise
 * double-quoted.
 */
export function yamlScalar(text: string): string {
  return /^[A-Za-z][A-Za-z0-9\-_./]*$/.test(text) && !SPECIAL.has(text.toLowerCase()) ? text : JSON.stringify(text);
}

/** A provider's lines in `providers.yaml` (the defaults, `off` and `false`, left out as the server writes them). */
export function providerLines(entry: ProviderEntry): string[] {
  return [
    `  ${entry.provider}:`,
    `    url: ${yamlScalar(entry.url)}`,
    `    accessTokenSecret: ${yamlScalar(entry.accessTokenSecret)}`,
    ...(entry.testConsumer ? [`    testConsumer: ${yamlScalar(entry.testConsumer)}`] : []),
    ...(entry.uploadState ? ['    uploadState: true'] : []),
    ...(entry.autoUpdate !== 'OFF' ? [`    autoUpdate: ${autoUpdateYaml(entry.autoUpdate)}`] : []),
    ...(entry.pinnedPublicKey ? [`    pinnedPublicKey: ${yamlScalar(entry.pinnedPublicKey)}`] : []),
  ];
}

/** A consumer's lines in `consumers.yaml`. */
export function consumerLines(entry: ConsumerEntry): string[] {
  return [
    `  ${entry.consumer}:`,
    `    profile: ${yamlScalar(entry.profile)}`,
    ...(entry.url ? [`    url: ${yamlScalar(entry.url)}`] : []),
    ...(entry.testConsumer ? [`    testConsumer: ${yamlScalar(entry.testConsumer)}`] : []),
  ];
}

/**
 * The diff between an entry's lines before (null: new) and after (null: removed): a
 * changed entry shows its name as context and only the lines that differ.
 */
export function entryDiff(before: string[] | null, after: string[] | null): DiffLine[] {
  if (!before) return (after ?? []).map((text) => ({ kind: '+', text }));
  if (!after) return before.map((text) => ({ kind: '-', text }));
  const removed = before.filter((line) => !after.includes(line));
  const added = after.filter((line) => !before.includes(line));
  if (!removed.length && !added.length) return [];
  // The name line says which entry the field lines belong to (it never changes).
  return [{ kind: ' ', text: before[0] }, ...removed.map((text) => ({ kind: '-' as const, text })), ...added.map((text) => ({ kind: '+' as const, text }))];
}

/** What the `providers` query says of a provider, as much as the state needs. */
export interface ProviderStanding {
  reachable?: boolean | null;
  tokenRefused: boolean;
  secretSet: boolean;
  offersNewer: boolean;
  preparing?: string | null;
  waitingChange?: { branch: string } | null;
}

/** A provider's state in one phrase and its colour, the most pressing first. */
export function providerState(p: ProviderStanding): { label: string; color: string } {
  if (!p.secretSet) return { label: 'secret not set', color: 'red' };
  if (p.tokenRefused) return { label: 'token refused', color: 'red' };
  if (p.reachable === false) return { label: 'unreachable', color: 'red' };
  if (p.reachable == null) return { label: 'not reached yet', color: 'gray' };
  if (p.waitingChange) return { label: 'change waiting for review', color: 'yellow' };
  if (p.preparing) return { label: 'preparing', color: 'blue' };
  if (p.offersNewer) return { label: 'offers newer versions', color: 'orange' };
  return { label: 'in sync', color: 'teal' };
}
