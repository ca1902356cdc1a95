export * from './permissions.js';
export * from './scopes.js';
export * from './access-tokens.js';
export * from './passwords.js';
export * from './identity-service.js';
export * from './service-tokens.js';
export * from './secret-file.js';
export * from './administrator.js';
