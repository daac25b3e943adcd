//! The list of known-bad versions (versions updaters rolled back): each with its reason,
//! the instances, when it was recorded and links to its fault reports; administrators
//! and developers may clear one (after a confirmation), so updaters may start it again.
//! Loaded lazily by the overview, and only when there is one, so the first load stays small.
import { useState } from 'react';
import { Anchor, Button, Card, Group, Modal, Stack, Table, Text, Title } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { Link } from 'react-router';
import { graphql } from '../gql';
import { request } from '../api/client';
import { useAllowed } from '../auth';
import { time } from '../lib/format';
import { KnownBadMark, knownBadHint } from './KnownBadMark';
import { Problem } from './Problem';

const Clear = graphql(`
  mutation ClearKnownBad($service: String!, $version: String!) {
    clearKnownBadVersion(service: $service, version: $version)
  }
`);

/** A known-bad version as the list shows it (the GraphQL `KnownBadVersion`). */
interface Bad {
  service: string;
  version: string;
  reason: string;
  instances: string[];
  recordedAt: string;
  faultIds: string[];
}

/** The list of known-bad versions; nothing when there is none. */
export default function KnownBadVersions({ list }: { list: Bad[] }) {
  const allowed = useAllowed('ADMINISTRATOR', 'DEVELOPER');
  const client = useQueryClient();
  const [asked, setAsked] = useState<Bad | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  if (list.length === 0) return null;

  async function clear(bad: Bad) {
    setBusy(true);
    setError(null);
    try {
      await request(Clear, { service: bad.service, version: bad.version });
      setAsked(null);
      await client.invalidateQueries();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card withBorder>
      <Title order={3} size="h4" mb="xs">
        Known-bad versions
      </Title>
      <Text size="sm" c="dimmed" mb="xs">
        Updaters rolled these back; while one is desired, they keep the version they run.
      </Text>
      <Table aria-label="Known-bad versions">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Service</Table.Th>
            <Table.Th>Version</Table.Th>
            <Table.Th>Reason</Table.Th>
            <Table.Th>Instances</Table.Th>
            <Table.Th>Recorded</Table.Th>
            <Table.Th>Fault reports</Table.Th>
            {allowed && <Table.Th />}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {list.map((bad) => (
            <Table.Tr key={bad.service + bad.version} data-known-bad={`${bad.service} ${bad.version}`}>
              <Table.Td fw={600}>{bad.service}</Table.Td>
              <Table.Td ff="monospace" style={{ whiteSpace: 'nowrap' }}>
                <Group gap={4} wrap="nowrap">
                  {bad.version} <KnownBadMark why={knownBadHint(bad)} />
                </Group>
              </Table.Td>
              <Table.Td>{bad.reason}</Table.Td>
              <Table.Td>{bad.instances.join(', ')}</Table.Td>
              <Table.Td>{time(bad.recordedAt)}</Table.Td>
              <Table.Td>
                {bad.faultIds.length === 0 ? (
                  <Text span c="dimmed">
                    none yet
                  </Text>
                ) : (
                  <Stack gap={0}>
                    {bad.faultIds.map((id) => (
                      <Anchor key={id} component={Link} to={`/faults?id=${encodeURIComponent(id)}`} size="sm" ff="monospace">
                        {id}
                      </Anchor>
                    ))}
                  </Stack>
                )}
              </Table.Td>
              {allowed && (
                <Table.Td>
                  <Button size="compact-xs" variant="light" color="orange" aria-label={`Clear ${bad.service} ${bad.version}`} onClick={() => { setError(null); setAsked(bad); }}>
                    Clear
                  </Button>
                </Table.Td>
              )}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Modal opened={asked != null} onClose={() => setAsked(null)} title={asked ? `Clear ${asked.service} ${asked.version}?` : ''}>
        {asked && (
          <Stack>
            <Text size="sm">
              Updaters may start <b>{asked.version}</b> of {asked.service} again wherever it is desired, though it was rolled back on {asked.instances.join(', ')}: {asked.reason}
            </Text>
            <Problem error={error} title="Not cleared" />
            <Group justify="flex-end">
              <Button variant="default" onClick={() => setAsked(null)} data-autofocus>
                Cancel
              </Button>
              <Button color="orange" loading={busy} onClick={() => clear(asked)}>
                Clear the mark
              </Button>
            </Group>
          </Stack>
        )}
      </Modal>
    </Card>
  );
}
