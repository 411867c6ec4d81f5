// The baseline: the smallest faas-js-runtime CloudEvent function there is. It answers with the event it got.
export function handle(_context, event) {
  return event;
}
