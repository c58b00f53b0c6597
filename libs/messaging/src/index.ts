export { JetStreamBus } from './jetstream-bus.js';
export type { BusOptions, CommandContext, Subscription$ } from './jetstream-bus.js';
export { WrongLastSequenceError, isWrongLastSequence } from './errors.js';
export { encodeJson, decodeJson } from './codec.js';
