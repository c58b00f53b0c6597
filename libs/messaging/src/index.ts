export { JetStreamBus, natsAuthFromConfig } from './jetstream-bus.js';
export type { BusHost, BusOptions, CommandContext, NatsAuth, Subscription$ } from './jetstream-bus.js';
export { natsServerConfig, servicePermissions, NATS_SERVICE_ROLES } from './nats-permissions.js';
export type { NatsPermissions, NatsServerConfigOptions, NatsServiceRole, NatsUserEntry } from './nats-permissions.js';
export { WrongLastSequenceError, isWrongLastSequence } from './errors.js';
export { encodeJson, decodeJson } from './codec.js';
export { RunEventFeed } from './run-event-feed.js';
export type { RunEventFeedOptions } from './run-event-feed.js';
