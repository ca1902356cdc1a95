import path from 'node:path';
import type { GatewayConfig } from './config.js';

export const AUTH_OFF_WARNING = 'MERIDIAN_AUTH=off: NO AUTHENTICATION. Anyone who can reach this port can push, overwrite and delete anything. For a throwaway local registry only';

/** What a start prints for people, whatever the log level: where to push, and as whom. */
export function startBanner(url: string, config: GatewayConfig): string {
  const creds = config.auth ? ' --dest-creds admin:PASSWORD' : '';
  // A region of a cluster copies its identities from the control plane (identity-setup.ts): it
  // makes no password file and applies no MERIDIAN_ADMIN_PASSWORD of its own.
  const password = config.controlPlaneUrl !== undefined
    ? `  sign in with the cluster's identities (the administrator admin and its password are the control plane's, ${config.controlPlaneUrl})\n`
    : config.auth?.adminPassword !== undefined
      ? '  sign in as admin with MERIDIAN_ADMIN_PASSWORD\n'
      : `  sign in as admin with the password in ${path.join(config.dataDir, 'admin-password')}\n`;
  return (
    `Meridian listening on ${url}\n` +
    // Over HTTPS skopeo verifies the certificate (--dest-cert-dir names a folder holding the authority's ca.crt).
    `  push: skopeo copy ${url.startsWith('https:') ? '--dest-cert-dir CA_DIR' : '--dest-tls-verify=false'}${creds} oci:./layout:tag docker://${new URL(url).host}/REPO:TAG\n` +
    (config.auth ? password : `  WARNING: ${AUTH_OFF_WARNING}\n`)
  );
}
