//! Hosts: the state commit each reporting instance is on (what its updater last fully
//! applied), whether that is the followed branch's tip, and the filter "hosts not yet on
//! commit X" (`instanceCommits(notOn:)`: a descendant of X counts as on it, an unknown
//! commit as not). The filter lives in the URL (`?notOn=`), so a link can share it.
import { useEffect, useState } from 'react';
import { Badge, Button, Code, Group, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useSearchParams } from 'react-router';
import { graphql } from '../gql';
import { request } from '../api/client';
import { Problem } from '../components/Problem';
import { commitPlace, PLACE_LABEL, type CommitPlace } from '../lib/commits';
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
    }
  }
`);

const PLACE_COLOR: Record<CommitPlace, string> = { tip: 'teal', 'in-force': 'yellow', older: 'orange', unknown: 'gray' };

export default function HostsPage() {
  const [params, setParams] = useSearchParams();
  const notOn = params.get('notOn');
  const [typed, setTyped] = useState(notOn ?? '');
  useEffect(() => setTyped(notOn ?? ''), [notOn]);
  const { data, error } = useQuery({ queryKey: ['hosts', notOn], queryFn: () => request(Hosts, { notOn }), refetchInterval: 10_000 });
  const repo = data?.status.stateRepo;
  const filter = (value: string) => setParams(value.trim() ? { notOn: value.trim() } : {});

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
      <Problem error={error} />
      {data && (
        <Text size="sm" data-testid="hosts-count">
          {notOn
            ? `${data.instanceCommits.length} host${data.instanceCommits.length === 1 ? '' : 's'} not yet on ${short(notOn)}`
            : `${data.instanceCommits.length} host${data.instanceCommits.length === 1 ? '' : 's'} reporting`}
        </Text>
      )}
      {data && repo && (
        <Table striped aria-label="Hosts">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Instance</Table.Th>
              <Table.Th>State commit</Table.Th>
              <Table.Th>Against {repo.branch}</Table.Th>
              <Table.Th>Reported</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {data.instanceCommits.map((host) => {
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
