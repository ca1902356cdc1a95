// Metrics and tracing for Meridian's services: factories that each service's composition root
// calls; no default global registry (CONTRIBUTING.md, 'Wiring').
export * from './metrics.js';
export * from './http.js';
export * from './cluster-metrics.js';
export * from './tracing.js';
export * from './sdk.js';
export * from './request-sampler.js';
