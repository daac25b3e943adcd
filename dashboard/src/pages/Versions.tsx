//! Versions: per service and role, developer -> client -> running version -> directory
//! -> instances, with mismatches marked; an instance's state (install time, failures,
//! last exit code, update error) on hover; an instance whose update failed and that
//! still runs another version is marked as rolled back; a known-bad version is marked
//! where it shows, and an instance's hover card names its state commit and whether it
//! is the followed branch's tip.
import { useMemo, useState } from 'react';
import { Badge, Group, HoverCard, Stack, Switch, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { graphql } from '../gql';
import type { VersionsQuery } from '../gql/graphql';
import { request } from '../api/client';
import { markerOf } from '../components/KnownBadMark';
import { Problem } from '../components/Problem';
import { commitPlace, PLACE_LABEL } from '../lib/commits';
import { ago, short, time } from '../lib/format';

const Versions = graphql(`
  query Versions {
    status {
      services {
        service
        desiredDeveloperVersion
        desiredClientVersion
      }
      stateRepo {
        tip
        commit
      }
    }
    knownBadVersions {
      service
      version
      reason
      instances
    }
    serviceStates {
      distribution
      instance
      service
      role
      directory
      stateCommit
      state {
        failedVersion
        time
        installTime
        startTime
        version
        updateToVersion
        failuresCount
        lastExitCode
        updateError {
          critical
          error
        }
      }
    }
  }
`);

type State = VersionsQuery['serviceStates'][number];

interface Group {
  key: string;
  service: string;
  role: string | null;
  developer: string | null;
  client: string | null;
  running: string | null;
  directory: string;
  instances: State[];
}

type Repo = VersionsQuery['status']['stateRepo'];

function InstanceBadge({ state, desired, repo }: { state: State; desired: string | null; repo: Repo }) {
  const s = state.state;
  const rolledBack = !!s.updateError && s.version !== desired;
  const color = s.version !== desired ? (rolledBack ? 'red' : 'orange') : (s.failuresCount ?? 0) > 0 ? 'yellow' : 'teal';
  return (
    <HoverCard shadow="md" openDelay={150}>
      <HoverCard.Target>
        <Badge color={color} variant="light" tt="none" style={{ cursor: 'help' }} tabIndex={0} data-instance={state.instance}>
          {state.instance}
          {rolledBack ? ' · rolled back' : ''}
        </Badge>
      </HoverCard.Target>
      <HoverCard.Dropdown>
        <Stack gap={2}>
          <Text size="sm" fw={600}>
            {state.instance} ({state.distribution})
          </Text>
          <Text size="xs">reported {ago(s.time)}</Text>
          <Text size="xs">installed {time(s.installTime)}</Text>
          <Text size="xs">started {time(s.startTime)}</Text>
          <Text size="xs">running {s.version ?? '—'}</Text>
          {s.updateToVersion && <Text size="xs">installing {s.updateToVersion}</Text>}
          <Text size="xs">failures {s.failuresCount ?? 0}, last exit code {s.lastExitCode ?? '—'}</Text>
          {s.failedVersion && <Text size="xs" c="red">rolled back {s.failedVersion}</Text>}
          <Text size="xs" data-testid="state-commit">
            state commit {state.stateCommit ? short(state.stateCommit) : '—'} ({PLACE_LABEL[commitPlace(state.stateCommit, repo)]})
          </Text>
          {s.updateError && (
            <Text size="xs" c="red">
              update {s.updateError.critical ? 'given up' : 'failed'}: {s.updateError.error}
            </Text>
          )}
        </Stack>
      </HoverCard.Dropdown>
    </HoverCard>
  );
}

export default function VersionsPage() {
  const { data, error } = useQuery({ queryKey: ['versions'], queryFn: () => request(Versions), refetchInterval: 5_000 });
  const [onlyMismatches, setOnlyMismatches] = useState(false);

  const groups = useMemo(() => {
    if (!data) return [];
    const desired = new Map(data.status.services.map((s) => [s.service, s]));
    const map = new Map<string, Group>();
    for (const state of data.serviceStates) {
      const d = desired.get(state.service);
      const key = [state.service, state.role ?? '', state.state.version, state.directory].join('\u0000');
      const group = map.get(key) ?? {
        key,
        service: state.service,
        role: state.role ?? null,
        developer: d?.desiredDeveloperVersion ?? null,
        client: d?.desiredClientVersion ?? null,
        running: state.state.version ?? null,
        directory: state.directory,
        instances: [],
      };
      group.instances.push(state);
      map.set(key, group);
    }
    // Desired services no instance reports yet still show.
    const reported = new Set(data.serviceStates.map((state) => state.service));
    for (const s of data.status.services) {
      if (!reported.has(s.service)) {
        map.set(s.service, { key: s.service, service: s.service, role: null, developer: s.desiredDeveloperVersion ?? null, client: s.desiredClientVersion ?? null, running: null, directory: '', instances: [] });
      }
    }
    return [...map.values()].sort((a, b) => a.service.localeCompare(b.service) || (a.role ?? '').localeCompare(b.role ?? '') || (a.running ?? '').localeCompare(b.running ?? ''));
  }, [data]);

  if (error) return <Problem error={error} />;
  if (!data) return <Text c="dimmed">Loading…</Text>;
  const mark = markerOf(data.knownBadVersions);
  const shown = groups.filter((g) => !onlyMismatches || g.running !== g.client);
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Versions</Title>
        <Switch label="Only mismatches" checked={onlyMismatches} onChange={(e) => setOnlyMismatches(e.currentTarget.checked)} />
      </Group>
      <Table striped aria-label="Versions">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Service</Table.Th>
            <Table.Th>Role</Table.Th>
            <Table.Th>Developer</Table.Th>
            <Table.Th>Client</Table.Th>
            <Table.Th>Running</Table.Th>
            <Table.Th>Directory</Table.Th>
            <Table.Th>Instances</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {shown.map((g) => {
            const mismatch = g.instances.length > 0 && g.running !== g.client;
            return (
              <Table.Tr key={g.key} data-mismatch={mismatch || undefined}>
                <Table.Td fw={600}>{g.service}</Table.Td>
                <Table.Td>{g.role ?? '—'}</Table.Td>
                <Table.Td ff="monospace">{g.developer ?? '—'}</Table.Td>
                <Table.Td ff="monospace">
                  {g.client ?? '—'} {mark(g.service, g.client)}
                </Table.Td>
                <Table.Td ff="monospace" c={mismatch ? 'red' : undefined} fw={mismatch ? 700 : undefined}>
                  {g.instances.length ? (g.running ?? 'not running') : '—'} {g.instances.length > 0 && mark(g.service, g.running)}
                </Table.Td>
                <Table.Td ff="monospace">{g.directory || '—'}</Table.Td>
                <Table.Td>
                  <Group gap={4}>
                    {g.instances.map((i) => (
                      <InstanceBadge key={i.instance + i.distribution} state={i} desired={g.client} repo={data.status.stateRepo} />
                    ))}
                    {!g.instances.length && <Text c="dimmed" size="sm">no instance reports</Text>}
                  </Group>
                </Table.Td>
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}
