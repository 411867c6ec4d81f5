// Shared shapes of the emulator: objects, resource references, watch events.

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  [key: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [key: string]: unknown;
}

/** A stored object always has its identity filled in. */
export interface StoredObject extends KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta & { name: string; uid: string; resourceVersion: string; creationTimestamp: string };
}

/** Group/version/resource, the way URLs name a collection. */
export interface ResourceRef {
  group: string;
  version: string;
  resource: string;
}

/** Either a GVR or the apiVersion+kind pair carried by objects. */
export type ResourceSelector = ResourceRef | { apiVersion: string; kind: string };

export interface ObjectKey {
  name: string;
  namespace?: string;
}

export const WatchEventType = {
  Added: 'ADDED',
  Modified: 'MODIFIED',
  Deleted: 'DELETED',
  Bookmark: 'BOOKMARK',
  Error: 'ERROR',
} as const;
export type WatchEventType = (typeof WatchEventType)[keyof typeof WatchEventType];

/** One change in the store, as recorded in the history ring and sent to subscribers. */
export interface StoreEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** group + '/' + resource (plural), independent of version. */
  storageKey: string;
  resourceVersion: number;
  object: StoredObject;
  /** The object before the change (MODIFIED only); lets selector watches turn edges into ADDED/DELETED. */
  oldObject?: StoredObject;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

export type PropagationPolicy = 'Foreground' | 'Background' | 'Orphan';
