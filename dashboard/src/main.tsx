//! The dashboard's entry: theme (following the system's dark mode), query cache,
//! notifications and the router.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { MantineProvider, createTheme } from '@mantine/core';
import { Notifications } from '@mantine/notifications';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { BrowserRouter } from 'react-router';
import '@mantine/core/styles.css';
import '@mantine/notifications/styles.css';
import { App } from './App';
import { ApiError } from './api/client';
import { session } from './api/session';
import { whoAmIQuery } from './auth';
import { overviewQuery } from './pages/Overview';

const theme = createTheme({
  primaryColor: 'teal',
  fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
  fontFamilyMonospace: 'ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace',
});

const queries = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 2_000,
      // A refusal will not change on a retry; a network blip might.
      retry: (count, error) => !(error instanceof ApiError && error.code !== 'NETWORK') && count < 2,
      refetchOnWindowFocus: true,
    },
  },
});

// With a session, the account and (on `/`) the overview's data are asked for at once, in
// parallel, instead of one after the other once React has rendered.
const token = session.token();
if (token) {
  void queries.prefetchQuery(whoAmIQuery(token));
  if (location.pathname === '/') void queries.prefetchQuery(overviewQuery);
}

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <MantineProvider theme={theme} defaultColorScheme="auto">
        <Notifications position="top-right" />
        <QueryClientProvider client={queries}>
          <BrowserRouter>
            <App />
          </BrowserRouter>
        </QueryClientProvider>
      </MantineProvider>
    </StrictMode>,
  );
}
