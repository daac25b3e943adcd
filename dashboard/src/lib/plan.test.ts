import { describe, expect, it } from 'vitest';
import { instancesLine, summarize, wavesLine, type PlanInput } from './plan';

const empty: PlanInput = { valid: true, problems: [], baseProblems: [], commonSettingsChanged: false, profiles: [], unknown: [], services: [] };

const service = (over: Partial<PlanInput['services'][number]>): PlanInput['services'][number] => ({
  service: 'api',
  change: 'CHANGED',
  consumers: [],
  instances: [],
  knownBad: [],
  profilesJoined: [],
  profilesLeft: [],
  settingsChanged: false,
  ...over,
});

describe('plan', () => {
  it('says a version change, where its image comes from and who updates', () => {
    const plan = summarize({
      ...empty,
      services: [
        service({
          client: { from: 'acme-1.0.0', to: 'acme-1.0.1' },
          clientImage: 'BUILD',
          instances: [
            { role: null, instances: ['vm-1', 'vm-2'] },
            { role: 'blue', instances: ['vm-3'] },
          ],
          consumers: ['eu'],
        }),
        service({ service: 'web', change: 'ADDED', developer: { from: null, to: 'acme-2.0.0' }, developerImage: 'PRESENT' }),
      ],
    });
    expect(plan.headline).toBe('2 services change; 1 build needed; 3 instance updates');
    expect(plan.services[0]).toEqual({
      service: 'api',
      change: null,
      builds: true,
      updates: 3,
      lines: ['client acme-1.0.0 → acme-1.0.1 (needs a build)', '3 instances would update: vm-1, vm-2, vm-3 (blue)', 'consumers receive it: eu'],
    });
    expect(plan.services[1].change).toBe('added');
    expect(plan.services[1].lines).toEqual(['developer none → acme-2.0.0 (image present)']);
    expect(plan.warnings).toEqual([]);
  });

  it('puts known-bad versions desired again and a bad base among the warnings', () => {
    const plan = summarize({
      ...empty,
      baseProblems: [{ path: 'profiles.yaml', line: 3, column: null, message: 'unknown service' }],
      services: [service({ client: { from: 'acme-1.0.0', to: 'acme-1.0.1' }, clientImage: 'PRESENT', knownBad: [{ version: 'acme-1.0.1', reason: 'exited with 3' }] })],
    });
    expect(plan.warnings).toEqual(['api acme-1.0.1 is known-bad and desired again: exited with 3', 'the base is invalid (taken as empty): profiles.yaml:3: unknown service']);
  });

  it('lists every validation problem of an invalid head with file:line:column', () => {
    const plan = summarize({ ...empty, valid: false, problems: [{ path: 'desired/client.yaml', line: 2, column: 7, message: 'not a version' }] });
    expect(plan.problems).toEqual(['desired/client.yaml:2:7: not a version']);
    expect(plan.headline).toBe('Invalid: 1 problem; merging it changes nothing until fixed');
  });

  it('notes profiles, common settings, renames and what is not known', () => {
    const plan = summarize({
      ...empty,
      commonSettingsChanged: true,
      profiles: [{ profile: 'web', added: ['api'], removed: ['old'] }],
      unknown: ['instances: no distribution'],
      services: [service({ change: 'RENAMED', renamedFrom: 'api-old', settingsChanged: true })],
    });
    expect(plan.notes).toEqual(['common.yaml changes: every service’s build settings', 'profile web gains api', 'profile web loses old', 'not known: instances: no distribution']);
    expect(plan.services[0].change).toBe('renamed from api-old');
    expect(plan.services[0].lines).toEqual(['build settings change']);
    expect(summarize(empty).headline).toBe('No service changes');
  });

  it('writes instances in no role bare and the others with their role', () => {
    expect(instancesLine([{ role: 'green', instances: ['a'] }, { instances: ['b', 'c'] }])).toBe('a (green), b, c');
    const fleet = Array.from({ length: 2500 }, (_, i) => `vm-${String(i).padStart(4, '0')}`);
    expect(instancesLine([{ role: 'green', instances: ['a'] }, { instances: fleet }])).toBe(
      'a (green), vm-0000, vm-0001, vm-0002, vm-0003, vm-0004, vm-0005, vm-0006, vm-0007, vm-0008 and 2491 more',
    );
  });

  it('says which wave a new client version starts with, and nothing without waves', () => {
    const plan = summarize({
      ...empty,
      services: [service({ client: { from: 'acme-1.0.0', to: 'acme-1.0.1' }, clientImage: 'PRESENT', waves: ['canary', 'europe', 'everyone'] }), service({ service: 'web', client: { from: 'acme-1.0.0', to: 'acme-1.0.1' }, clientImage: 'PRESENT', waves: [] })],
    });
    expect(plan.services[0].lines).toEqual(['client acme-1.0.0 → acme-1.0.1 (image present)', 'rolls out by waves: starts with canary, then europe, everyone']);
    expect(plan.services[1].lines).toEqual(['client acme-1.0.0 → acme-1.0.1 (image present)']);
    expect(wavesLine(['only'])).toBe('rolls out by waves: starts with only');
  });
});
