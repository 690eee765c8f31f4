import type { WorkflowDeps } from '../use-cases/deps.js';

/** What the self-service pages (registration mail, links, password reset, /account) need: the workflows' dependencies. */
export type SelfServiceDeps = WorkflowDeps;
