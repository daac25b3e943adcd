import { describe, expect, it } from 'vitest';
import { labelChoices, labelsByInstance, labelText, matchesLabel, parseLabelFilter } from './labels';

const canary = [
  { name: 'ring', value: 'canary' },
  { name: 'zone', value: 'eu' },
];

describe('labels', () => {
  it('reads a filter by name and value, or by name alone', () => {
    expect(parseLabelFilter(' ring = canary ')).toEqual({ name: 'ring', value: 'canary' });
    expect(parseLabelFilter('ring')).toEqual({ name: 'ring', value: null });
    expect(parseLabelFilter('ring=')).toEqual({ name: 'ring', value: '' });
    expect(parseLabelFilter('  ')).toBeNull();
    expect(parseLabelFilter(null)).toBeNull();
  });

  it('matches the name and the value, any value for a name alone', () => {
    expect(matchesLabel(canary, parseLabelFilter('ring=canary'))).toBe(true);
    expect(matchesLabel(canary, parseLabelFilter('ring=stable'))).toBe(false);
    expect(matchesLabel(canary, parseLabelFilter('zone'))).toBe(true);
    expect(matchesLabel(canary, parseLabelFilter('rack'))).toBe(false);
    expect(matchesLabel([], parseLabelFilter('ring'))).toBe(false);
    expect(matchesLabel([], null)).toBe(true);
  });

  it('collects each instance once across services, and the choices sorted', () => {
    const by = labelsByInstance([
      { instances: [{ instance: 'vm-1', labels: canary }, { instance: 'eu-1', labels: [] }] },
      { instances: [{ instance: 'vm-1', labels: [] }, { instance: 'vm-2', labels: [{ name: 'ring', value: 'a' }] }] },
    ]);
    expect(by.get('vm-1')).toBe(canary);
    expect(by.get('eu-1')).toEqual([]);
    expect(labelChoices(by)).toEqual(['ring=a', 'ring=canary', 'zone=eu']);
    expect(labelText(canary[0])).toBe('ring=canary');
  });
});
