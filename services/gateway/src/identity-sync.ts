import type { Logger } from 'pino';
import type { JWK } from 'jose';
import type { AccessTokenVerifier, IdentityService } from '@meridian/auth';
import type { ControlPlaneHttp } from '@meridian/proto/control-plane-http';
import { changedSignIns, type IdentitySnapshot, type Metadata, type PeerKeyRow } from '@meridian/metadata';

export interface IdentitySyncOptions {
  region: string;
  /** The control plane's admin API, as this region calls it (with its service token). */
  controlPlane: ControlPlaneHttp;
  metadata: Metadata;
  /** Told which users and tokens sign in differently after a round, so it forgets their remembered sign-ins. */
  identities: IdentityService;
  /** Verifiers whose keys become the region's stored ones after each round. */
  verifiers: AccessTokenVerifier[];
  intervalMs: number;
  logger: Logger;
}

/** What the control plane's GET /api/v1/identity-sync answers. */
type SyncAnswer = IdentitySnapshot & { keys: PeerKeyRow[] };

/**
 * A region's copy of the cluster's identities (services/control-plane, http/identities.ts): every
 * round publishes the region's own public keys, reads the users, scope maps, tokens and the
 * cluster's key set, and writes them into the region's database in one transaction. The region
 * authenticates and verifies from that copy alone, so while the control plane is away it goes on
 * deciding with what it read last; a token disabled in the control plane is refused here from
 * the next round on. Each gateway process runs its own rounds (writing nothing when nothing
 * changed) and reloads its verifiers from the database, so processes of a region agree.
 */
export class IdentitySync {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private away = false;
  /** What this process read last: what its remembered sign-ins were made under. */
  private previous: IdentitySnapshot | undefined;

  constructor(private readonly options: IdentitySyncOptions) {}

  /** One round; never throws: a control plane that cannot be reached leaves the copy as it is. */
  async syncOnce(): Promise<void> {
    const { metadata, logger } = this.options;
    try {
      await this.publishOwnKeys();
      const answer = await this.options.controlPlane.json<SyncAnswer>('GET', '/api/v1/identity-sync');
      const own = new Set((await metadata.identities.ownPublicKeys()).map((jwk) => jwk.kid));
      const changed = await metadata.transaction(async (tx) => {
        const identities = await tx.identities.replaceWith(answer);
        const keys = await tx.identities.replacePeerKeys(answer.keys.filter((key) => !own.has(key.kid)));
        return identities || keys;
      });
      // A token disabled in the control plane must not go on signing in from this process's
      // memory, whichever process of the region wrote the change into the database.
      if (this.previous) this.options.identities.forgetSignIns(changedSignIns(this.previous, answer));
      this.previous = answer;
      if (changed) logger.info({ users: answer.users.length, tokens: answer.tokens.length, keys: answer.keys.length }, 'identities copied from the control plane');
      if (this.away) logger.info('identity sync: the control plane answers again');
      this.away = false;
    } catch (err) {
      if (!this.away) logger.warn({ reason: (err as Error).message }, 'identity sync: the control plane cannot be read; the region goes on with the identities it copied last');
      this.away = true;
    }
    await this.reloadKeys().catch((err: unknown) => logger.warn({ reason: (err as Error).message }, 'identity sync: the stored keys cannot be read'));
  }

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.syncOnce().finally(() => (this.running = undefined));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private async reloadKeys(): Promise<void> {
    const keys = (await this.options.metadata.identities.publicKeys()) as JWK[];
    for (const verifier of this.options.verifiers) verifier.replaceKeys(keys);
  }

  private async publishOwnKeys(): Promise<void> {
    for (const publicJwk of await this.options.metadata.identities.ownPublicKeys()) {
      await this.options.controlPlane.send('PUT', `/api/v1/identity-sync/keys/${encodeURIComponent(String(publicJwk.kid))}`, { region: this.options.region, publicJwk });
    }
  }

}
