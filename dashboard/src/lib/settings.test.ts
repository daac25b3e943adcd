import { describe, expect, it } from 'vitest';
import { pairsText, parsePairs, parseRepos, reposText, textDiff } from './settings';

describe('build settings as text', () => {
  it('reads name=value lines back and names a bad line', () => {
    const pairs = [
      { name: 'A', value: '1' },
      { name: 'URL', value: 'http://x/?a=b' },
    ];
    expect(parsePairs(pairsText(pairs), 'environment')).toEqual(pairs);
    expect(() => parsePairs('A=1\n# note\nbroken', 'environment')).toThrow('environment, line 2: `broken` is not name=value');
  });

  it('reads repository lines with an optional folder', () => {
    const text = reposText([{ name: 'src', url: 'https://git.example.com/src.git', branch: 'main', subDirectory: 'svc' }]);
    expect(text).toBe('src https://git.example.com/src.git main svc');
    expect(parseRepos(`${text}\nother /srv/other.git dev`, 'sources')[1]).toMatchObject({ name: 'other', url: '/srv/other.git', branch: 'dev', subDirectory: null });
    expect(() => parseRepos('only-a-name', 'sources')).toThrow('sources, line 1');
  });

  it('shows what a change removes and adds', () => {
    expect(textDiff('env', 'A=1\nB=2', 'A=1\nB=3\nC=4')).toEqual([
      { kind: '-', text: 'env: B=2' },
      { kind: '+', text: 'env: B=3' },
      { kind: '+', text: 'env: C=4' },
    ]);
  });
});
