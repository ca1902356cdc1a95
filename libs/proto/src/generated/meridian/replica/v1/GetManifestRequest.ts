// Original file: proto/meridian/replica/v1/replica.proto


export interface GetManifestRequest {
  'repository'?: (string);
  /**
   * A digest ("sha256:...") or a tag.
   */
  'reference'?: (string);
}

export interface GetManifestRequest__Output {
  'repository': (string);
  /**
   * A digest ("sha256:...") or a tag.
   */
  'reference': (string);
}
