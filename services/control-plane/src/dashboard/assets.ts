import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** The browser code of the dashboard (Preact, TSX and CSS), beside src/. */
export const DASHBOARD_UI_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../dashboard-ui');

/** What the control plane serves under /dashboard: the page and its two bundled assets. */
export interface DashboardAssets {
  html: string;
  js: string;
  css: string;
}

/**
 * Bundles the dashboard's browser code with esbuild, in memory: the services already run their
 * TypeScript through esbuild (tsx), so the page is built the same way, when first asked for, and
 * nothing built is kept in the repository or needs a build step on a fresh clone. Everything the
 * page needs is in these three answers: it loads nothing from elsewhere.
 */
export async function buildDashboardAssets(): Promise<DashboardAssets> {
  const [result, html] = await Promise.all([
    build({
      entryPoints: { app: path.join(DASHBOARD_UI_DIR, 'main.tsx') },
      bundle: true,
      write: false,
      outdir: '/',
      format: 'esm',
      target: 'es2022',
      minify: true,
      jsx: 'automatic',
      jsxImportSource: 'preact',
      logLevel: 'silent',
    }),
    readFile(path.join(DASHBOARD_UI_DIR, 'index.html'), 'utf8'),
  ]);
  const output = (extension: string) => result.outputFiles.find((file) => file.path.endsWith(extension))?.text ?? '';
  return { html, js: output('.js'), css: output('.css') };
}
