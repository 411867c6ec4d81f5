// Minimal OpenAPI v3 documents: just enough for kubectl to learn that the server validates fields itself
// (`fieldValidation` on every PATCH), so it never needs the protobuf OpenAPI v2 download.
import { apiVersionOf } from './registry.ts';
import type { Registry } from './registry.ts';

export function openApiV3Root(registry: Registry): object {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  const add = (group: string, version: string): void => {
    const key = group ? `apis/${group}/${version}` : `api/${version}`;
    paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${registry.all().length}` };
  };
  add('', 'v1');
  for (const g of registry.groups()) for (const v of g.versions) add(g.name, v);
  return { paths };
}

export function openApiV3GroupVersion(registry: Registry, group: string, version: string): object | undefined {
  const defs = registry.inGroupVersion(group, version);
  if (defs.length === 0) return undefined;
  const paths: Record<string, unknown> = {};
  const prefix = group ? `/apis/${group}/${version}` : `/api/${version}`;
  for (const d of defs) {
    const gvk = [{ group, version, kind: d.kind }];
    const path = d.namespaced ? `${prefix}/namespaces/{namespace}/${d.resource}/{name}` : `${prefix}/${d.resource}/{name}`;
    paths[path] = {
      patch: {
        operationId: `patch${d.kind}`,
        'x-kubernetes-group-version-kind': gvk[0],
        'x-kubernetes-action': 'patch',
        parameters: [
          { name: 'dryRun', in: 'query', schema: { type: 'string' } },
          { name: 'fieldManager', in: 'query', schema: { type: 'string' } },
          { name: 'fieldValidation', in: 'query', schema: { type: 'string' } },
        ],
        responses: { '200': { description: 'OK' } },
      },
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: apiVersionOf(group, version) },
    paths,
    components: { schemas: {} },
  };
}
