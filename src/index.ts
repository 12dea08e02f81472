export * from './api-base';
export * from './authenticated-websocket-api';
export * from './fan-out';
export * from './auth';
export * from './route-target';
export * from './monitoring';
export * from './custom-domain';
export * from './channels';
