import type { PushStatus } from '../src/dashboard/snapshot-types.js';
import { formatTime, shortDigest } from './format.js';
import { PushStateLabel } from './status.js';

/** The newest manifest pushes, one row each, and where each stands in every region. */
export function NewestPushes({ pushes, regions }: { pushes: PushStatus[]; regions: string[] }) {
  if (pushes.length === 0) return <p>Nothing has been pushed yet.</p>;
  return (
    <div class="table-scroll" tabIndex={0} role="region" aria-labelledby="pushes-caption">
      <table class="pushes">
        <caption id="pushes-caption">The newest manifest pushes, newest first, and their state in each region</caption>
        <thead>
          <tr>
            <th scope="col">Push</th>
            <th scope="col">Origin</th>
            <th scope="col">At</th>
            {regions.map((region) => (
              <th scope="col" key={region}>
                {region}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {pushes.map((push) => (
            <tr key={push.changeId}>
              <th scope="row">
                <span class="push-name">
                  {push.repository}
                  {push.tag ? `:${push.tag}` : ''}
                </span>
                <code class="digest">{shortDigest(push.digest)}</code>
              </th>
              <td>{push.origin}</td>
              <td>
                <time dateTime={push.at}>{formatTime(push.at)}</time>
              </td>
              {regions.map((name) => {
                const entry = push.regions.find((region) => region.name === name);
                return (
                  <td key={name}>
                    {entry ? (
                      <PushStateLabel state={entry.state} title={entry.error ?? (entry.attempts > 0 ? `${entry.attempts} attempts` : undefined)} />
                    ) : (
                      <span class="muted">—</span>
                    )}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
