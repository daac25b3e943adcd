//! `GET /graphiql`: an in-browser GraphQL editor.
//!
//! GraphiQL itself loads its scripts from a CDN (unpkg), which a machine without internet
//! access cannot reach; so the page carries a small built-in editor (query, variables,
//! token, run, result) that it falls back to when the scripts do not load. Both send the
//! token from the login box as `Authorization: Bearer`.

use async_graphql::http::GraphiQLSource;
use axum::response::Html;

/// The built-in editor, shown when GraphiQL's scripts cannot be loaded.
const FALLBACK: &str = r#"
<div id="vupdate-fallback" style="display:none;font-family:sans-serif;margin:1em">
  <h2>vupdate GraphQL</h2>
  <p>GraphiQL could not load its scripts (no internet access?); this plain editor talks to the same <code>/graphql</code>.</p>
  <p><label>Token <input id="fb-token" size="80" placeholder="from the login mutation"></label></p>
  <textarea id="fb-query" rows="14" cols="100">mutation { login(account: "admin", password: "...") { token mustChangePassword } }</textarea><br>
  <textarea id="fb-vars" rows="4" cols="100" placeholder="variables (JSON)"></textarea><br>
  <button id="fb-run">Run</button>
  <pre id="fb-result" style="background:#f4f4f4;padding:1em"></pre>
</div>
<script>
function vupdateFallback() {
  document.getElementById('graphiql').style.display = 'none';
  document.getElementById('vupdate-fallback').style.display = 'block';
  document.getElementById('fb-run').onclick = async function () {
    const headers = {'Content-Type': 'application/json'};
    const token = document.getElementById('fb-token').value.trim();
    if (token) headers['Authorization'] = 'Bearer ' + token;
    const text = document.getElementById('fb-vars').value.trim();
    const body = {query: document.getElementById('fb-query').value, variables: text ? JSON.parse(text) : null};
    const response = await fetch('/graphql', {method: 'POST', headers, body: JSON.stringify(body)});
    document.getElementById('fb-result').textContent = JSON.stringify(await response.json(), null, 2);
  };
}
window.addEventListener('load', function () { if (typeof window.GraphiQL === 'undefined') vupdateFallback(); });
</script>
"#;

/// The page.
pub async fn graphiql() -> Html<String> {
    let page = GraphiQLSource::build()
        .endpoint("/graphql")
        .subscription_endpoint("/graphql/ws")
        .title("vupdate GraphQL")
        .finish();
    Html(page.replacen("</body>", &format!("{FALLBACK}</body>"), 1))
}
