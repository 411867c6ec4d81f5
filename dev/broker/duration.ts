// ISO-8601 durations as Knative's delivery spec uses them (backoffDelay, timeout): PT0.2S, PT5M, P1DT2H.
const DURATION =
  /^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

const MS_PER = {
  year: 365 * 86_400_000, // calendar units are approximated, as Go's period.Parse does
  month: 30 * 86_400_000,
  week: 7 * 86_400_000,
  day: 86_400_000,
  hour: 3_600_000,
  minute: 60_000,
  second: 1000,
} as const;

/** Parses an ISO-8601 duration into milliseconds; throws on anything else. */
export function parseIsoDuration(text: string): number {
  const m = DURATION.exec(text.trim().toUpperCase());
  if (!m || text.trim().toUpperCase() === 'P' || text.trim().toUpperCase().endsWith('T')) {
    throw new Error(`invalid ISO-8601 duration "${text}" (expected e.g. PT0.2S, PT30S, PT5M)`);
  }
  const units = [MS_PER.year, MS_PER.month, MS_PER.week, MS_PER.day, MS_PER.hour, MS_PER.minute, MS_PER.second];
  let ms = 0;
  units.forEach((unit, i) => {
    const v = m[i + 1];
    if (v !== undefined) ms += Number(v) * unit;
  });
  return Math.round(ms);
}
