// Original file: proto/meridian/replica/v1/replica.proto


export interface FindBlobsRequest {
  'repository'?: (string);
  'digests'?: (string)[];
}

export interface FindBlobsRequest__Output {
  'repository': (string);
  'digests': (string)[];
}
