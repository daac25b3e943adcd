//! Version strings as the server writes them: `DIST-1.2.3` (developer) and
//! `DIST-1.2.3_N` (client generation N); ordered numerically part by part.

/** A parsed version. */
export interface Version {
  distribution: string;
  build: number[];
  generation: number;
}

/** Parses `DIST-1.2.3[_N]`; null when it is not one. */
export function parseVersion(text: string): Version | null {
  const dash = text.lastIndexOf('-');
  if (dash <= 0) return null;
  const distribution = text.slice(0, dash);
  const [build, generation, ...rest] = text.slice(dash + 1).split('_');
  if (rest.length || !/^\d+(\.\d+)*$/.test(build)) return null;
  if (generation !== undefined && !/^\d+$/.test(generation)) return null;
  return { distribution, build: build.split('.').map(Number), generation: generation === undefined ? 0 : Number(generation) };
}

/** Orders versions (unparsable ones last, by text). */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y) return x ? -1 : y ? 1 : a.localeCompare(b);
  if (x.distribution !== y.distribution) return x.distribution.localeCompare(y.distribution);
  const length = Math.max(x.build.length, y.build.length);
  for (let i = 0; i < length; i++) {
    const d = (x.build[i] ?? 0) - (y.build[i] ?? 0);
    if (d) return d;
  }
  return x.generation - y.generation;
}

/** The next developer build of `distribution` after the versions given: last part + 1, or `1.0.0`. */
export function nextBuild(distribution: string, versions: string[]): string {
  const own = versions
    .map(parseVersion)
    .filter((v): v is Version => v !== null && v.distribution === distribution)
    .sort((a, b) => compareVersions(`x-${a.build.join('.')}`, `x-${b.build.join('.')}`));
  const last = own.at(-1);
  if (!last) return `${distribution}-1.0.0`;
  const build = [...last.build];
  build[build.length - 1] += 1;
  return `${distribution}-${build.join('.')}`;
}

/** The developer version a client version was made from (`DIST-1.2.3_4` -> `DIST-1.2.3`). */
export function developerOf(client: string): string {
  const underscore = client.lastIndexOf('_');
  return underscore > client.lastIndexOf('-') ? client.slice(0, underscore) : client;
}
