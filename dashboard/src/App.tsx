//! Routes: the login pages outside the shell, every other page inside it, loaded lazily
//! so the first load carries only the overview. A page the account's role may not use
//! is not offered, and its URL shows "not allowed" instead.
import { lazy, Suspense, type ReactNode } from 'react';
import { Navigate, Route, Routes, useLocation } from 'react-router';
import { Center, Loader } from '@mantine/core';
import { useSession, type Role } from './auth';
import { Shell } from './components/Shell';
import { LoginPage } from './pages/Login';
import { OverviewPage } from './pages/Overview';
import { NotFoundPage, NotAllowedPage } from './pages/NotFound';

const PasswordPage = lazy(() => import('./pages/Password'));
const VersionsPage = lazy(() => import('./pages/Versions'));
const DesiredPage = lazy(() => import('./pages/Desired'));
const BuildsPage = lazy(() => import('./pages/Builds'));
const TasksPage = lazy(() => import('./pages/Tasks'));
const TaskPage = lazy(() => import('./pages/Task'));
const LogsPage = lazy(() => import('./pages/Logs'));
const FaultsPage = lazy(() => import('./pages/Faults'));
const AccountsPage = lazy(() => import('./pages/Accounts'));
const BuildSettingsPage = lazy(() => import('./pages/BuildSettings'));
const ProfilesPage = lazy(() => import('./pages/Profiles'));
const ProvidersPage = lazy(() => import('./pages/Providers'));
const ConsumersPage = lazy(() => import('./pages/Consumers'));
const SecretsPage = lazy(() => import('./pages/Secrets'));
const PrivateFilesPage = lazy(() => import('./pages/PrivateFiles'));
const HostsPage = lazy(() => import('./pages/Hosts'));
const RolloutsPage = lazy(() => import('./pages/Rollouts'));
const ProposedPage = lazy(() => import('./pages/Proposed'));
const DistributionPage = lazy(() => import('./pages/Distribution'));

/** Who may use the pages: people who build and edit, and administrators. */
export const PEOPLE: Role[] = ['ADMINISTRATOR', 'DEVELOPER'];
/** Administrators only. */
export const ADMINS: Role[] = ['ADMINISTRATOR'];

function Loading() {
  return (
    <Center p="xl">
      <Loader aria-label="Loading" />
    </Center>
  );
}

/** A page that needs a session with one of `roles`. */
function Guard({ roles, children }: { roles: Role[]; children: ReactNode }) {
  const { account, loading } = useSession();
  const location = useLocation();
  if (loading) return <Loading />;
  if (!account) return <Navigate to={`/login?next=${encodeURIComponent(location.pathname + location.search)}`} replace />;
  if (account.mustChangePassword && location.pathname !== '/password') return <Navigate to="/password" replace />;
  if (!roles.includes(account.role)) return <NotAllowedPage />;
  return <Suspense fallback={<Loading />}>{children}</Suspense>;
}

export function App() {
  return (
    <Routes>
      <Route path="/login" element={<LoginPage />} />
      <Route
        path="/password"
        element={
          <Guard roles={PEOPLE}>
            <PasswordPage />
          </Guard>
        }
      />
      <Route element={<Shell />}>
        <Route path="/" element={<Guard roles={PEOPLE}><OverviewPage /></Guard>} />
        <Route path="/versions" element={<Guard roles={PEOPLE}><VersionsPage /></Guard>} />
        <Route path="/desired/:kind" element={<Guard roles={PEOPLE}><DesiredPage /></Guard>} />
        <Route path="/desired" element={<Navigate to="/desired/developer" replace />} />
        <Route path="/hosts" element={<Guard roles={PEOPLE}><HostsPage /></Guard>} />
        <Route path="/rollouts" element={<Guard roles={PEOPLE}><RolloutsPage /></Guard>} />
        <Route path="/proposed" element={<Guard roles={PEOPLE}><ProposedPage /></Guard>} />
        <Route path="/distribution" element={<Guard roles={PEOPLE}><DistributionPage /></Guard>} />
        <Route path="/builds" element={<Guard roles={PEOPLE}><BuildsPage /></Guard>} />
        <Route path="/tasks" element={<Guard roles={PEOPLE}><TasksPage /></Guard>} />
        <Route path="/tasks/:id" element={<Guard roles={PEOPLE}><TaskPage /></Guard>} />
        <Route path="/logs" element={<Guard roles={PEOPLE}><LogsPage /></Guard>} />
        <Route path="/faults" element={<Guard roles={PEOPLE}><FaultsPage /></Guard>} />
        <Route path="/settings/accounts" element={<Guard roles={ADMINS}><AccountsPage /></Guard>} />
        <Route path="/settings/build" element={<Guard roles={PEOPLE}><BuildSettingsPage /></Guard>} />
        <Route path="/settings/profiles" element={<Guard roles={PEOPLE}><ProfilesPage /></Guard>} />
        <Route path="/settings/providers" element={<Guard roles={PEOPLE}><ProvidersPage /></Guard>} />
        <Route path="/settings/consumers" element={<Guard roles={PEOPLE}><ConsumersPage /></Guard>} />
        <Route path="/settings/secrets" element={<Guard roles={ADMINS}><SecretsPage /></Guard>} />
        <Route path="/settings/distributions" element={<Navigate to="/settings/providers" replace />} />
        <Route path="/settings/private-files" element={<Guard roles={ADMINS}><PrivateFilesPage /></Guard>} />
        <Route path="*" element={<NotFoundPage />} />
      </Route>
    </Routes>
  );
}
