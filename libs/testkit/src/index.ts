export * from './database.js';
export * from './gateway-process.js';
