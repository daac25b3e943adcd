// Writes a gzip twin (`name.gz`, best compression) of every text file in dist/ larger
// than 1 KiB, which the distribution sends to browsers that accept gzip: no compression
// work per request, and the figures the bench reports are what is sent.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync, constants } from 'node:zlib';

const TEXT = /\.(js|css|html|svg|json|map|txt)$/;

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (TEXT.test(name) && statSync(path).size > 1024) {
      writeFileSync(`${path}.gz`, gzipSync(readFileSync(path), { level: constants.Z_BEST_COMPRESSION }));
    }
  }
}

walk(new URL('../dist', import.meta.url).pathname);
