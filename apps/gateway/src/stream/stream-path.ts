/** Where the gateway serves its WebSocket; both sides' message schemas are in contracts. */
export const STREAM_PATH = '/v1/stream';
