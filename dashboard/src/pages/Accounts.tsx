//! Accounts (administrators only): people, programs and consumer distributions; create
//! one, change its role, set a person's password, issue an access token (shown once,
//! with a copy button) or revoke them all, remove an account.
import { useState } from 'react';
import { Alert, Button, Code, CopyButton, Group, Modal, PasswordInput, Select, Stack, Table, Tabs, Text, TextInput, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useQuery } from '@tanstack/react-query';
import { graphql } from '../gql';
import type { AccountRole, AccountType } from '../gql/graphql';
import { describe, request } from '../api/client';
import { Problem } from '../components/Problem';

const Accounts = graphql(`
  query Accounts {
    accounts {
      account
      name
      type
      role
      email
      profile
      url
      mustChangePassword
    }
  }
`);

const AddUser = graphql(`
  mutation AddUser($account: String!, $name: String!, $role: AccountRole!, $password: String!) {
    addUserAccount(account: $account, name: $name, role: $role, password: $password) {
      account
    }
  }
`);
const AddService = graphql(`
  mutation AddService($account: String!, $name: String!, $role: AccountRole!) {
    addServiceAccount(account: $account, name: $name, role: $role) {
      account
    }
  }
`);
const AddConsumer = graphql(`
  mutation AddConsumer($account: String!, $name: String!, $profile: String!, $url: String!) {
    addConsumerAccount(account: $account, name: $name, profile: $profile, url: $url) {
      account
    }
  }
`);
const ChangeRole = graphql(`
  mutation ChangeRole($account: String!, $role: AccountRole!) {
    changeAccountRole(account: $account, role: $role)
  }
`);
const SetPassword = graphql(`
  mutation SetPassword($account: String!, $newPassword: String!) {
    changePassword(account: $account, newPassword: $newPassword)
  }
`);
const IssueToken = graphql(`
  mutation IssueToken($account: String!) {
    issueAccessToken(account: $account)
  }
`);
const RevokeTokens = graphql(`
  mutation RevokeTokens($account: String!) {
    revokeAccessTokens(account: $account)
  }
`);
const Remove = graphql(`
  mutation RemoveAccount($account: String!) {
    removeAccount(account: $account)
  }
`);

const ROLES: AccountRole[] = ['ADMINISTRATOR', 'DEVELOPER', 'BUILDER', 'UPDATER', 'DISTRIBUTION_CONSUMER'];
const TABS: { value: AccountType; label: string }[] = [
  { value: 'USER', label: 'Users' },
  { value: 'SERVICE', label: 'Services' },
  { value: 'CONSUMER', label: 'Consumers' },
];

async function act(what: string, run: () => Promise<unknown>, after: () => void) {
  try {
    await run();
    notifications.show({ color: 'teal', title: 'Done', message: what });
    after();
  } catch (e) {
    const { code, message } = describe(e);
    notifications.show({ color: 'red', title: `Refused (${code})`, message });
  }
}

function NewAccount({ type, opened, onClose, onDone }: { type: AccountType; opened: boolean; onClose: () => void; onDone: () => void }) {
  const [account, setAccount] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState<string | null>(type === 'SERVICE' ? 'UPDATER' : 'DEVELOPER');
  const [password, setPassword] = useState('');
  const [profile, setProfile] = useState('');
  const [url, setUrl] = useState('');
  const [error, setError] = useState<unknown>(null);
  async function submit(event: React.FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      if (type === 'USER') await request(AddUser, { account, name, role: role as AccountRole, password });
      else if (type === 'SERVICE') await request(AddService, { account, name, role: role as AccountRole });
      else await request(AddConsumer, { account, name, profile, url });
      onDone();
      onClose();
    } catch (e) {
      setError(e);
    }
  }
  return (
    <Modal opened={opened} onClose={onClose} title={`New ${type.toLowerCase()} account`}>
      <Stack component="form" onSubmit={submit}>
        <Problem error={error} />
        <TextInput label="Account" value={account} onChange={(e) => setAccount(e.currentTarget.value)} required data-autofocus />
        <TextInput label="Name" value={name} onChange={(e) => setName(e.currentTarget.value)} required />
        {type !== 'CONSUMER' && <Select label="Role" data={ROLES} value={role} onChange={setRole} allowDeselect={false} />}
        {type === 'USER' && <PasswordInput label="First password (to be changed at first login)" value={password} onChange={(e) => setPassword(e.currentTarget.value)} required />}
        {type === 'CONSUMER' && (
          <>
            <TextInput label="Profile" value={profile} onChange={(e) => setProfile(e.currentTarget.value)} required />
            <TextInput label="URL" value={url} onChange={(e) => setUrl(e.currentTarget.value)} required />
          </>
        )}
        <Group justify="flex-end">
          <Button type="submit">Create</Button>
        </Group>
      </Stack>
    </Modal>
  );
}

export default function AccountsPage() {
  const { data, error, refetch } = useQuery({ queryKey: ['accounts'], queryFn: () => request(Accounts) });
  const [tab, setTab] = useState<AccountType>('USER');
  const [creating, setCreating] = useState(false);
  const [token, setToken] = useState<{ account: string; token: string } | null>(null);
  const [password, setPassword] = useState<{ account: string; value: string } | null>(null);
  const reload = () => void refetch();

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Accounts</Title>
        <Button onClick={() => setCreating(true)}>New {TABS.find((t) => t.value === tab)?.label.toLowerCase().replace(/s$/, '')}</Button>
      </Group>
      <Problem error={error} />
      <Tabs value={tab} onChange={(v) => v && setTab(v as AccountType)}>
        <Tabs.List>
          {TABS.map((t) => (
            <Tabs.Tab key={t.value} value={t.value}>
              {t.label}
            </Tabs.Tab>
          ))}
        </Tabs.List>
      </Tabs>
      <Table striped aria-label="Accounts">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Account</Table.Th>
            <Table.Th>Name</Table.Th>
            <Table.Th>Role</Table.Th>
            {tab === 'CONSUMER' && <Table.Th>Profile, URL</Table.Th>}
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {data?.accounts
            .filter((a) => a.type === tab)
            .map((a) => (
              <Table.Tr key={a.account} data-account={a.account}>
                <Table.Td fw={600}>
                  {a.account} {a.mustChangePassword && <Text span size="xs" c="orange">(must change password)</Text>}
                </Table.Td>
                <Table.Td>{a.name}</Table.Td>
                <Table.Td>
                  {tab === 'CONSUMER' ? (
                    a.role
                  ) : (
                    <Select
                      aria-label={`Role of ${a.account}`}
                      data={ROLES}
                      value={a.role}
                      allowDeselect={false}
                      size="xs"
                      w={210}
                      onChange={(role) => role && act(`${a.account} is now ${role}`, () => request(ChangeRole, { account: a.account, role: role as AccountRole }), reload)}
                    />
                  )}
                </Table.Td>
                {tab === 'CONSUMER' && (
                  <Table.Td>
                    {a.profile}, {a.url}
                  </Table.Td>
                )}
                <Table.Td>
                  <Group gap={4} justify="flex-end" wrap="nowrap">
                    {a.type === 'USER' ? (
                      <Button size="compact-xs" variant="default" onClick={() => setPassword({ account: a.account, value: '' })}>
                        Set password
                      </Button>
                    ) : (
                      <>
                        <Button
                          size="compact-xs"
                          variant="default"
                          onClick={() =>
                            act(`a token for ${a.account}`, async () => {
                              const { issueAccessToken } = await request(IssueToken, { account: a.account });
                              setToken({ account: a.account, token: issueAccessToken });
                            }, reload)
                          }
                        >
                          Issue token
                        </Button>
                        <Button size="compact-xs" variant="default" color="orange" onClick={() => act(`every token of ${a.account} revoked`, () => request(RevokeTokens, { account: a.account }), reload)}>
                          Revoke tokens
                        </Button>
                      </>
                    )}
                    <Button
                      size="compact-xs"
                      color="red"
                      variant="light"
                      onClick={() => window.confirm(`Remove the account ${a.account}? Its sessions and tokens stop working at once.`) && act(`${a.account} removed`, () => request(Remove, { account: a.account }), reload)}
                    >
                      Remove
                    </Button>
                  </Group>
                </Table.Td>
              </Table.Tr>
            ))}
        </Table.Tbody>
      </Table>
      <NewAccount key={tab + String(creating)} type={tab} opened={creating} onClose={() => setCreating(false)} onDone={reload} />
      <Modal opened={token != null} onClose={() => setToken(null)} title={`Access token of ${token?.account}`} size="lg">
        <Stack>
          <Alert color="yellow">This token is shown once; keep it where the program reads it.</Alert>
          <Code block data-testid="token" style={{ wordBreak: 'break-all', whiteSpace: 'pre-wrap' }}>
            {token?.token}
          </Code>
          <CopyButton value={token?.token ?? ''}>{({ copied, copy }) => <Button onClick={copy}>{copied ? 'Copied' : 'Copy'}</Button>}</CopyButton>
        </Stack>
      </Modal>
      <Modal opened={password != null} onClose={() => setPassword(null)} title={`New password of ${password?.account}`}>
        <Stack>
          <Text size="sm" c="dimmed">
            They must change it at their next login.
          </Text>
          <PasswordInput label="Password" value={password?.value ?? ''} onChange={(e) => setPassword(password && { ...password, value: e.currentTarget.value })} data-autofocus />
          <Group justify="flex-end">
            <Button
              onClick={() =>
                password &&
                act(`password of ${password.account} set`, () => request(SetPassword, { account: password.account, newPassword: password.value }), () => {
                  setPassword(null);
                  reload();
                })
              }
            >
              Set
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Stack>
  );
}
