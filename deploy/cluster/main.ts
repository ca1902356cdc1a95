/**
 * `pnpm cluster up [--regions N] [--tls] [--database-prefix P] [--queue-prefix P]` and `pnpm cluster down`: a Meridian cluster on this machine
 * (see cluster.ts). Prints where each part listens; `--json` prints the state file instead.
 */
import { Command, InvalidArgumentError } from 'commander';
import { Cluster } from './cluster.js';

const program = new Command('cluster')
  .description('Run a whole Meridian cluster on this machine: a control plane, a replication worker, N regions and the router, each its own process on loopback')
  .option('--home <dir>', 'where cluster.json, logs and region data go', '.meridian');

program
  .command('up')
  .description('start whatever part of the cluster is not running (and keep what is)')
  .option('--regions <n>', 'how many regions', (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number from 1');
    return n;
  }, 3)
  .option('--tls', 'serve HTTPS and TLS gRPC everywhere, with certificates signed by an authority made for this cluster')
  .option('--database-prefix <prefix>', 'name every database <prefix>_control, <prefix>_eu_west, ... (default: meridian; a later up keeps it)', (value) => {
    // The gateway takes database names of letters, digits and _ (README, "Configuration").
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) throw new InvalidArgumentError('expected letters, digits and _, not starting with a digit');
    return value;
  })
  .option('--queue-prefix <prefix>', 'the replication queue\'s Redis key prefix (default: the services\' own, bull; a later up keeps it)')
  .option('--json', 'print the cluster state as JSON')
  .action(async (options: { regions: number; tls?: boolean; json?: boolean; databasePrefix?: string; queuePrefix?: string }) => {
    // MERIDIAN_AUTH=off turns credentials off in every process, for a throwaway cluster.
    const auth = process.env.MERIDIAN_AUTH !== 'off';
    if (!auth) process.stderr.write('\n*** MERIDIAN_AUTH=off: this cluster asks nobody for credentials; anyone who reaches its ports may push, pull and delete anything, and manage its regions ***\n\n');
    const cluster = new Cluster({
      home: program.opts().home,
      auth,
      tls: options.tls === true,
      ...(options.databasePrefix ? { databasePrefix: options.databasePrefix } : {}),
      ...(options.queuePrefix ? { queuePrefix: options.queuePrefix } : {}),
    });
    const state = await cluster.up(options.regions);
    if (options.json) {
      process.stdout.write(`${JSON.stringify(state, null, 2)}\n`);
      return;
    }
    process.stdout.write(`control plane  ${state.controlPlane}  (pid ${state.controlPlanePid})\n`);
    process.stdout.write(`dashboard      ${state.dashboard}\n`);
    for (const region of state.regions) process.stdout.write(`region ${region.name.padEnd(13)} ${region.http}  grpc ${region.grpc}  (pid ${region.pid})\n`);
    process.stdout.write(`router         ${state.router}  (pid ${state.routerPid}): the one address for every region, nearest first\n`);
    process.stdout.write(`worker         pid ${state.workerPid}\nstate          ${cluster.stateFile}\nlogs           ${cluster.logOf('*')}\n`);
    if (state.adminPasswordFile) process.stdout.write(`admin password ${state.adminPasswordFile} (user admin; pnpm meridian reads it for this cluster)\n`);
    else if (state.auth) process.stdout.write('admin password MERIDIAN_ADMIN_PASSWORD, as given (user admin)\n');
    else process.stdout.write('auth           OFF (MERIDIAN_AUTH=off)\n');
    if (state.caFile && state.certDir) process.stdout.write(trustAdvice(state.caFile, state.certDir, new URL(state.router).host));
  });

/** How each kind of client trusts the cluster's authority, for the cluster's router at `host`. */
function trustAdvice(caFile: string, certDir: string, host: string): string {
  return [
    `tls            every address above is https:// (gRPC TLS); the cluster's authority is ${caFile}`,
    `  skopeo       --cert-dir ${certDir} (copy: --src-cert-dir / --dest-cert-dir); --tls-verify stays on`,
    `  podman       --cert-dir ${certDir}, or copy ca.crt into /etc/containers/certs.d/${host}/`,
    `  containerd   ctr images pull --tlscacert ${caFile}, or ca = "${caFile}" in /etc/containerd/certs.d/${host}/hosts.toml`,
    `  meridian     pnpm meridian --ca ${caFile} (or MERIDIAN_TLS_CA); without either it reads caFile from .meridian/cluster.json`,
    '',
  ].join('\n');
}

program
  .command('down')
  .description('stop every process of the cluster (its data stays)')
  .action(async () => {
    const cluster = new Cluster({ home: program.opts().home });
    const found = await cluster.down();
    process.stdout.write(found ? 'cluster stopped\n' : `no cluster in ${cluster.home}: nothing to stop\n`);
  });

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`cluster: ${err.message}\n`);
  process.exit(1);
});
