/**
 * Deferred `Intl.DateTimeFormat` for service start (see boot.ts): while the
 * service's modules load, `Intl.DateTimeFormat` builds formatters on
 * first use instead of at construction, and `runService` puts the real
 * constructor back before it does anything else.
 *
 * Why: `@nestjs/common`'s ConsoleLogger builds an `Intl.DateTimeFormat` when
 * its module loads, whether or not anything ever logs through it (Muse logs
 * through pino and never does). Building one maps the ICU date and locale
 * data of the node binary into memory and initialises it: about 6.5 MB of
 * file-backed pages and 2 MB of heap, in every service, at idle. Measured on
 * the gateway at 6 s after start, RSS 114.3 MB eager against 107.4 MB
 * deferred; the artifact store 90.9 against 83.9 MB. A preload that traced
 * every `Intl` constructor found this the only one at start in all six
 * services.
 *
 * A deferred formatter is an object whose prototype is the real
 * `Intl.DateTimeFormat.prototype` (so `instanceof` holds) and which builds the
 * real formatter the first time any of its properties is read, then answers
 * every read from it. Invalid locales or options throw at that first read, not
 * at construction; only formatters created while modules load are deferred.
 */
const RealDateTimeFormat = Intl.DateTimeFormat;

function deferredFormatter(locales?: Intl.LocalesArgument, options?: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  let real: Intl.DateTimeFormat | undefined;
  return new Proxy(Object.create(RealDateTimeFormat.prototype) as Intl.DateTimeFormat, {
    get(_target, key) {
      real ??= new RealDateTimeFormat(locales, options);
      const value: unknown = Reflect.get(real, key, real);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(real) : value;
    },
  });
}

/** Callable with or without `new`, like the real constructor. */
const DeferredDateTimeFormat = function DateTimeFormat(locales?: Intl.LocalesArgument, options?: Intl.DateTimeFormatOptions) {
  return deferredFormatter(locales, options);
} as unknown as typeof Intl.DateTimeFormat;
Object.defineProperty(DeferredDateTimeFormat, 'prototype', { value: RealDateTimeFormat.prototype });
Object.defineProperty(DeferredDateTimeFormat, 'supportedLocalesOf', { value: RealDateTimeFormat.supportedLocalesOf.bind(RealDateTimeFormat) });

/** Makes `Intl.DateTimeFormat` deferred; idempotent. */
export function deferIntl(): void {
  Object.defineProperty(Intl, 'DateTimeFormat', { value: DeferredDateTimeFormat, writable: true, configurable: true, enumerable: false });
}

/** Puts the real `Intl.DateTimeFormat` back; formatters already deferred keep working. Idempotent. */
export function restoreIntl(): void {
  Object.defineProperty(Intl, 'DateTimeFormat', { value: RealDateTimeFormat, writable: true, configurable: true, enumerable: false });
}

/** Whether `Intl.DateTimeFormat` is deferred right now. */
export function intlDeferred(): boolean {
  return Intl.DateTimeFormat === DeferredDateTimeFormat;
}
