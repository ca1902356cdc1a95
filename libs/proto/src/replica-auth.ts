/**
 * Authentication of the replica protocol: every call carries a service token (a JWT naming the
 * calling service and, as its audience, the region called) in its `authorization` metadata, and
 * a region answers nothing before it has checked it. The tokens themselves are minted and
 * verified elsewhere (libs/auth, service-tokens.ts); this file only carries them over gRPC, so
 * it takes them through the two small interfaces below.
 */
import * as grpc from '@grpc/grpc-js';
import type { ReplicaHandlers } from './generated/meridian/replica/v1/Replica.js';

export type ReplicaMethod = keyof ReplicaHandlers;

/** Mints the token a caller sends; ServiceTokenIssuer in libs/auth is one. */
export interface ReplicaTokenSource {
  token(audience: string): Promise<string>;
}

/** Checks a token for this region and names the calling service, or rejects; ServiceTokenVerifier in libs/auth is one. */
export interface ReplicaCallerVerifier {
  verify(token: string | undefined): Promise<{ service: string }>;
}

/**
 * Which methods each service may call: what its work needs and no more, so a caller that goes
 * wrong (or a token that leaks from it) cannot do what only another service does. The worker
 * copies content in (FetchBlob has the region read it from a peer, as a gateway); a gateway reads from its peers (read-through); the control plane lists
 * what a region holds and purges it. A service not listed may call nothing.
 */
export const REPLICA_METHODS_BY_SERVICE: Readonly<Record<string, readonly ReplicaMethod[]>> = {
  'replication-worker': ['Health', 'LinkBlobs', 'PutBlob', 'FetchBlob', 'GetBlob', 'GetManifest', 'ApplyManifest', 'ApplyDelete'],
  gateway: ['Health', 'FindBlobs', 'GetBlob', 'GetManifest'],
  'control-plane': ['Health', 'ListInventory', 'Purge'],
};

const AUTHORIZATION = 'authorization';

/**
 * A client interceptor that puts a service token for `audience` (the region the client calls)
 * into each call's metadata. The call starts once the token is at hand; a token that cannot be
 * minted fails the call as UNAUTHENTICATED, without sending it.
 */
export function serviceTokenInterceptor(tokens: ReplicaTokenSource, audience: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        tokens.token(audience).then(
          (token) => {
            metadata.set(AUTHORIZATION, `Bearer ${token}`);
            next(metadata, listener);
          },
          (err: Error) => {
            listener.onReceiveStatus?.({ code: grpc.status.UNAUTHENTICATED, details: `no service token: ${err.message}`, metadata: new grpc.Metadata() });
          },
        );
      },
    });
}

/** Why a call was refused, for the region's log; never the token. */
export interface ReplicaRefusal {
  method: string;
  code: grpc.status.UNAUTHENTICATED | grpc.status.PERMISSION_DENIED;
  reason: string;
}

type AnyHandler = (call: grpc.ServerUnaryCall<unknown, unknown> & grpc.ServerWritableStream<unknown, unknown>, callback?: grpc.sendUnaryData<unknown>) => void;

/**
 * Wraps each handler of the Replica service so that it runs only for a call whose token the
 * verifier accepts, from a service REPLICA_METHODS_BY_SERVICE lets call that method. Any other
 * call is answered UNAUTHENTICATED (no token, or one refused) or PERMISSION_DENIED (a service
 * calling a method not its own), before the handler sees it.
 */
export function authenticatedHandlers<Handlers extends object>(handlers: Handlers, verifier: ReplicaCallerVerifier, onRefused: (refusal: ReplicaRefusal) => void = () => undefined): Handlers {
  const wrapped = Object.entries(handlers).map(([method, handler]: [string, AnyHandler]) => {
    const guarded: AnyHandler = (call, callback) => {
      const refuse = (refusal: ReplicaRefusal) => {
        onRefused(refusal);
        const status = { code: refusal.code, details: refusal.code === grpc.status.UNAUTHENTICATED ? 'a valid service token is required' : `${method} is not allowed to this caller`, metadata: new grpc.Metadata() };
        // Unary and client-streaming calls answer through the callback; a server stream through its 'error' event.
        if (callback) callback(status);
        else call.emit('error', status);
      };
      const header = call.metadata.get(AUTHORIZATION)[0];
      const token = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
      verifier.verify(token).then(
        ({ service }) => {
          if (!REPLICA_METHODS_BY_SERVICE[service]?.includes(method as ReplicaMethod)) {
            refuse({ method, code: grpc.status.PERMISSION_DENIED, reason: `${service} may not call ${method}` });
            return;
          }
          handler(call, callback);
        },
        (err: Error) => refuse({ method, code: grpc.status.UNAUTHENTICATED, reason: err.message }),
      );
    };
    return [method, guarded] as const;
  });
  return Object.fromEntries(wrapped) as Handlers;
}
