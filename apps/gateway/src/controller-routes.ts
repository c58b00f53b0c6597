/**
 * Every route the gateway's Nest controllers declare, read from Nest's own
 * metadata: the specs that hold the OpenAPI table and the scope rules to the
 * real routes walk it.
 */
import 'reflect-metadata';
import { RequestMethod, type Type } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { GATEWAY_CONTROLLERS } from './gateway.module.js';

export interface ControllerRoute {
  /** `METHOD /path/{param}`. */
  route: string;
  controller: Type<unknown>;
  handler: object;
}

export function controllerRoutes(): ControllerRoute[] {
  const out: ControllerRoute[] = [];
  for (const ctrl of GATEWAY_CONTROLLERS as ReadonlyArray<Type<unknown>>) {
    const base = String(Reflect.getMetadata(PATH_METADATA, ctrl) ?? '');
    for (const name of Object.getOwnPropertyNames(ctrl.prototype)) {
      const handler = (ctrl.prototype as Record<string, unknown>)[name];
      if (typeof handler !== 'function' || name === 'constructor') continue;
      const path = Reflect.getMetadata(PATH_METADATA, handler) as string | undefined;
      const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
      if (path === undefined || method === undefined) continue;
      const full = ['', base, path].join('/').replace(/\/+/g, '/').replace(/\/$/, '').replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      out.push({ route: `${RequestMethod[method]} ${full}`, controller: ctrl, handler });
    }
  }
  return out;
}
