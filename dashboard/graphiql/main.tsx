//! GraphiQL, bundled so /graphiql works without internet access. It uses the dashboard's
//! session token when one is kept (log in to the dashboard first), else none.
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import 'graphiql/style.css';
import { session } from '../src/api/session';

const token = session.token();
const fetcher = createGraphiQLFetcher({
  url: '/graphql',
  subscriptionUrl: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql/ws`,
  wsConnectionParams: token ? { Authorization: `Bearer ${token}` } : {},
});

const root = document.getElementById('graphiql');
if (root) {
  createRoot(root).render(
    <GraphiQL
      fetcher={fetcher}
      defaultHeaders={token ? JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2) : undefined}
      defaultQuery={'# Log in to the dashboard first: its session token is sent here.\n{\n  whoAmI { account role }\n  status { synced services { service sync } }\n}\n'}
    />,
  );
}
