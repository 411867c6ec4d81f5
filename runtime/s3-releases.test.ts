import { loadCatalog } from './catalog.ts';
import { releaseKey, releaseOfStorageUri, releaseStorageUri, releasesByAge, releasesToPrune } from './s3-releases.ts';

const base = loadCatalog('config/models.yaml').models.find((m) => m.name === 'anomaly-detector')!;
const model = { ...base, storage: { ...base.storage, kind: 's3' as const, prefix: 'models' } };

describe('releases in a bucket (docs/storage.md "Promotion into the bucket")', () => {
  test('key and storageUri: the release folder, with its trailing slash', () => {
    expect(releaseKey(model, 'r1')).toBe('models/anomaly-detector/releases/r1/model.pkl');
    expect(releaseStorageUri(model, 'b', 'r1')).toBe('s3://b/models/anomaly-detector/releases/r1/');
    expect(releaseKey({ ...model, storage: { ...model.storage, prefix: '' } }, 'r1')).toBe('anomaly-detector/releases/r1/model.pkl');
  });

  test.each([
    ['s3://b/models/anomaly-detector/releases/r1/', 'r1'],
    ['s3://b/models/anomaly-detector/releases/r1', 'r1'],
    ['s3://b/models/anomaly-detector/releases/r1/model.pkl', 'r1'],
    ['s3://b/models/other-model/releases/r1/', undefined],
    ['s3://b/models/anomaly-detector/releases/r1/x/y', undefined],
    ['s3://b/models/anomaly-detector/releases/R_1/', undefined],
    ['pvc://model-storage-pvc/anomaly-detector', undefined],
    [undefined, undefined],
  ])('the release %s names is %s', (uri, release) => {
    expect(releaseOfStorageUri(model, uri)).toBe(release);
  });

  test('pruning keeps the newest releasesKept and never the protected ones; foreign keys are ignored', () => {
    const at = (s: number): Date => new Date(Date.UTC(2026, 10, 30, 10, 0, s));
    const objects = [
      { key: 'models/anomaly-detector/releases/placeholder/model.pkl', lastModified: at(0) },
      { key: 'models/anomaly-detector/releases/placeholder/release.json', lastModified: at(0) },
      { key: 'models/anomaly-detector/releases/r1/model.pkl', lastModified: at(1) },
      { key: 'models/anomaly-detector/releases/r2/model.pkl', lastModified: at(2) },
      { key: 'models/anomaly-detector/releases/r3/model.pkl', lastModified: at(3) },
      { key: 'models/anomaly-detector/releases/notes.txt', lastModified: at(4) },
    ];
    const byAge = releasesByAge(model, objects);
    expect(byAge).toEqual(['placeholder', 'r1', 'r2', 'r3']);
    expect(releasesToPrune(byAge, 2, ['r3', 'r2'])).toEqual(['placeholder', 'r1']);
    // A rollback target older than the newest releasesKept survives.
    expect(releasesToPrune(byAge, 2, ['r3', 'r1'])).toEqual(['placeholder']);
    expect(releasesToPrune(byAge, 5, ['r3'])).toEqual([]);
  });
});
