import type { PushState, RegionHealth } from '../src/dashboard/snapshot-types.js';

/**
 * A state is told by its word and its sign as well as its colour (WCAG 1.4.1): a reader who
 * cannot tell the colours apart, or a screen reader, loses nothing.
 */
const HEALTH: Record<RegionHealth, { sign: string; text: string }> = {
  healthy: { sign: '✓', text: 'Healthy' },
  stale: { sign: '!', text: 'Stale heartbeat' },
  down: { sign: '✕', text: 'Down' },
  unknown: { sign: '?', text: 'Unknown' },
};

export function HealthBadge({ health }: { health: RegionHealth }) {
  const { sign, text } = HEALTH[health];
  return (
    <span class={`badge badge-${health}`}>
      <span aria-hidden="true">{sign}</span> {text}
    </span>
  );
}

const PUSH: Record<PushState, { sign: string; text: string; tone: string }> = {
  present: { sign: '✓', text: 'present', tone: 'healthy' },
  pending: { sign: '…', text: 'pending', tone: 'stale' },
  failed: { sign: '✕', text: 'failed', tone: 'down' },
  superseded: { sign: '↷', text: 'superseded', tone: 'unknown' },
  dropped: { sign: '–', text: 'dropped', tone: 'unknown' },
  absent: { sign: '–', text: 'absent', tone: 'unknown' },
};

export function PushStateLabel({ state, title }: { state: PushState; title?: string }) {
  const { sign, text, tone } = PUSH[state];
  return (
    <span class={`state state-${tone}`} title={title}>
      <span aria-hidden="true">{sign}</span> {text}
    </span>
  );
}
