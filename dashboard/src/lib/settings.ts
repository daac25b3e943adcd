//! Build settings as the settings page edits them: each list as lines of text
//! (`name=value`, `name url branch [subDirectory]`, a path), read back with errors that
//! name the line, and the lines a change adds and removes.
import type { DiffLine } from './diff';

/** A repository as the editor writes it. */
export interface Repo {
  name: string;
  url: string;
  branch: string;
  subDirectory?: string | null;
  cloneSubmodules?: boolean;
}

/** One kind of build settings (developer or client) as editable text. */
export interface SettingsText {
  repositories: string;
  environment: string;
  macroValues: string;
  privateFiles: string;
}

export const pairsText = (pairs: { name: string; value: string }[]) => pairs.map((p) => `${p.name}=${p.value}`).join('\n');
export const reposText = (repos: Repo[]) => repos.map((r) => [r.name, r.url, r.branch, r.subDirectory].filter(Boolean).join(' ')).join('\n');

const lines = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

/** Reads `name=value` lines. */
export function parsePairs(text: string, what: string): { name: string; value: string }[] {
  return lines(text).map((line, i) => {
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`${what}, line ${i + 1}: \`${line}\` is not name=value`);
    return { name: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() };
  });
}

/** Reads `name url branch [subDirectory]` lines. */
export function parseRepos(text: string, what: string): Repo[] {
  return lines(text).map((line, i) => {
    const [name, url, branch, subDirectory, ...rest] = line.split(/\s+/);
    if (!name || !url || !branch || rest.length) throw new Error(`${what}, line ${i + 1}: \`${line}\` is not "name url branch [subDirectory]"`);
    return { name, url, branch, subDirectory: subDirectory ?? null, cloneSubmodules: true };
  });
}

/** Reads one path a line. */
export const parsePaths = (text: string) => lines(text);

/** The lines removed and added between two texts of one field (order kept). */
export function textDiff(label: string, before: string, after: string): DiffLine[] {
  const old = lines(before);
  const fresh = lines(after);
  return [
    ...old.filter((l) => !fresh.includes(l)).map((l) => ({ kind: '-' as const, text: `${label}: ${l}` })),
    ...fresh.filter((l) => !old.includes(l)).map((l) => ({ kind: '+' as const, text: `${label}: ${l}` })),
  ];
}
