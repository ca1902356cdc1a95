import type { Request, Response } from 'express';
import type { HttpMethod, RouteParams } from '@meridian/oci';
import type { Registry } from '@meridian/registry';

export interface HandlerContext {
  req: Request;
  res: Response;
  params: Required<Pick<RouteParams, 'name'>> & RouteParams;
  registry: Registry;
}

export type Handler = (ctx: HandlerContext) => Promise<void>;

/** One route's handlers by method; the route table in libs/oci says which methods exist. */
export type RouteHandlers = Partial<Record<HttpMethod, Handler>>;
