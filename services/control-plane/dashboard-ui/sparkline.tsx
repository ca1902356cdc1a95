const WIDTH = 120;
const HEIGHT = 28;
const PAD = 2;

/**
 * The last hour of a figure as a line, one point a minute; a gap where there was no data. The
 * figure's value is written beside it; a screen reader hears the line's summary (lowest and
 * highest) from its label.
 */
export function Sparkline({ series, format, label }: { series: Array<number | null>; format: (value: number) => string; label: string }) {
  const values = series.filter((value): value is number => value !== null);
  // The baseline spans the whole hour, so a short history reads as such: points at the right end.
  const baseline = <line class="baseline" x1={PAD} x2={WIDTH - PAD} y1={HEIGHT - PAD} y2={HEIGHT - PAD} />;
  if (values.length === 0) {
    return (
      <svg class="sparkline" width={WIDTH} height={HEIGHT} aria-hidden="true">
        {baseline}
      </svg>
    );
  }
  const low = Math.min(0, ...values);
  const high = Math.max(...values);
  const span = high - low || 1;
  const x = (i: number) => PAD + (i * (WIDTH - 2 * PAD)) / Math.max(1, series.length - 1);
  const y = (value: number) => HEIGHT - PAD - ((value - low) * (HEIGHT - 2 * PAD)) / span;
  // A run of points between gaps is one line; a lone point is a dot.
  const runs: Array<Array<[number, number]>> = [[]];
  series.forEach((value, i) => {
    const run = runs[runs.length - 1]!;
    if (value !== null) run.push([x(i), y(value)]);
    else if (run.length > 0) runs.push([]);
  });
  const summary = `${label}, last hour: lowest ${format(Math.min(...values))}, highest ${format(high)}`;
  return (
    <svg class="sparkline" width={WIDTH} height={HEIGHT} viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={summary}>
      <title>{summary}</title>
      {baseline}
      {runs.map((run) =>
        run.length === 1 ? (
          <circle cx={run[0]![0]} cy={run[0]![1]} r="1.5" />
        ) : run.length > 1 ? (
          <polyline points={run.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(' ')} />
        ) : null,
      )}
    </svg>
  );
}
