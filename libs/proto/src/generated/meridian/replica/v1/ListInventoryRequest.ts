// Original file: proto/meridian/replica/v1/replica.proto


export interface ListInventoryRequest {
  /**
   * Empty for the first page; then the reply's next_page_token.
   */
  'pageToken'?: (string);
  'pageSize'?: (number);
}

export interface ListInventoryRequest__Output {
  /**
   * Empty for the first page; then the reply's next_page_token.
   */
  'pageToken': (string);
  'pageSize': (number);
}
