//! The frame of every page: the distribution's title, navigation that shows only what
//! the account's role may use, the account menu (password, log out) and the page.
import { AppShell, Burger, Group, Menu, NavLink, ScrollArea, Text, UnstyledButton } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { Link, NavLink as RouterLink, Outlet, useLocation, useNavigate } from 'react-router';
import { useLogout, useSession, type Role } from '../auth';

interface Item {
  to: string;
  label: string;
  roles: Role[];
}

const PEOPLE: Role[] = ['ADMINISTRATOR', 'DEVELOPER'];

const NAVIGATION: { section: string; items: Item[] }[] = [
  {
    section: 'Fleet',
    items: [
      { to: '/', label: 'Overview', roles: PEOPLE },
      { to: '/versions', label: 'Versions', roles: PEOPLE },
      { to: '/hosts', label: 'Hosts', roles: PEOPLE },
      { to: '/rollouts', label: 'Rollouts', roles: PEOPLE },
      { to: '/desired/developer', label: 'Desired versions', roles: PEOPLE },
      { to: '/proposed', label: 'Proposed edits', roles: PEOPLE },
    ],
  },
  {
    section: 'Work',
    items: [
      { to: '/builds', label: 'Builds', roles: PEOPLE },
      { to: '/tasks', label: 'Tasks', roles: PEOPLE },
      { to: '/logs', label: 'Logs', roles: PEOPLE },
      { to: '/faults', label: 'Faults', roles: PEOPLE },
    ],
  },
  {
    section: 'Settings',
    items: [
      { to: '/distribution', label: 'Distribution', roles: PEOPLE },
      { to: '/settings/accounts', label: 'Accounts', roles: ['ADMINISTRATOR'] },
      { to: '/settings/build', label: 'Build settings', roles: PEOPLE },
      { to: '/settings/profiles', label: 'Profiles', roles: PEOPLE },
      { to: '/settings/providers', label: 'Providers', roles: PEOPLE },
      { to: '/settings/consumers', label: 'Consumers', roles: PEOPLE },
      { to: '/settings/secrets', label: 'Secrets', roles: ['ADMINISTRATOR'] },
      { to: '/settings/private-files', label: 'Private files', roles: ['ADMINISTRATOR'] },
    ],
  },
];

export function Shell() {
  const [opened, { toggle, close }] = useDisclosure();
  const { account, info } = useSession();
  const logout = useLogout();
  const navigate = useNavigate();
  const location = useLocation();
  const role = account?.role;

  return (
    <AppShell header={{ height: 52 }} navbar={{ width: 230, breakpoint: 'sm', collapsed: { mobile: !opened } }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between">
          <Group gap="sm">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Navigation" />
            <Text component={Link} to="/" fw={700}>
              {info?.title ?? 'vupdate'}
            </Text>
            {info && (
              <Text size="sm" c="dimmed">
                {info.distribution} · vupdate {info.version}
              </Text>
            )}
          </Group>
          {account && (
            <Menu position="bottom-end">
              <Menu.Target>
                <UnstyledButton aria-label="Account menu">
                  <Text size="sm">
                    {account.account} <Text span c="dimmed">({account.role.toLowerCase()})</Text>
                  </Text>
                </UnstyledButton>
              </Menu.Target>
              <Menu.Dropdown>
                <Menu.Item component="a" href="/graphiql" target="_blank">
                  GraphQL (GraphiQL)
                </Menu.Item>
                <Menu.Item onClick={() => navigate(`/password?next=${encodeURIComponent(location.pathname)}`)}>Change password</Menu.Item>
                <Menu.Item
                  color="red"
                  onClick={() => {
                    logout();
                    navigate('/login');
                  }}
                >
                  Log out
                </Menu.Item>
              </Menu.Dropdown>
            </Menu>
          )}
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Main">
        <ScrollArea>
          {NAVIGATION.map(({ section, items }) => {
            const visible = items.filter((item) => role && item.roles.includes(role));
            if (!visible.length) return null;
            return (
              <div key={section}>
                <Text size="xs" fw={700} c="dimmed" tt="uppercase" px="sm" pt="sm" pb={4}>
                  {section}
                </Text>
                {visible.map((item) => (
                  <NavLink
                    key={item.to}
                    component={RouterLink}
                    to={item.to}
                    end={item.to === '/'}
                    label={item.label}
                    onClick={close}
                    active={item.to === '/' ? location.pathname === '/' : location.pathname.startsWith(item.to.replace(/\/developer$/, ''))}
                  />
                ))}
              </div>
            );
          })}
        </ScrollArea>
      </AppShell.Navbar>
      <AppShell.Main>
        <Outlet />
      </AppShell.Main>
    </AppShell>
  );
}
