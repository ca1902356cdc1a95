// Original file: proto/meridian/replica/v1/replica.proto


export interface ListInventoryRequest {
  /**
   * Empty for the first page; then the reply's next_page_token.
   */
  'pageToken'?: (string);
  'pageSize'?: (number);
  /**
   * Re-hash the bytes of each blob of the page: a blob whose bytes are missing or no longer
   * hash to its digest is reported (and recorded) pending, and its bad bytes are not served again.
   * Without it, a blob's state is what the region's metadata records.
   */
  'verify'?: (boolean);
}

export interface ListInventoryRequest__Output {
  /**
   * Empty for the first page; then the reply's next_page_token.
   */
  'pageToken': (string);
  'pageSize': (number);
  /**
   * Re-hash the bytes of each blob of the page: a blob whose bytes are missing or no longer
   * hash to its digest is reported (and recorded) pending, and its bad bytes are not served again.
   * Without it, a blob's state is what the region's metadata records.
   */
  'verify': (boolean);
}
