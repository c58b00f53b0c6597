/**
 * The first import of every service's `main.ts`. ES modules evaluate the first
 * import's graph before the next import's, so what happens here happens before
 * Nest or any other dependency loads: `Intl.DateTimeFormat` is deferred until
 * `runService` starts (see defer-intl.ts for why and what it saves).
 */
import { deferIntl } from './defer-intl.js';

deferIntl();
