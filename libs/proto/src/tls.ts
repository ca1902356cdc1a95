/**
 * TLS for the cluster's servers and their clients: one place that says how a certificate is
 * served (TLS 1.2 at least, on HTTPS and on the replica protocol alike) and which authority a
 * client trusts. Services read the PEM files named by their config (cluster-http.ts's readPemFile)
 * and pass the bytes here.
 */
import type https from 'node:https';
import * as grpc from '@grpc/grpc-js';

/** Nothing older is spoken: TLS 1.0 and 1.1 are deprecated (RFC 8996). */
export const MIN_TLS_VERSION = 'TLSv1.2';

/** A server's certificate chain and private key, PEM. */
export interface ServerCertificate {
  cert: Buffer;
  key: Buffer;
}

/** Options for `https.createServer`: the certificate, and no protocol older than TLS 1.2. */
export function httpsServerOptions(certificate: ServerCertificate): https.ServerOptions {
  return { cert: certificate.cert, key: certificate.key, minVersion: MIN_TLS_VERSION };
}

/**
 * The replica server's credentials: TLS with `certificate` when given, else plaintext (a
 * cluster on loopback or a private network; the calls are authenticated either way). grpc-js
 * serves TLS through Node's tls, whose minimum is TLS 1.2 unless Node is told otherwise.
 */
export function replicaServerCredentials(certificate: ServerCertificate | undefined): grpc.ServerCredentials {
  if (!certificate) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(null, [{ cert_chain: certificate.cert, private_key: certificate.key }], false);
}

/**
 * A replica client's channel credentials: TLS trusting the authority `ca` (PEM) when given, so
 * a cluster whose regions serve TLS gives each client its CA; plaintext otherwise.
 */
export function replicaChannelCredentials(ca: Buffer | undefined): grpc.ChannelCredentials {
  return ca ? grpc.credentials.createSsl(ca) : grpc.credentials.createInsecure();
}
