//! Tasks (builds, client generations), newest first, filtered by type, service and
//! whether they still run; each opens its monitor.
import { useState } from 'react';
import { Badge, Group, Select, Stack, Switch, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { graphql } from '../gql';
import { request } from '../api/client';
import { Problem } from '../components/Problem';
import { time } from '../lib/format';

const Tasks = graphql(`
  query Tasks($type: String, $service: String, $onlyActive: Boolean!) {
    tasks(type: $type, service: $service, onlyActive: $onlyActive, limit: 200) {
      id
      type
      services
      creationTime
      terminationTime
      terminationStatus
      active
    }
    taskTypes
    taskServices
  }
`);

export default function TasksPage() {
  const [type, setType] = useState<string | null>(null);
  const [service, setService] = useState<string | null>(null);
  const [onlyActive, setOnlyActive] = useState(false);
  const { data, error } = useQuery({ queryKey: ['tasks', type, service, onlyActive], queryFn: () => request(Tasks, { type, service, onlyActive }), refetchInterval: 3_000 });
  return (
    <Stack>
      <Title order={2}>Tasks</Title>
      <Group>
        <Select placeholder="Every type" aria-label="Type" data={data?.taskTypes ?? []} value={type} onChange={setType} clearable />
        <Select placeholder="Every service" aria-label="Service" data={data?.taskServices ?? []} value={service} onChange={setService} clearable searchable />
        <Switch label="Only running" checked={onlyActive} onChange={(e) => setOnlyActive(e.currentTarget.checked)} />
      </Group>
      <Problem error={error} />
      <Table striped highlightOnHover aria-label="Tasks">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Task</Table.Th>
            <Table.Th>Type</Table.Th>
            <Table.Th>Services</Table.Th>
            <Table.Th>Started</Table.Th>
            <Table.Th>Ended</Table.Th>
            <Table.Th>State</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {data?.tasks.map((task) => (
            <Table.Tr key={task.id}>
              <Table.Td>
                <Link to={`/tasks/${task.id}`}>{task.id}</Link>
              </Table.Td>
              <Table.Td>{task.type}</Table.Td>
              <Table.Td>{task.services.join(', ')}</Table.Td>
              <Table.Td>{time(task.creationTime)}</Table.Td>
              <Table.Td>{time(task.terminationTime)}</Table.Td>
              <Table.Td>
                <Badge color={task.active ? 'blue' : task.terminationStatus ? 'teal' : 'red'}>{task.active ? 'running' : task.terminationStatus ? 'succeeded' : 'failed'}</Badge>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {data && data.tasks.length === 0 && <Text c="dimmed">No task matches.</Text>}
    </Stack>
  );
}
