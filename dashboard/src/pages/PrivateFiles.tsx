//! Private files (administrators): files builds add to images that must never be in Git
//! (keys, certificates). Upload, list and delete; the state repo names which ones a
//! service's build uses (`privateFiles`).
import { useState } from 'react';
import { Button, FileInput, Group, SegmentedControl, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useQuery } from '@tanstack/react-query';
import { describe, getJson, remove, upload } from '../api/client';
import { Problem } from '../components/Problem';
import { time } from '../lib/format';

interface Listed {
  service: string;
  path: string;
  size: number;
  modified: string;
}

/** A file's path on the server, every part encoded. */
const filePath = (kind: string, service: string, path: string) =>
  `/private-files/${kind}/${encodeURIComponent(service)}/${path.split('/').map(encodeURIComponent).join('/')}`;

export default function PrivateFilesPage() {
  const [kind, setKind] = useState('developer');
  const { data, error, refetch } = useQuery({ queryKey: ['private-files', kind], queryFn: () => getJson<Listed[]>(`/private-files/${kind}`) });
  const [service, setService] = useState('_common');
  const [path, setPath] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);

  async function send() {
    if (!file) return;
    setBusy(true);
    const target = path.trim() || file.name;
    try {
      await upload(filePath(kind, service, target), file);
      notifications.show({ color: 'teal', title: 'Uploaded', message: `${service}/${target}` });
      setFile(null);
      setPath('');
      void refetch();
    } catch (e) {
      const { code, message } = describe(e);
      notifications.show({ color: 'red', title: `Upload refused (${code})`, message });
    } finally {
      setBusy(false);
    }
  }

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Private files</Title>
        <SegmentedControl value={kind} onChange={setKind} data={[{ label: 'Developer builds', value: 'developer' }, { label: 'Client builds', value: 'client' }]} />
      </Group>
      <Group align="flex-end">
        <TextInput label="Service" description="`_common` for every service" value={service} onChange={(e) => setService(e.currentTarget.value)} w={180} />
        <TextInput label="Path in the image" placeholder="keys/signing.pem" value={path} onChange={(e) => setPath(e.currentTarget.value)} w={240} />
        <FileInput label="File" placeholder="choose…" value={file} onChange={setFile} w={220} />
        <Button onClick={send} loading={busy} disabled={!file || !service.trim()}>
          Upload
        </Button>
      </Group>
      <Problem error={error} />
      <Table striped aria-label="Private files">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Service</Table.Th>
            <Table.Th>Path</Table.Th>
            <Table.Th>Size</Table.Th>
            <Table.Th>Stored</Table.Th>
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {data?.map((f) => (
            <Table.Tr key={f.service + f.path}>
              <Table.Td>{f.service}</Table.Td>
              <Table.Td ff="monospace">{f.path}</Table.Td>
              <Table.Td>{f.size} bytes</Table.Td>
              <Table.Td>{time(f.modified)}</Table.Td>
              <Table.Td>
                <Button
                  size="compact-xs"
                  color="red"
                  variant="light"
                  onClick={async () => {
                    if (!window.confirm(`Delete ${f.service}/${f.path}?`)) return;
                    try {
                      await remove(filePath(kind, f.service, f.path));
                      void refetch();
                    } catch (e) {
                      const { code, message } = describe(e);
                      notifications.show({ color: 'red', title: `Not deleted (${code})`, message });
                    }
                  }}
                >
                  Delete
                </Button>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {data && data.length === 0 && <Text c="dimmed">No private file.</Text>}
    </Stack>
  );
}
