// Original file: proto/meridian/replica/v1/replica.proto


export interface ApplyReply {
  /**
   * False when the region already held something newer (or the same write): nothing changed.
   */
  'applied'?: (boolean);
  'detail'?: (string);
}

export interface ApplyReply__Output {
  /**
   * False when the region already held something newer (or the same write): nothing changed.
   */
  'applied': (boolean);
  'detail': (string);
}
