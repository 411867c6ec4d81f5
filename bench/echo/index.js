// The baseline: the smallest faas-js-runtime CloudEvent function there is. It answers with the event it got.

/** @type {import('faas-js-runtime').CloudEventFunction<unknown, unknown>} */
export const handle = (_context, event) => event;
