// Original file: proto/meridian/replica/v1/replica.proto


export interface HealthReply {
  'region'?: (string);
  'ready'?: (boolean);
  /**
   * When not ready: the part that failed ("database", "blob store") and why.
   */
  'detail'?: (string);
}

export interface HealthReply__Output {
  'region': (string);
  'ready': (boolean);
  /**
   * When not ready: the part that failed ("database", "blob store") and why.
   */
  'detail': (string);
}
