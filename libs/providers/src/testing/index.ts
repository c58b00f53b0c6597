export { FakeModelServer } from './fake-model-server.js';
export type { FakeBehaviour, FakeProtocol, FakeRequest, FakeModelServerOptions } from './fake-model-server.js';
