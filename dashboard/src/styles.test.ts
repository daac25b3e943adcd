//! Every Mantine component a page imports has its styles imported by `styles.ts` (the
//! dashboard does not load Mantine's whole stylesheet, so a forgotten file would show an
//! unstyled component and nothing else would notice).
/// <reference types="node" />
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const src = import.meta.dirname;
const styles = join(src, '../node_modules/@mantine/core/styles');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'gql' ? [] : sources(path);
    return /\.tsx?$/.test(entry.name) && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

describe('styles', () => {
  it('imports the styles of every Mantine component the pages use', () => {
    const imported = readFileSync(join(src, 'styles.ts'), 'utf8');
    const used = new Set<string>();
    for (const file of sources(src)) {
      for (const [, names] of readFileSync(file, 'utf8').matchAll(/import \{([^}]*)\} from '@mantine\/core'/g)) {
        for (const name of names.split(',')) {
          const component = name.replace(/^\s*type\s+/, '').trim();
          if (component) used.add(component);
        }
      }
    }
    expect(used.size).toBeGreaterThan(10);
    const missing = [...used].filter((c) => existsSync(join(styles, `${c}.css`)) && !imported.includes(`@mantine/core/styles/${c}.css'`));
    expect(missing).toEqual([]);
  });
});
