// Original file: proto/meridian/replica/v1/replica.proto


export interface Clock {
  /**
   * Hybrid logical clock: wall milliseconds << 16 | logical counter, as a decimal string.
   */
  'hlc'?: (string);
  'origin'?: (string);
}

export interface Clock__Output {
  /**
   * Hybrid logical clock: wall milliseconds << 16 | logical counter, as a decimal string.
   */
  'hlc': (string);
  'origin': (string);
}
