//! This distribution: its program's version and self-update (desired, running, a
//! version being checked or refused, how the last one ended), the updaters' versions,
//! and how to put an updater on a VM: the install line and the TLS public-key pin
//! (each with a copy button); administrators issue an enrolment token here, whose line
//! is shown once.
import { useState } from 'react';
import { Alert, Badge, Button, Card, Group, NumberInput, SimpleGrid, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { graphql } from '../gql';
import { request } from '../api/client';
import { useAllowed } from '../auth';
import { CopyField } from '../components/CopyField';
import { Problem } from '../components/Problem';
import { ago, time } from '../lib/format';
import { outcomeColor, selfUpdateState } from '../lib/selfUpdate';

const DistributionStatus = graphql(`
  query DistributionStatus {
    status {
      updaterInstallLine
      publicKeyPin
      selfUpdate {
        programVersion
        runningVersion
        desiredVersion
        pendingVersion
        refusedVersion
        last {
          at
          fromVersion
          version
          outcome
          message
        }
        updaters {
          instance
          version
          time
          updateError
        }
      }
    }
  }
`);

const Issue = graphql(`
  mutation IssueEnrolment($services: [String!]!, $expires: String!, $uses: Int!) {
    issueEnrolmentToken(services: $services, expires: $expires, uses: $uses) {
      installLine
      info {
        id
        expiresAt
      }
    }
  }
`);

/** An administrator's form for an enrolment token; its install line is shown this once. */
function Enrol() {
  const [services, setServices] = useState('');
  const [expires, setExpires] = useState('24h');
  const [uses, setUses] = useState<number | string>(1);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [issued, setIssued] = useState<{ line: string; expiresAt: string } | null>(null);
  const list = services
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

  async function issue() {
    setBusy(true);
    setError(null);
    try {
      const { issueEnrolmentToken } = await request(Issue, { services: list, expires, uses: Number(uses) || 1 });
      setIssued({ line: issueEnrolmentToken.installLine, expiresAt: issueEnrolmentToken.info.expiresAt });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Stack gap="xs">
      <Group align="flex-end">
        <TextInput label="Services" placeholder="api, worker-eu (name or name-role)" value={services} onChange={(e) => setServices(e.currentTarget.value)} w={320} />
        <TextInput label="Expires after" value={expires} onChange={(e) => setExpires(e.currentTarget.value)} w={120} />
        <NumberInput label="Uses" value={uses} onChange={setUses} min={1} w={90} />
        <Button onClick={issue} loading={busy} disabled={list.length === 0}>
          Issue an enrolment token
        </Button>
      </Group>
      <Problem error={error} title="Not issued" />
      {issued && (
        <Alert color="teal" title="Shown once: copy it now">
          <CopyField label={`The line to paste on a VM (valid until ${time(issued.expiresAt)})`} what="the line with its token" value={issued.line} testId="issued-line" />
        </Alert>
      )}
    </Stack>
  );
}

export default function DistributionPage() {
  const admin = useAllowed('ADMINISTRATOR');
  const { data, error } = useQuery({ queryKey: ['distribution'], queryFn: () => request(DistributionStatus), refetchInterval: 10_000 });
  if (error) return <Problem error={error} />;
  if (!data) return <Text c="dimmed">Loading…</Text>;
  const { selfUpdate, updaterInstallLine, publicKeyPin } = data.status;
  const state = selfUpdateState(selfUpdate);
  return (
    <Stack>
      <Title order={2}>Distribution</Title>
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <Card withBorder>
          <Title order={3} size="h4" mb="xs">
            This program
          </Title>
          <Stack gap={4}>
            <Text size="sm">
              vupdate <b data-testid="program-version">{selfUpdate.programVersion}</b>
              {selfUpdate.runningVersion ? `, as client version ${selfUpdate.runningVersion}` : ', installed by hand'}
            </Text>
            <Group gap="xs">
              <Text size="sm">Self-update:</Text>
              <Badge color={state.color} variant="light" tt="none" data-testid="self-update">
                {state.label}
              </Badge>
            </Group>
            {selfUpdate.last && (
              <Text size="sm" data-testid="self-update-last">
                Last:{' '}
                <Badge size="sm" color={outcomeColor(selfUpdate.last.outcome)} variant="light">
                  {selfUpdate.last.outcome.replace(/_/g, ' ').toLowerCase()}
                </Badge>{' '}
                {selfUpdate.last.fromVersion ?? 'a binary installed by hand'} → {selfUpdate.last.version}, {time(selfUpdate.last.at)}: {selfUpdate.last.message}
              </Text>
            )}
          </Stack>
        </Card>
        <Card withBorder>
          <Title order={3} size="h4" mb="xs">
            Put an updater on a VM
          </Title>
          <Stack gap="xs">
            <CopyField label="Install line (replace the placeholders, or issue a token below)" what="the install line" value={updaterInstallLine} testId="install-line" />
            {publicKeyPin ? (
              <CopyField label="TLS public-key pin (an updater's pinnedPublicKey, curl's --pinnedpubkey)" what="the public-key pin" value={publicKeyPin} testId="public-key-pin" />
            ) : (
              <Text size="sm" c="dimmed" data-testid="public-key-pin">
                No public-key pin: this distribution serves plain HTTP.
              </Text>
            )}
          </Stack>
        </Card>
      </SimpleGrid>
      {admin && (
        <Card withBorder>
          <Title order={3} size="h4" mb="xs">
            Enrolment token
          </Title>
          <Enrol />
        </Card>
      )}
      <Card withBorder>
        <Title order={3} size="h4" mb="xs">
          Updaters
        </Title>
        {selfUpdate.updaters.length === 0 ? (
          <Text size="sm" c="dimmed">
            No updater reported lately.
          </Text>
        ) : (
          <Table aria-label="Updaters">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Instance</Table.Th>
                <Table.Th>Version</Table.Th>
                <Table.Th>Reported</Table.Th>
                <Table.Th>Last self-update error</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {selfUpdate.updaters.map((u) => (
                <Table.Tr key={u.instance}>
                  <Table.Td fw={600}>{u.instance}</Table.Td>
                  <Table.Td ff="monospace">{u.version ?? 'installed by hand'}</Table.Td>
                  <Table.Td>{ago(u.time)}</Table.Td>
                  <Table.Td c={u.updateError ? 'red' : 'dimmed'}>{u.updateError ?? '—'}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Card>
    </Stack>
  );
}
