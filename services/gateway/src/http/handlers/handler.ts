import type { Request, Response } from 'express';
import type { HttpMethod, RouteParams } from '@meridian/oci';
import type { Registry } from '@meridian/registry';
import type { RequestAccess } from '../access-guard.js';

export interface HandlerContext {
  req: Request;
  res: Response;
  params: Required<Pick<RouteParams, 'name'>> & RouteParams;
  registry: Registry;
  /** What the client may do beyond the route's own action, which the guard has checked already. */
  access: RequestAccess;
}

export type Handler = (ctx: HandlerContext) => Promise<void>;

/** One route's handlers by method; the route table in libs/oci says which methods exist. */
export type RouteHandlers = Partial<Record<HttpMethod, Handler>>;
