export * from './authenticated-websocket-api';
export * from './auth';
export * from './route-target';
