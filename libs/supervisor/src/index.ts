// Running a service as one process per core (node:cluster): the supervisor in the primary, and
// what a worker tells it. Shared by the gateway and the router (CONTRIBUTING.md, 'Layout').
export * from './supervisor.js';
export * from './worker.js';
export * from './stop-serving.js';
