import { Inject, Injectable, createParamDecorator, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { MuseError, type Scope } from '@muse/contracts';
import { PUBLIC_METADATA, SCOPE_METADATA, isPublicPath } from '../auth/scope.decorator.js';
import { CALLER_KEY, authRequired, hasScope, type Caller } from './caller.js';

type WithCaller = { url: string; [CALLER_KEY]?: Caller };

/**
 * Applied to every route (APP_GUARD). The auth hook (auth.hook.ts) has
 * already authenticated the request, chosen its project and counted it
 * against the rate limits; this checks the route's declared scope.
 */
@Injectable()
export class CallerGuard implements CanActivate {
  constructor(@Inject(Reflector) private readonly reflector: Reflector) {}

  canActivate(ctx: ExecutionContext): boolean {
    const targets = [ctx.getHandler(), ctx.getClass()];
    const req = ctx.switchToHttp().getRequest<WithCaller>();
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_METADATA, targets) === true || isPublicPath(req.url)) return true;
    const need = this.reflector.getAllAndOverride<Scope | undefined>(SCOPE_METADATA, targets);
    // Deny by default: a route that forgot to declare a scope serves no one.
    if (need === undefined) throw new MuseError('MUSE_ERR_AUTH_FORBIDDEN', 'This route declares no scope, so it is closed');
    const caller = req[CALLER_KEY];
    if (!caller) throw authRequired();
    if (!hasScope(caller.scopes, need)) {
      throw new MuseError('MUSE_ERR_AUTH_FORBIDDEN', `This route needs the "${need}" scope`, { details: { required: need, scopes: caller.scopes } });
    }
    return true;
  }
}

/** The caller the auth hook resolved for this request. */
export const CurrentCaller = createParamDecorator((_data: unknown, ctx: ExecutionContext): Caller => {
  const caller = ctx.switchToHttp().getRequest<WithCaller>()[CALLER_KEY];
  // Only reachable on a public route that asks for a caller: fail closed.
  if (!caller) throw authRequired();
  return caller;
});
