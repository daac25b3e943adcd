//! Fault reports: filters (distribution, service, time range), each report's info,
//! files and log tail, and the archive's download.
import { useState } from 'react';
import { Accordion, Badge, Button, Code, Group, Select, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useQuery } from '@tanstack/react-query';
import { graphql } from '../gql';
import { describe, download, request } from '../api/client';
import { Problem } from '../components/Problem';
import { time } from '../lib/format';

const Faults = graphql(`
  query Faults($distribution: String, $service: String, $fromTime: DateTime, $toTime: DateTime) {
    faults(distribution: $distribution, service: $service, fromTime: $fromTime, toTime: $toTime, limit: 200) {
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
  }
`);

const iso = (local: string) => (local ? new Date(local).toISOString() : null);

export default function FaultsPage() {
  const [distribution, setDistribution] = useState<string | null>(null);
  const [service, setService] = useState<string | null>(null);
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const { data, error } = useQuery({
    queryKey: ['faults', distribution, service, from, to],
    queryFn: () => request(Faults, { distribution, service, fromTime: iso(from), toTime: iso(to) }),
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
        <TextInput label="From" type="datetime-local" value={from} onChange={(e) => setFrom(e.currentTarget.value)} />
        <TextInput label="To" type="datetime-local" value={to} onChange={(e) => setTo(e.currentTarget.value)} />
      </Group>
      <Problem error={error} />
      {data && data.faults.length === 0 && <Text c="dimmed">No fault report matches.</Text>}
      <Accordion variant="separated" multiple>
        {data?.faults.map((f) => (
          <Accordion.Item key={f.distribution + f.id} value={f.distribution + f.id}>
            <Accordion.Control>
              <Group>
                <Text fw={600}>{f.service}{f.serviceRole ? `-${f.serviceRole}` : ''}</Text>
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
