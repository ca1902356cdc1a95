/**
 * The HTTP side of identity and access that a gateway and the control plane both serve: the
 * `Authorization` header's parsing and the identity admin API. Kept apart from the package's
 * main entry so code that only verifies tokens does not load express.
 */
export * from './authorization.js';
export * from './identity-admin-router.js';
