//! Hosts: the state commit each reporting instance is on (what its updater last fully
//! applied), whether that is the followed branch's tip, and the filter "hosts not yet on
//! commit X" (`instanceCommits(notOn:)`: a descendant of X counts as on it, an unknown
//! commit as not), and each host's labels (updater.yaml; rollout waves select by them),
//! filtered by one (`ring=canary`, or `ring` for any value). The filters live in the URL
//! (`?notOn=`, `?label=`), so a link can share them.
import { useEffect, useMemo, useState } from 'react';
import { Autocomplete, Badge, Button, Code, Group, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useSearchParams } from 'react-router';
import { graphql } from '../gql';
import { request } from '../api/client';
import { Problem } from '../components/Problem';
import { commitPlace, PLACE_LABEL, type CommitPlace } from '../lib/commits';
import { labelChoices, labelsByInstance, labelText, matchesLabel, parseLabelFilter } from '../lib/labels';
import { ago, short } from '../lib/format';

const Hosts = graphql(`
  query Hosts($notOn: String) {
    instanceCommits(notOn: $notOn) {
      instance
      stateCommit
      time
    }
    status {
      stateRepo {
        branch
        tip
        commit
      }
      services {
        instances {
          instance
          labels {
            name
            value
          }
        }
      }
    }
  }
`);

const PLACE_COLOR: Record<CommitPlace, string> = { tip: 'teal', 'in-force': 'yellow', older: 'orange', unknown: 'gray' };

export default function HostsPage() {
  const [params, setParams] = useSearchParams();
  const notOn = params.get('notOn');
  const label = params.get('label');
  const [typed, setTyped] = useState(notOn ?? '');
  const [typedLabel, setTypedLabel] = useState(label ?? '');
  useEffect(() => setTyped(notOn ?? ''), [notOn]);
  useEffect(() => setTypedLabel(label ?? ''), [label]);
  const { data, error } = useQuery({ queryKey: ['hosts', notOn], queryFn: () => request(Hosts, { notOn }), refetchInterval: 10_000 });
  const repo = data?.status.stateRepo;
  const labels = useMemo(() => labelsByInstance(data?.status.services ?? []), [data]);
  const wanted = parseLabelFilter(label);
  const hosts = (data?.instanceCommits ?? []).filter((host) => matchesLabel(labels.get(host.instance) ?? [], wanted));
  /** Sets one filter of the URL, keeping the other. */
  const set = (name: 'notOn' | 'label', value: string) => {
    const next = new URLSearchParams(params);
    if (value.trim()) next.set(name, value.trim());
    else next.delete(name);
    setParams(next);
  };
  const filter = (value: string) => set('notOn', value);

  return (
    <Stack>
      <Title order={2}>Hosts</Title>
      <Text size="sm" c="dimmed">
        The state commit each instance is on: the commit whose desired versions its updater last applied to every service it runs.
        {repo && (
          <>
            {' '}
            {repo.branch} is at <Code>{short(repo.tip)}</Code>.
          </>
        )}
      </Text>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          filter(typed);
        }}
      >
        <Group align="flex-end">
          <TextInput label="Hosts not yet on commit" placeholder="a commit id (short or full)" value={typed} onChange={(e) => setTyped(e.currentTarget.value)} w={320} styles={{ input: { fontFamily: 'var(--mantine-font-family-monospace)' } }} />
          <Button type="submit" variant="default">
            Filter
          </Button>
          {repo?.tip && (
            <Button variant="default" onClick={() => filter(repo.tip ?? '')}>
              Not on the tip
            </Button>
          )}
          {notOn && (
            <Button variant="subtle" onClick={() => filter('')}>
              Every host
            </Button>
          )}
        </Group>
      </form>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          set('label', typedLabel);
        }}
      >
        <Group align="flex-end">
          <Autocomplete label="With label" placeholder="ring=canary, or ring" value={typedLabel} onChange={setTypedLabel} onOptionSubmit={(value) => set('label', value)} data={labelChoices(labels)} w={320} />
          <Button type="submit" variant="default">
            Filter by label
          </Button>
          {label && (
            <Button variant="subtle" onClick={() => set('label', '')}>
              Any label
            </Button>
          )}
        </Group>
      </form>
      <Problem error={error} />
      {data && (
        <Text size="sm" data-testid="hosts-count">
          {`${hosts.length} host${hosts.length === 1 ? '' : 's'}`}
          {notOn ? ` not yet on ${short(notOn)}` : ' reporting'}
          {wanted && ` with label ${wanted.value === null ? wanted.name : labelText({ name: wanted.name, value: wanted.value })}`}
        </Text>
      )}
      {data && repo && (
        <Table striped aria-label="Hosts">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Instance</Table.Th>
              <Table.Th>State commit</Table.Th>
              <Table.Th>Against {repo.branch}</Table.Th>
              <Table.Th>Labels</Table.Th>
              <Table.Th>Reported</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {hosts.map((host) => {
              const place = commitPlace(host.stateCommit, repo);
              return (
                <Table.Tr key={host.instance} data-host={host.instance}>
                  <Table.Td fw={600}>{host.instance}</Table.Td>
                  <Table.Td>{host.stateCommit ? <Code title={host.stateCommit}>{short(host.stateCommit)}</Code> : <Text span c="dimmed">—</Text>}</Table.Td>
                  <Table.Td>
                    <Badge color={PLACE_COLOR[place]} variant="light" tt="none" data-testid="place">
                      {PLACE_LABEL[place]}
                    </Badge>
                  </Table.Td>
                  <Table.Td data-testid="labels">
                    <Group gap={4}>
                      {(labels.get(host.instance) ?? []).map((l) => (
                        <Badge key={l.name} size="sm" variant="default" tt="none" ff="monospace">
                          {labelText(l)}
                        </Badge>
                      ))}
                    </Group>
                  </Table.Td>
                  <Table.Td>{ago(host.time)}</Table.Td>
                </Table.Tr>
              );
            })}
          </Table.Tbody>
        </Table>
      )}
    </Stack>
  );
}
