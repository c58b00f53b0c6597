export { JetStreamBus } from './jetstream-bus.js';
export type { BusHost, BusOptions, CommandContext, Subscription$ } from './jetstream-bus.js';
export { WrongLastSequenceError, isWrongLastSequence } from './errors.js';
export { encodeJson, decodeJson } from './codec.js';
export { RunEventFeed } from './run-event-feed.js';
export type { RunEventFeedOptions } from './run-event-feed.js';
