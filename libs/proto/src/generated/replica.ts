import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { ApplyDeleteRequest as _meridian_replica_v1_ApplyDeleteRequest, ApplyDeleteRequest__Output as _meridian_replica_v1_ApplyDeleteRequest__Output } from './meridian/replica/v1/ApplyDeleteRequest.js';
import type { ApplyManifestRequest as _meridian_replica_v1_ApplyManifestRequest, ApplyManifestRequest__Output as _meridian_replica_v1_ApplyManifestRequest__Output } from './meridian/replica/v1/ApplyManifestRequest.js';
import type { ApplyReply as _meridian_replica_v1_ApplyReply, ApplyReply__Output as _meridian_replica_v1_ApplyReply__Output } from './meridian/replica/v1/ApplyReply.js';
import type { BlobChunk as _meridian_replica_v1_BlobChunk, BlobChunk__Output as _meridian_replica_v1_BlobChunk__Output } from './meridian/replica/v1/BlobChunk.js';
import type { BlobHeader as _meridian_replica_v1_BlobHeader, BlobHeader__Output as _meridian_replica_v1_BlobHeader__Output } from './meridian/replica/v1/BlobHeader.js';
import type { BlobHolding as _meridian_replica_v1_BlobHolding, BlobHolding__Output as _meridian_replica_v1_BlobHolding__Output } from './meridian/replica/v1/BlobHolding.js';
import type { BlobPresence as _meridian_replica_v1_BlobPresence, BlobPresence__Output as _meridian_replica_v1_BlobPresence__Output } from './meridian/replica/v1/BlobPresence.js';
import type { BlobRef as _meridian_replica_v1_BlobRef, BlobRef__Output as _meridian_replica_v1_BlobRef__Output } from './meridian/replica/v1/BlobRef.js';
import type { Clock as _meridian_replica_v1_Clock, Clock__Output as _meridian_replica_v1_Clock__Output } from './meridian/replica/v1/Clock.js';
import type { FetchBlobReply as _meridian_replica_v1_FetchBlobReply, FetchBlobReply__Output as _meridian_replica_v1_FetchBlobReply__Output } from './meridian/replica/v1/FetchBlobReply.js';
import type { FetchBlobRequest as _meridian_replica_v1_FetchBlobRequest, FetchBlobRequest__Output as _meridian_replica_v1_FetchBlobRequest__Output } from './meridian/replica/v1/FetchBlobRequest.js';
import type { FindBlobsReply as _meridian_replica_v1_FindBlobsReply, FindBlobsReply__Output as _meridian_replica_v1_FindBlobsReply__Output } from './meridian/replica/v1/FindBlobsReply.js';
import type { FindBlobsRequest as _meridian_replica_v1_FindBlobsRequest, FindBlobsRequest__Output as _meridian_replica_v1_FindBlobsRequest__Output } from './meridian/replica/v1/FindBlobsRequest.js';
import type { GetBlobRequest as _meridian_replica_v1_GetBlobRequest, GetBlobRequest__Output as _meridian_replica_v1_GetBlobRequest__Output } from './meridian/replica/v1/GetBlobRequest.js';
import type { GetManifestRequest as _meridian_replica_v1_GetManifestRequest, GetManifestRequest__Output as _meridian_replica_v1_GetManifestRequest__Output } from './meridian/replica/v1/GetManifestRequest.js';
import type { HealthReply as _meridian_replica_v1_HealthReply, HealthReply__Output as _meridian_replica_v1_HealthReply__Output } from './meridian/replica/v1/HealthReply.js';
import type { HealthRequest as _meridian_replica_v1_HealthRequest, HealthRequest__Output as _meridian_replica_v1_HealthRequest__Output } from './meridian/replica/v1/HealthRequest.js';
import type { InventoryBlob as _meridian_replica_v1_InventoryBlob, InventoryBlob__Output as _meridian_replica_v1_InventoryBlob__Output } from './meridian/replica/v1/InventoryBlob.js';
import type { InventoryManifest as _meridian_replica_v1_InventoryManifest, InventoryManifest__Output as _meridian_replica_v1_InventoryManifest__Output } from './meridian/replica/v1/InventoryManifest.js';
import type { InventoryTag as _meridian_replica_v1_InventoryTag, InventoryTag__Output as _meridian_replica_v1_InventoryTag__Output } from './meridian/replica/v1/InventoryTag.js';
import type { LinkBlobsReply as _meridian_replica_v1_LinkBlobsReply, LinkBlobsReply__Output as _meridian_replica_v1_LinkBlobsReply__Output } from './meridian/replica/v1/LinkBlobsReply.js';
import type { LinkBlobsRequest as _meridian_replica_v1_LinkBlobsRequest, LinkBlobsRequest__Output as _meridian_replica_v1_LinkBlobsRequest__Output } from './meridian/replica/v1/LinkBlobsRequest.js';
import type { ListInventoryReply as _meridian_replica_v1_ListInventoryReply, ListInventoryReply__Output as _meridian_replica_v1_ListInventoryReply__Output } from './meridian/replica/v1/ListInventoryReply.js';
import type { ListInventoryRequest as _meridian_replica_v1_ListInventoryRequest, ListInventoryRequest__Output as _meridian_replica_v1_ListInventoryRequest__Output } from './meridian/replica/v1/ListInventoryRequest.js';
import type { ManifestReply as _meridian_replica_v1_ManifestReply, ManifestReply__Output as _meridian_replica_v1_ManifestReply__Output } from './meridian/replica/v1/ManifestReply.js';
import type { PurgeCounts as _meridian_replica_v1_PurgeCounts, PurgeCounts__Output as _meridian_replica_v1_PurgeCounts__Output } from './meridian/replica/v1/PurgeCounts.js';
import type { PurgeReply as _meridian_replica_v1_PurgeReply, PurgeReply__Output as _meridian_replica_v1_PurgeReply__Output } from './meridian/replica/v1/PurgeReply.js';
import type { PurgeRequest as _meridian_replica_v1_PurgeRequest, PurgeRequest__Output as _meridian_replica_v1_PurgeRequest__Output } from './meridian/replica/v1/PurgeRequest.js';
import type { PutBlobReply as _meridian_replica_v1_PutBlobReply, PutBlobReply__Output as _meridian_replica_v1_PutBlobReply__Output } from './meridian/replica/v1/PutBlobReply.js';
import type { PutBlobRequest as _meridian_replica_v1_PutBlobRequest, PutBlobRequest__Output as _meridian_replica_v1_PutBlobRequest__Output } from './meridian/replica/v1/PutBlobRequest.js';
import type { ReplicaClient as _meridian_replica_v1_ReplicaClient, ReplicaDefinition as _meridian_replica_v1_ReplicaDefinition } from './meridian/replica/v1/Replica.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  meridian: {
    replica: {
      v1: {
        ApplyDeleteRequest: MessageTypeDefinition<_meridian_replica_v1_ApplyDeleteRequest, _meridian_replica_v1_ApplyDeleteRequest__Output>
        ApplyManifestRequest: MessageTypeDefinition<_meridian_replica_v1_ApplyManifestRequest, _meridian_replica_v1_ApplyManifestRequest__Output>
        ApplyReply: MessageTypeDefinition<_meridian_replica_v1_ApplyReply, _meridian_replica_v1_ApplyReply__Output>
        BlobChunk: MessageTypeDefinition<_meridian_replica_v1_BlobChunk, _meridian_replica_v1_BlobChunk__Output>
        BlobHeader: MessageTypeDefinition<_meridian_replica_v1_BlobHeader, _meridian_replica_v1_BlobHeader__Output>
        BlobHolding: MessageTypeDefinition<_meridian_replica_v1_BlobHolding, _meridian_replica_v1_BlobHolding__Output>
        BlobPresence: MessageTypeDefinition<_meridian_replica_v1_BlobPresence, _meridian_replica_v1_BlobPresence__Output>
        BlobRef: MessageTypeDefinition<_meridian_replica_v1_BlobRef, _meridian_replica_v1_BlobRef__Output>
        Clock: MessageTypeDefinition<_meridian_replica_v1_Clock, _meridian_replica_v1_Clock__Output>
        FetchBlobReply: MessageTypeDefinition<_meridian_replica_v1_FetchBlobReply, _meridian_replica_v1_FetchBlobReply__Output>
        FetchBlobRequest: MessageTypeDefinition<_meridian_replica_v1_FetchBlobRequest, _meridian_replica_v1_FetchBlobRequest__Output>
        FindBlobsReply: MessageTypeDefinition<_meridian_replica_v1_FindBlobsReply, _meridian_replica_v1_FindBlobsReply__Output>
        FindBlobsRequest: MessageTypeDefinition<_meridian_replica_v1_FindBlobsRequest, _meridian_replica_v1_FindBlobsRequest__Output>
        GetBlobRequest: MessageTypeDefinition<_meridian_replica_v1_GetBlobRequest, _meridian_replica_v1_GetBlobRequest__Output>
        GetManifestRequest: MessageTypeDefinition<_meridian_replica_v1_GetManifestRequest, _meridian_replica_v1_GetManifestRequest__Output>
        HealthReply: MessageTypeDefinition<_meridian_replica_v1_HealthReply, _meridian_replica_v1_HealthReply__Output>
        HealthRequest: MessageTypeDefinition<_meridian_replica_v1_HealthRequest, _meridian_replica_v1_HealthRequest__Output>
        InventoryBlob: MessageTypeDefinition<_meridian_replica_v1_InventoryBlob, _meridian_replica_v1_InventoryBlob__Output>
        InventoryManifest: MessageTypeDefinition<_meridian_replica_v1_InventoryManifest, _meridian_replica_v1_InventoryManifest__Output>
        InventoryTag: MessageTypeDefinition<_meridian_replica_v1_InventoryTag, _meridian_replica_v1_InventoryTag__Output>
        LinkBlobsReply: MessageTypeDefinition<_meridian_replica_v1_LinkBlobsReply, _meridian_replica_v1_LinkBlobsReply__Output>
        LinkBlobsRequest: MessageTypeDefinition<_meridian_replica_v1_LinkBlobsRequest, _meridian_replica_v1_LinkBlobsRequest__Output>
        ListInventoryReply: MessageTypeDefinition<_meridian_replica_v1_ListInventoryReply, _meridian_replica_v1_ListInventoryReply__Output>
        ListInventoryRequest: MessageTypeDefinition<_meridian_replica_v1_ListInventoryRequest, _meridian_replica_v1_ListInventoryRequest__Output>
        ManifestReply: MessageTypeDefinition<_meridian_replica_v1_ManifestReply, _meridian_replica_v1_ManifestReply__Output>
        PurgeCounts: MessageTypeDefinition<_meridian_replica_v1_PurgeCounts, _meridian_replica_v1_PurgeCounts__Output>
        PurgeReply: MessageTypeDefinition<_meridian_replica_v1_PurgeReply, _meridian_replica_v1_PurgeReply__Output>
        PurgeRequest: MessageTypeDefinition<_meridian_replica_v1_PurgeRequest, _meridian_replica_v1_PurgeRequest__Output>
        PutBlobReply: MessageTypeDefinition<_meridian_replica_v1_PutBlobReply, _meridian_replica_v1_PutBlobReply__Output>
        PutBlobRequest: MessageTypeDefinition<_meridian_replica_v1_PutBlobRequest, _meridian_replica_v1_PutBlobRequest__Output>
        Replica: SubtypeConstructor<typeof grpc.Client, _meridian_replica_v1_ReplicaClient> & { service: _meridian_replica_v1_ReplicaDefinition }
      }
    }
  }
}

