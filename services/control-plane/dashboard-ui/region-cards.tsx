import type { Figure, FigureName, RegionCard } from '../src/dashboard/snapshot-types.js';
import { formatAge, formatBytes, formatCount, formatRate, formatRatio, formatSeconds } from './format.js';
import { Sparkline } from './sparkline.js';
import { HealthBadge } from './status.js';

/** The figures of a card, in the order shown, with how each is written. */
const FIGURES: ReadonlyArray<{ name: FigureName; label: string; format: (value: number) => string; empty: string }> = [
  { name: 'requestsPerSecond', label: 'Client requests', format: formatRate, empty: 'no data' },
  { name: 'pullP99Seconds', label: 'Pull p99', format: formatSeconds, empty: 'no pulls' },
  { name: 'errorRatio', label: 'Errors (5xx)', format: formatRatio, empty: 'no requests' },
  { name: 'replicationBacklog', label: 'Replication backlog', format: formatCount, empty: 'no data' },
  { name: 'replicationLagP99Seconds', label: 'Replication lag p99', format: formatSeconds, empty: 'none applied' },
  { name: 'cacheHitRatio', label: 'Cache hits', format: formatRatio, empty: 'no reads' },
  { name: 'storageUsedBytes', label: 'Storage used', format: formatBytes, empty: 'no data' },
];

export function RegionCards({ regions, metricsHint }: { regions: RegionCard[]; metricsHint: string }) {
  if (regions.length === 0) return <p>No region is registered. Add one with <code>meridian region add</code>.</p>;
  return (
    <ul class="cards">
      {regions.map((region) => (
        <li key={region.name}>
          <RegionCardView region={region} metricsHint={metricsHint} />
        </li>
      ))}
    </ul>
  );
}

function RegionCardView({ region, metricsHint }: { region: RegionCard; metricsHint: string }) {
  const headingId = `region-${region.name}`;
  return (
    <article class={`card card-${region.health}`} aria-labelledby={headingId}>
      <header class="card-header">
        <h3 id={headingId}>{region.name}</h3>
        <HealthBadge health={region.health} />
      </header>
      <p class="card-meta">
        <span>{region.state}</span>
        <span>heartbeat {region.heartbeatAgeSeconds === null ? 'never' : formatAge(region.heartbeatAgeSeconds)}</span>
        <a href={region.http}>{new URL(region.http).host}</a>
      </p>
      {region.healthReason && <p class="card-reason">{region.healthReason}</p>}
      <dl class="figures">
        {FIGURES.map((figure) => (
          <FigureRow key={figure.name} {...figure} value={region.figures[figure.name]} metricsError={region.metricsError} unavailable={region.metricsError ?? metricsHint} />
        ))}
      </dl>
    </article>
  );
}

function FigureRow({
  label,
  value,
  format,
  empty,
  metricsError,
  unavailable,
}: {
  label: string;
  value: Figure;
  format: (value: number) => string;
  empty: string;
  metricsError: string | null;
  unavailable: string;
}) {
  let text: string;
  let title: string | undefined;
  if (!value.available) {
    text = 'no data';
    title = unavailable;
  } else if (value.current === null) {
    // No current figure because the metrics could not be read (the gateway is down), or because
    // there was nothing to measure (no pulls in the last minute).
    text = metricsError ? 'no data' : empty;
    title = metricsError ?? undefined;
  } else {
    text = format(value.current);
  }
  return (
    <div class="figure">
      <dt>{label}</dt>
      <dd>
        <span class={value.current === null ? 'value value-empty' : 'value'} title={title}>
          {text}
        </span>
        <Sparkline series={value.series} format={format} label={label} />
      </dd>
    </div>
  );
}
