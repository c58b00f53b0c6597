import { Inject, Injectable, createParamDecorator, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { MuseError, type GatewayConfig } from '@muse/contracts';
import { GATEWAY_CONFIG } from '../gateway.tokens.js';
import { CALLER_KEY, resolveCaller, type Caller } from './caller.js';

type WithCaller = { headers: Record<string, string | string[] | undefined>; [CALLER_KEY]?: Caller };

/** Applied to every route (APP_GUARD): resolves the caller once per request. */
@Injectable()
export class CallerGuard implements CanActivate {
  constructor(@Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig) {}

  canActivate(ctx: ExecutionContext): boolean {
    const req = ctx.switchToHttp().getRequest<WithCaller>();
    req[CALLER_KEY] = resolveCaller(req.headers, { defaultProject: this.config.MUSE_DEFAULT_PROJECT });
    return true;
  }
}

/** The caller the guard resolved for this request. */
export const CurrentCaller = createParamDecorator((_data: unknown, ctx: ExecutionContext): Caller => {
  const caller = ctx.switchToHttp().getRequest<WithCaller>()[CALLER_KEY];
  // Only reachable if a route were registered outside the guard: fail closed.
  if (!caller) throw new MuseError('MUSE_ERR_INTERNAL', 'caller not resolved');
  return caller;
});
