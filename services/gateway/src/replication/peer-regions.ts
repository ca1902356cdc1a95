import { Transform, type Readable } from 'node:stream';
import type { Logger } from 'pino';
import {
  RegionListSchema,
  distanceKm,
  grpc,
  type BlobChunk__Output,
  type Clock__Output,
  type RegionRecord,
  type RegionState,
  type ReplicaClient,
  type ReplicaDialer,
} from '@meridian/proto';
import type { ControlPlaneHttp } from '@meridian/proto/control-plane-http';
import type { PeerBlobHolder, PeerManifest, RegionPeers } from '@meridian/registry';

/** How long the region list is used before it is read again from the control plane. */
const REGIONS_TTL_MS = 5000;
/**
 * A peer that has not answered a lookup by then is left out of it: a miss must not hang on a
 * region that is slow. One that is down refuses at once; a busy one can take seconds.
 */
const LOOKUP_DEADLINE_MS = 10_000;
/**
 * A peer that let a lookup run out of time is not asked again for this long: every miss of the
 * region (each HEAD of a blob a client is about to push) would otherwise wait for it.
 */
const SLOW_PEER_PAUSE_MS = 15_000;
const CONTROL_PLANE_TIMEOUT_MS = 5000;
/** Peers whose store is worth asking: an `adding` one may lack content and says so blob by blob; a draining one still holds what it had. */
const PEER_STATES: ReadonlySet<RegionState> = new Set(['adding', 'active', 'draining']);
/** A region reads through only while it is a member taking work itself: one being drained gets nothing more. */
const READING_STATES: ReadonlySet<RegionState> = new Set(['adding', 'active']);

export interface PeerRegionsOptions {
  region: string;
  /** The control plane's admin API, as this region calls it (with its service token). */
  controlPlane: ControlPlaneHttp;
  /** Opens clients of the peers' replica servers, with this gateway's service tokens. */
  dialer: ReplicaDialer;
  logger: Logger;
}

/**
 * The other regions of the cluster as read-through asks them (libs/registry read-through.ts),
 * over the replica protocol. The regions, their endpoints and coordinates come from the control
 * plane's region list, read at most every few seconds; while the control plane is unreachable
 * the last list read stays in use, so read-through goes on between the regions themselves.
 * Peers are asked nearest first, by great-circle distance from this region's coordinates. A
 * region that is not in the list (not registered yet) or is being drained asks nobody.
 */
export class PeerRegions implements RegionPeers {
  private list: { at: number; regions: Promise<RegionRecord[]> } | undefined;
  private lastRead: RegionRecord[] = [];
  private controlPlaneAway = false;
  private readonly clients = new Map<string, ReplicaClient>();
  /** Peers that let a lookup run out of time, and until when they are passed over. */
  private readonly slowUntil = new Map<string, number>();

  constructor(private readonly options: PeerRegionsOptions) {}

  async findBlobs(repository: string, digests: readonly string[]): Promise<Map<string, PeerBlobHolder[]>> {
    const peers = await this.peers();
    const answers = await Promise.all(
      peers.map((peer) =>
        this.unary<{ blobs: Array<{ digest: string; held: boolean; size: string; linked: boolean }> }>(peer, (client, options, done) =>
          client.findBlobs({ repository, digests: [...digests] }, options, done),
        ),
      ),
    );
    const holders = new Map<string, PeerBlobHolder[]>();
    peers.forEach((peer, i) => {
      for (const blob of answers[i]?.blobs ?? []) {
        if (!blob.held) continue;
        const list = holders.get(blob.digest) ?? [];
        list.push({ region: peer.name, size: Number(blob.size), linked: blob.linked });
        holders.set(blob.digest, list);
      }
    });
    return holders;
  }

  async openBlob(region: string, digest: string, offset: number): Promise<Readable> {
    // The list as it stands, read now if it never was: a fetch for the replication worker may be the first thing asked of the peers.
    const peer = (await this.regions()).find((r) => r.name === region);
    if (!peer) throw new Error(`region ${region} is no longer listed`);
    // Any copy the peer holds will do, whatever its repository: the bytes are verified here.
    const call = this.client(peer).getBlob({ digest, offset, repository: '' });
    const bytes = new Transform({
      writableObjectMode: true,
      transform(chunk: BlobChunk__Output, _encoding, done) {
        done(null, chunk.data);
      },
    });
    call.on('error', (err) => bytes.destroy(err));
    // However the bytes' reader stops (done, failed, gone), the call ends with it.
    bytes.once('close', () => call.cancel());
    call.pipe(bytes);
    return bytes;
  }

  async getManifests(repository: string, reference: string): Promise<PeerManifest[]> {
    const peers = await this.peers();
    const byTag = !reference.includes(':');
    const answers = await Promise.all(
      peers.map((peer) =>
        this.unary<{ digest: string; mediaType: string; payload: Buffer; clock: Clock__Output | null; tagClock: Clock__Output | null }>(peer, (client, options, done) =>
          client.getManifest({ repository, reference }, options, done),
        ),
      ),
    );
    return peers.flatMap((peer, i) => {
      const answer = answers[i];
      const clock = byTag ? answer?.tagClock : answer?.clock;
      if (!answer || !clock || !/^\d{1,20}$/.test(clock.hlc)) return [];
      return [{ region: peer.name, digest: answer.digest, mediaType: answer.mediaType, payload: answer.payload, clock: { hlc: BigInt(clock.hlc), origin: clock.origin } }];
    });
  }

  async cacheBytes(): Promise<number | undefined> {
    return (await this.regions()).find((region) => region.name === this.options.region)?.cacheBytes;
  }

  /**
   * Drops the region list read so far: until the control plane is asked again, no peer is asked.
   * A region being purged (drained first) must not fill itself again from a list that still
   * shows it active.
   */
  forgetRegions(): void {
    this.list = undefined;
    this.lastRead = [];
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  /** The peers to ask, nearest first; none when this region is not a member taking work. */
  private async peers(): Promise<RegionRecord[]> {
    const regions = await this.regions();
    const self = regions.find((region) => region.name === this.options.region);
    if (!self || !READING_STATES.has(self.state)) return [];
    return regions
      .filter((region) => region.name !== self.name && PEER_STATES.has(region.state) && !((this.slowUntil.get(region.name) ?? 0) > Date.now()))
      .map((region) => ({ region, km: distanceKm(self, region) }))
      .sort((a, b) => a.km - b.km || (a.region.name < b.region.name ? -1 : 1))
      .map((entry) => entry.region);
  }

  private regions(): Promise<RegionRecord[]> {
    const now = Date.now();
    if (!this.list || now - this.list.at >= REGIONS_TTL_MS) {
      this.list = { at: now, regions: this.readRegions() };
    }
    return this.list.regions;
  }

  private async readRegions(): Promise<RegionRecord[]> {
    const url = `${this.options.controlPlane.url}/api/v1/regions`;
    try {
      this.lastRead = RegionListSchema.parse(await this.options.controlPlane.json('GET', '/api/v1/regions', undefined, { timeoutMs: CONTROL_PLANE_TIMEOUT_MS })).regions;
      if (this.controlPlaneAway) this.options.logger.info('read-through: the control plane lists the regions again');
      this.controlPlaneAway = false;
    } catch (err) {
      // Once per outage, not once per read: the last list read stays in use meanwhile.
      if (!this.controlPlaneAway) this.options.logger.warn({ err: (err as Error).message, url }, 'read-through: the region list cannot be read; the last one read stays in use');
      this.controlPlaneAway = true;
    }
    return this.lastRead;
  }

  private client(peer: RegionRecord): ReplicaClient {
    let client = this.clients.get(peer.grpc);
    if (!client) this.clients.set(peer.grpc, (client = this.options.dialer.dial(peer)));
    return client;
  }

  /** A lookup on one peer: its answer, or undefined when it fails, lacks the content or is too slow. */
  private unary<Reply>(
    peer: RegionRecord,
    start: (client: ReplicaClient, options: grpc.CallOptions, done: (err: grpc.ServiceError | null, reply?: Reply) => void) => unknown,
  ): Promise<Reply | undefined> {
    return new Promise((resolve) => {
      start(this.client(peer), { deadline: Date.now() + LOOKUP_DEADLINE_MS }, (err, reply) => {
        // Not holding the content is the usual answer; anything else is worth a line when debugging.
        if (err && err.code !== grpc.status.NOT_FOUND) this.options.logger.debug({ region: peer.name, code: err.code, err: err.details }, 'read-through: a peer did not answer');
        if (err?.code === grpc.status.DEADLINE_EXCEEDED) {
          this.slowUntil.set(peer.name, Date.now() + SLOW_PEER_PAUSE_MS);
          this.options.logger.warn({ region: peer.name }, `read-through: ${peer.name} did not answer within ${LOOKUP_DEADLINE_MS / 1000} s; it is not asked for ${SLOW_PEER_PAUSE_MS / 1000} s`);
        }
        resolve(err ? undefined : reply);
      });
    });
  }
}
