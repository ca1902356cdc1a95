export * from './digest.js';
export * from './names.js';
export * from './media-types.js';
export * from './manifest.js';
export * from './errors.js';
export * from './routes.js';
export * from './pagination.js';
