//! Fault reports: filters (distribution, service, role, time range, or one report by
//! `?id=`, as a known-bad version links to its evidence; `?service=` starts filtered, as
//! a halted rollout links to them), each report's info, files and log tail, and the
//! archive's download.
import { useState } from 'react';
import { Accordion, Badge, Button, Code, Group, Select, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useQuery } from '@tanstack/react-query';
import { useSearchParams } from 'react-router';
import { graphql } from '../gql';
import { describe, download, request } from '../api/client';
import { Problem } from '../components/Problem';
import { time } from '../lib/format';

const Faults = graphql(`
  query Faults($distribution: String, $service: String, $role: String, $fromTime: DateTime, $toTime: DateTime, $id: String) {
    faults(distribution: $distribution, service: $service, role: $role, fromTime: $fromTime, toTime: $toTime, id: $id, limit: 200) {
      id
      distribution
      service
      serviceRole
      instance
      serviceDirectory
      time
      downloadPath
      files {
        path
        size
      }
      logTail
      state {
        version
        failuresCount
        lastExitCode
        installTime
        startTime
      }
    }
    faultDistributions
    faultServices(distribution: $distribution)
    faultRoles(distribution: $distribution, service: $service)
  }
`);

const iso = (local: string) => (local ? new Date(local).toISOString() : null);

export default function FaultsPage() {
  const [distribution, setDistribution] = useState<string | null>(null);
  const [params, setParams] = useSearchParams();
  // `?service=` opens the page filtered (a halted rollout links to its service's reports).
  const [service, setService] = useState<string | null>(() => params.get('service'));
  const [role, setRole] = useState<string | null>(null);
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const id = params.get('id');
  const { data, error } = useQuery({
    queryKey: ['faults', distribution, service, role, from, to, id],
    queryFn: () => request(Faults, { distribution, service, role, fromTime: iso(from), toTime: iso(to), id }),
    refetchInterval: 10_000,
  });

  async function save(path: string, id: string) {
    try {
      await download(path, `fault-${id}.zip`);
    } catch (e) {
      const { code, message } = describe(e);
      notifications.show({ color: 'red', title: `Download refused (${code})`, message });
    }
  }

  return (
    <Stack>
      <Title order={2}>Faults</Title>
      <Group align="flex-end">
        <Select label="Distribution" placeholder="any" data={data?.faultDistributions ?? []} value={distribution} onChange={setDistribution} clearable />
        <Select label="Service" placeholder="any" data={data?.faultServices ?? []} value={service} onChange={setService} clearable searchable />
        <Select label="Role" placeholder="any" data={data?.faultRoles ?? (role ? [role] : [])} value={role} onChange={setRole} clearable searchable />
        <TextInput label="From" type="datetime-local" value={from} onChange={(e) => setFrom(e.currentTarget.value)} />
        <TextInput label="To" type="datetime-local" value={to} onChange={(e) => setTo(e.currentTarget.value)} />
        {id && (
          <Button variant="light" onClick={() => setParams({})} title="Show every report the filters match">
            Report {id} ×
          </Button>
        )}
      </Group>
      <Problem error={error} />
      {data && data.faults.length === 0 && <Text c="dimmed">No fault report matches.</Text>}
      <Accordion key={id && data ? `open-${id}` : 'all'} variant="separated" multiple defaultValue={id && data?.faults.length === 1 ? [data.faults[0].distribution + data.faults[0].id] : []}>
        {data?.faults.map((f) => (
          <Accordion.Item key={f.distribution + f.id} value={f.distribution + f.id}>
            <Accordion.Control>
              <Group>
                <Text fw={600}>{f.service}</Text>
                {f.serviceRole && (
                  <Badge variant="outline" tt="none" data-testid="fault-role">
                    {f.serviceRole}
                  </Badge>
                )}
                <Text size="sm">{f.instance}</Text>
                <Text size="sm" c="dimmed">
                  {time(f.time)}
                </Text>
                <Badge variant="light" tt="none">
                  {f.state.version ?? 'no version'}
                </Badge>
                <Badge color="red" variant="light">
                  exit {f.state.lastExitCode ?? '?'}
                </Badge>
              </Group>
            </Accordion.Control>
            <Accordion.Panel>
              <Stack gap="xs">
                <Group>
                  <Text size="sm">
                    Report <Code>{f.id}</Code> of {f.distribution}, directory <Code>{f.serviceDirectory}</Code>, failures {f.state.failuresCount ?? 0}
                  </Text>
                  <Button size="xs" variant="default" onClick={() => save(f.downloadPath, f.id)}>
                    Download archive
                  </Button>
                </Group>
                <Table withTableBorder aria-label="Files">
                  <Table.Tbody>
                    {f.files.map((file) => (
                      <Table.Tr key={file.path}>
                        <Table.Td ff="monospace">{file.path}</Table.Td>
                        <Table.Td ta="right">{file.size} bytes</Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
                <Code block style={{ maxHeight: 320, overflow: 'auto' }}>
                  {f.logTail.join('\n') || '(no log lines)'}
                </Code>
              </Stack>
            </Accordion.Panel>
          </Accordion.Item>
        ))}
      </Accordion>
    </Stack>
  );
}
