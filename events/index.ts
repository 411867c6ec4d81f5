// Public API of the CloudEvent catalog.
export * from './names.ts';
export * from './text.ts';
export * from './catalog.ts';
export * from './build.ts';
export * from './upstream/common.ts';
export * from './upstream/pingsource.ts';
export * from './upstream/apiserversource.ts';
export * from './upstream/tekton.ts';
export * from './upstream/alertmanager.ts';
export * from './upstream/github.ts';
