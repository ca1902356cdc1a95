/**
 * The per-region health dashboard in a real browser: a cluster of three regions (`pnpm cluster
 * up`'s Cluster), the control plane's `/dashboard` opened in headless Chromium (Debian's
 * `chromium`, driven by playwright-core). The page shows one card per region; a push appears in
 * the newest-pushes panel as present in every region; axe-core finds nothing against WCAG 2 A
 * and AA; a killed region's card turns Down, and Healthy again once the region is back. The page is read through its accessible roles and
 * names, as assistive technology reads it. Screenshots go to e2e/.output/.
 *
 * The `it`s form one story and run in order.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciTestClient, buildImage } from '@meridian/testkit';
import { REPO_ROOT, type ClusterState } from '../deploy/cluster/cluster.js';
import { createTestCluster, type TestCluster } from './support/test-cluster.js';

const CHROMIUM = '/usr/bin/chromium';
const OUTPUT_DIR = path.join(REPO_ROOT, 'e2e/.output');
const require = createRequire(import.meta.url);
/** Generous: replication and restarts on a loaded two-core machine. */
const BOUND_MS = 60_000;
/**
 * The dashboard's promise: a region that stops answering shows as down within 10 s (it is
 * probed every 3 s). This bounds a wait for the page to say so; it measures nothing.
 */
const DOWN_WITHIN_MS = 10_000;

let testCluster: TestCluster;
let state: ClusterState;
let browser: Browser;
let page: Page;

/** A region's card: the article named by its heading. */
const regionCard = (name: string): Locator => page.getByRole('region', { name: 'Regions' }).getByRole('article', { name, exact: true });
/** The card's health as it reads: its sign, then its word (`✓ Healthy`, `✕ Down`). */
const health = (name: string, word: string): Locator => regionCard(name).getByText(new RegExp(`^\\W+ ${word}$`));

beforeAll(async () => {
  testCluster = await createTestCluster('dashboard');
  [state, browser] = await Promise.all([
    testCluster.cluster.up(3),
    chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] }).catch((err: Error) => {
      throw new Error(`cannot start Chromium at ${CHROMIUM} (bash deploy/bootstrap.sh installs Debian's chromium): ${err.message}`);
    }),
  ]);
  // A laptop's screen.
  page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  mkdirSync(OUTPUT_DIR, { recursive: true });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await testCluster?.dispose();
}, 120_000);

describe('the per-region health dashboard in Chromium', () => {
  it('is where cluster.json says, and shows one card per region, each healthy once its relay beats', async () => {
    expect(state.dashboard).toBe(`${state.controlPlane}/dashboard`);
    const response = await page.goto(state.dashboard);
    expect(response?.status()).toBe(200);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Meridian regions');
    const names = state.regions.map((region) => region.name).sort();
    await page.getByRole('article').nth(2).waitFor({ timeout: BOUND_MS });
    expect(await page.getByRole('article').count()).toBe(3);
    expect(await page.getByRole('heading', { level: 3 }).allTextContents()).toEqual(names);
    for (const name of names) await health(name, 'Healthy').waitFor({ timeout: BOUND_MS });
    // Every figure of a card is labelled; the live stream keeps the page current.
    expect(await regionCard(names[0]!).locator('dt').allTextContents()).toEqual([
      'Client requests',
      'Pull p99',
      'Errors (5xx)',
      'Replication backlog',
      'Replication lag p99',
      'Cache hits',
      'Storage used',
    ]);
    await page.getByRole('status').getByText('Live').waitFor({ timeout: BOUND_MS });
  });

  it('shows a push in the newest-pushes panel as present in every region once it has replicated', async () => {
    const origin = state.regions[0]!;
    await new OciTestClient(origin.http).pushImage('dashboard/app', 'v1', buildImage());
    const pushes = page.getByRole('table', { name: /newest manifest pushes/ });
    const row = pushes.getByRole('row', { name: /dashboard\/app:v1/ });
    await row.waitFor({ timeout: BOUND_MS });
    const columns = await pushes.getByRole('columnheader').allTextContents();
    expect(columns).toEqual(['Push', 'Origin', 'At', ...state.regions.map((region) => region.name).sort()]);
    await expect
      .poll(async () => (await row.getByRole('cell').allTextContents()).slice(2).map((text) => text.trim()), { timeout: BOUND_MS, interval: 500 })
      .toEqual(['✓ present', '✓ present', '✓ present']);
    expect((await row.getByRole('cell').nth(0).textContent())?.trim()).toBe(origin.name);
    await page.screenshot({ path: path.join(OUTPUT_DIR, 'dashboard.png'), fullPage: true });
  });

  it('meets WCAG 2 A and AA as axe-core checks them (contrast, names, landmarks, tables), and shows where the keyboard is', async () => {
    // Evaluated through the browser's debugging protocol, which the page's CSP does not govern.
    await page.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
    const violations = await page.evaluate(async () => {
      const result = await (window as unknown as { axe: { run(options: object): Promise<{ violations: Array<{ id: string; nodes: Array<{ target: string[] }> }> }> } }).axe.run({
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
      });
      return result.violations.map((violation) => `${violation.id}: ${violation.nodes.map((node) => node.target.join(' ')).join(', ')}`);
    });
    expect(violations).toEqual([]);
    // The first Tab reaches the skip link, which shows itself with a visible outline.
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const element = document.activeElement as HTMLElement;
      const style = getComputedStyle(element);
      return { text: element.textContent, outline: style.outlineStyle, top: element.getBoundingClientRect().top };
    });
    expect(focused).toMatchObject({ text: 'Skip to the regions', outline: 'solid' });
    expect(focused.top).toBeGreaterThanOrEqual(0);
  });

  it('turns a killed region Down within 10 s, and Healthy again once it is restarted', async () => {
    const victim = state.regions[1]!;
    process.kill(victim.pid, 'SIGKILL');
    await health(victim.name, 'Down').waitFor({ timeout: DOWN_WITHIN_MS });
    // The other regions stay as they were.
    for (const other of state.regions.filter((region) => region !== victim)) {
      expect(await health(other.name, 'Healthy').count()).toBe(1);
    }
    await page.screenshot({ path: path.join(OUTPUT_DIR, 'dashboard-region-down.png'), fullPage: true });

    state = await testCluster.cluster.up(3);
    await health(victim.name, 'Healthy').waitFor({ timeout: BOUND_MS });
  });
});
