// Original file: proto/meridian/replica/v1/replica.proto


export interface PurgeRequest {
  /**
   * The region's own name: a region refuses (FAILED_PRECONDITION) a purge meant for another, so
   * an address that now leads elsewhere purges nothing.
   */
  'region'?: (string);
  /**
   * Delete nothing: `counts` says what the region holds.
   */
  'dryRun'?: (boolean);
  /**
   * Items deleted per call at most; 0 for the region's default.
   */
  'pageSize'?: (number);
  /**
   * Also discard the region's own changes still in its outbox (never stored by the control
   * plane, so held nowhere else). Without it, a region with such changes refuses the purge
   * (FAILED_PRECONDITION) and deletes nothing.
   */
  'discardUnrelayed'?: (boolean);
}

export interface PurgeRequest__Output {
  /**
   * The region's own name: a region refuses (FAILED_PRECONDITION) a purge meant for another, so
   * an address that now leads elsewhere purges nothing.
   */
  'region': (string);
  /**
   * Delete nothing: `counts` says what the region holds.
   */
  'dryRun': (boolean);
  /**
   * Items deleted per call at most; 0 for the region's default.
   */
  'pageSize': (number);
  /**
   * Also discard the region's own changes still in its outbox (never stored by the control
   * plane, so held nowhere else). Without it, a region with such changes refuses the purge
   * (FAILED_PRECONDITION) and deletes nothing.
   */
  'discardUnrelayed': (boolean);
}
