import type { MatrixCell } from '../src/dashboard/snapshot-types.js';
import { formatCount, formatSeconds } from './format.js';

/**
 * Source region (rows: where a change was made) by target region (columns: where it is copied):
 * replications pending and failed, and the lag p99 of those applied in the last hour.
 */
export function ReplicationMatrix({ regions, cells }: { regions: string[]; cells: MatrixCell[] }) {
  if (regions.length < 2) return <p>Replication needs two regions or more.</p>;
  const cellOf = (source: string, target: string) => cells.find((cell) => cell.source === source && cell.target === target);
  return (
    // Focusable so that a keyboard can scroll it when it is wider than the screen.
    <div class="table-scroll" tabIndex={0} role="region" aria-labelledby="matrix-caption">
      <table class="matrix">
        <caption id="matrix-caption">Replications from each source region (rows) to each target region (columns)</caption>
        <thead>
          <tr>
            <th scope="col">Source \ target</th>
            {regions.map((target) => (
              <th scope="col" key={target}>
                {target}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {regions.map((source) => (
            <tr key={source}>
              <th scope="row">{source}</th>
              {regions.map((target) => (
                <td key={target}>{source === target ? <span class="muted" aria-label="same region">—</span> : <MatrixCellView cell={cellOf(source, target)} />}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function MatrixCellView({ cell }: { cell: MatrixCell | undefined }) {
  const pending = cell?.pending ?? 0;
  const failed = cell?.failed ?? 0;
  return (
    <span class="matrix-cell">
      <span class={pending > 0 ? 'count count-pending' : 'count'}>{formatCount(pending)} pending</span>
      <span class={failed > 0 ? 'count count-failed' : 'count'}>
        {failed > 0 && <span aria-hidden="true">✕ </span>}
        {formatCount(failed)} failed
      </span>
      <span class="muted">lag p99 {cell?.lagP99Seconds == null ? '—' : formatSeconds(cell.lagP99Seconds)}</span>
    </span>
  );
}
