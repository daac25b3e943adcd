// Builds the dashboard (index.html) and GraphiQL (graphiql.html) into dist/, which the
// distribution embeds; hashed files under assets/ are cached for a year by the server.
import { defineConfig } from 'vite';
import { resolve } from 'node:path';

export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      onwarn(warning, warn) {
        // React libraries mark files "use client" for server frameworks; meaningless here.
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
      input: {
        index: resolve(import.meta.dirname, 'index.html'),
        graphiql: resolve(import.meta.dirname, 'graphiql.html'),
      },
    },
  },
  server: {
    // `npm run dev` against a distribution on :8000 (VUPDATE_URL to change it).
    proxy: {
      '/graphql': { target: process.env.VUPDATE_URL ?? 'http://127.0.0.1:8000', ws: true },
      '/logs': process.env.VUPDATE_URL ?? 'http://127.0.0.1:8000',
      '/faults': process.env.VUPDATE_URL ?? 'http://127.0.0.1:8000',
      '/private-files': process.env.VUPDATE_URL ?? 'http://127.0.0.1:8000',
    },
  },
});
