export * from './database.js';
export * from './gateway-process.js';
export * from './oci-client.js';
export * from './services.js';
export * from './prometheus.js';
export * from './cluster-secret.js';
export * from './certificates.js';
export * from './otlp-receiver.js';
