import { ServiceTokenIssuer, SERVICE_NAMES } from '@meridian/auth';
import { REPLICA_METHODS_BY_SERVICE, createReplicaClient, grpc, replicaChannelCredentials, serviceTokenInterceptor, type ReplicaClient } from '@meridian/proto';

/** The cluster secret of in-process test clusters (control plane, worker, gateways with a replica server). Test support only. */
export const TEST_CLUSTER_SECRET = 'meridian test cluster secret, never used outside tests';

/**
 * A client of a region's replica server for tests that call every method, as the cluster's
 * services together do: each call carries a service token of the service allowed that method
 * (libs/proto replica-auth.ts), minted from TEST_CLUSTER_SECRET for `region`.
 */
export interface EntitledClientOptions {
  /** The cluster secret the tokens are minted from (TEST_CLUSTER_SECRET). */
  secret?: string;
  /** TLS: `true` trusts the system's authorities only, a Buffer that authority (PEM). Plaintext when unset. */
  tls?: true | Buffer;
}

export function createEntitledReplicaClient(address: string, region: string, options: EntitledClientOptions = {}): ReplicaClient {
  const secret = options.secret ?? TEST_CLUSTER_SECRET;
  const issuers = new Map(SERVICE_NAMES.map((service) => [service, new ServiceTokenIssuer(secret, service)]));
  const asEntitledService: grpc.Interceptor = (options, nextCall) => {
    const method = options.method_definition.path.split('/').pop()!;
    const service = SERVICE_NAMES.find((name) => REPLICA_METHODS_BY_SERVICE[name]?.some((allowed) => allowed === method));
    if (!service) throw new Error(`no service may call ${method}`);
    return serviceTokenInterceptor(issuers.get(service)!, region)(options, nextCall);
  };
  const credentials = options.tls === true ? grpc.credentials.createSsl() : replicaChannelCredentials(options.tls);
  return createReplicaClient(address, credentials, [asEntitledService]);
}
