import type { Request, Response } from 'express';
import type { HttpMethod, RouteParams } from '@meridian/oci';
import type { Registry } from '@meridian/registry';
import type { RequestAccess } from '../access-guard.js';
import type { BlobRedirects } from '../blob-redirects.js';

export interface HandlerContext {
  req: Request;
  res: Response;
  params: Required<Pick<RouteParams, 'name'>> & RouteParams;
  registry: Registry;
  /** What the client may do beyond the route's own action, which the guard has checked already. */
  access: RequestAccess;
  /** Whether a blob GET is answered with a redirect (the router asked), and where to. */
  blobRedirects: BlobRedirects;
}

export type Handler = (ctx: HandlerContext) => Promise<void>;

/** One route's handlers by method; the route table in libs/oci says which methods exist. */
export type RouteHandlers = Partial<Record<HttpMethod, Handler>>;
