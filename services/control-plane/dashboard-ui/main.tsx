import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { DashboardSnapshot } from '../src/dashboard/snapshot-types.js';
import { formatTime } from './format.js';
import { NewestPushes } from './newest-pushes.js';
import { RegionCards } from './region-cards.js';
import { ReplicationMatrix } from './replication-matrix.js';
import './styles.css';

type Connection = 'connecting' | 'live' | 'reconnecting';

/**
 * The latest snapshot from the control plane's event stream. EventSource reconnects by itself
 * after a lost connection (the server asks for 2 s); meanwhile the page keeps the last figures
 * and says it is reconnecting.
 */
function useSnapshots(): { snapshot: DashboardSnapshot | undefined; connection: Connection } {
  const [snapshot, setSnapshot] = useState<DashboardSnapshot>();
  const [connection, setConnection] = useState<Connection>('connecting');
  useEffect(() => {
    const events = new EventSource('/api/v1/dashboard/events');
    events.addEventListener('snapshot', (event) => {
      setSnapshot(JSON.parse((event as MessageEvent<string>).data) as DashboardSnapshot);
      setConnection('live');
    });
    events.addEventListener('error', () => setConnection('reconnecting'));
    return () => events.close();
  }, []);
  return { snapshot, connection };
}

const CONNECTION_TEXT: Record<Connection, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Connection lost, reconnecting…',
};

function App() {
  const { snapshot, connection } = useSnapshots();
  const regionNames = snapshot?.regions.map((region) => region.name) ?? [];
  return (
    <>
      <a class="skip-link" href="#regions-heading">
        Skip to the regions
      </a>
      <header class="page-header">
        <h1>Meridian regions</h1>
        <p class="connection">
          {/* Only the connection's state is announced; the time changes at every update. */}
          <span role="status">
            <span class={`dot dot-${connection}`} aria-hidden="true" />
            {CONNECTION_TEXT[connection]}
          </span>
          {snapshot && <span class="muted"> · updated {formatTime(snapshot.generatedAt)}</span>}
        </p>
      </header>
      <main>
        {!snapshot ? (
          <p>Loading…</p>
        ) : (
          <>
            <section aria-labelledby="regions-heading">
              <h2 id="regions-heading" tabIndex={-1}>
                Regions
              </h2>
              <RegionCards regions={snapshot.regions} metricsHint="the gateway's /metrics does not expose this figure" />
            </section>
            <div class="lower">
              <section aria-labelledby="pushes-heading">
                <h2 id="pushes-heading">Newest pushes</h2>
                <NewestPushes pushes={snapshot.pushes} regions={regionNames} />
              </section>
              <section aria-labelledby="matrix-heading">
                <h2 id="matrix-heading">Replication matrix</h2>
                <ReplicationMatrix regions={snapshot.matrix.regions} cells={snapshot.matrix.cells} />
              </section>
            </div>
          </>
        )}
      </main>
      <footer class="page-footer">
        {snapshot ? (
          <p>
            Each region's gateway is asked for <code>/readyz</code> and <code>/metrics</code> every {snapshot.scrapeIntervalSeconds} s; replication
            figures come from the control plane's database. Sparklines show the last hour, a point every {snapshot.stepSeconds / 60} min; the
            figure beside each is its latest point. Also as JSON: <a href="/api/v1/dashboard">/api/v1/dashboard</a>.
          </p>
        ) : null}
      </footer>
    </>
  );
}

const root = document.getElementById('app')!;
// The page's text for a browser without JavaScript goes; Preact then owns the container.
root.textContent = '';
render(<App />, root);
