/**
 * `pnpm bench [replication|routing|telemetry|auth] ...`: the registry bench against CNCF Distribution
 * and nginx (run.ts); with `replication` first, the geo-replication bench
 * (replication/run-replication.ts); with `routing` first, the router's bench
 * (routing/run-routing.ts); with `telemetry` first, Meridian with tracing on against Meridian
 * without (telemetry/run-telemetry.ts); with `auth` first, Meridian with auth on (Bearer and
 * Basic) against auth off (auth/run-auth.ts). Each module runs as it is imported and reads its own
 * options from the command line.
 */
const args = process.argv.slice(2).filter((arg) => arg !== '--');
if (args[0] === 'replication') await import('./replication/run-replication.js');
else if (args[0] === 'routing') await import('./routing/run-routing.js');
else if (args[0] === 'telemetry') await import('./telemetry/run-telemetry.js');
else if (args[0] === 'auth') await import('./auth/run-auth.js');
else await import('./run.js');
