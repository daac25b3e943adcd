//! The GraphQL endpoints: `POST`/`GET /graphql` and the `/graphql/ws` WebSocket.
//!
//! The caller is authenticated once per request (from `Authorization: Bearer <token>`) or
//! once per WebSocket (from the `connection_init` payload's `Authorization` or `token`),
//! and travels with the operation as a [`Caller`]; resolvers check roles themselves.
//! A subscription sent by `POST` is refused by the schema: subscriptions need the socket,
//! where the caller is known (the original answered one by server-sent events without
//! checking who asked).

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;

use super::{ApiSchema, Caller};
use crate::auth::AuthService;
use crate::http::ApiError;
use crate::http::principal::bearer_token;

/// What the GraphQL handlers share.
#[derive(Clone)]
struct Endpoint {
    schema: ApiSchema,
    auth: AuthService,
}

/// The GraphQL routes, ready to merge into the server's router.
pub fn routes(schema: ApiSchema, auth: AuthService) -> Router {
    Router::new()
        .route("/graphql", get(execute).post(execute))
        .route("/graphql/ws", get(websocket))
        .route("/graphiql", get(super::page::graphiql))
        .with_state(Endpoint { schema, auth })
}

async fn execute(
    State(endpoint): State<Endpoint>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let token = headers.get(header::AUTHORIZATION).map(|value| {
        value
            .to_str()
            .map_err(|_| {
                ApiError::unauthenticated("the `Authorization` header is not visible ASCII")
            })
            .and_then(bearer_token)
    });
    let caller = authenticate(&endpoint.auth, token).await;
    endpoint
        .schema
        .execute(request.into_inner().data(caller))
        .await
        .into()
}

async fn websocket(
    State(endpoint): State<Endpoint>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            let auth = endpoint.auth.clone();
            GraphQLWebSocket::new(stream, endpoint.schema, protocol)
                .on_connection_init(move |payload| async move {
                    let caller = authenticate(&auth, payload_token(&payload)).await;
                    let mut data = Data::default();
                    data.insert(caller);
                    Ok(data)
                })
                .serve()
        })
}

/// The token of a `connection_init` payload: its `Authorization` entry (any case, with
/// or without the `Bearer` scheme) or its `token` entry.
fn payload_token(payload: &serde_json::Value) -> Option<Result<&str, ApiError>> {
    let object = payload.as_object()?;
    let value = object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization") || *key == "token")
        .map(|(_, value)| value)?;
    let Some(text) = value.as_str() else {
        return Some(Err(ApiError::unauthenticated(
            "the `Authorization` of `connection_init` is not a string",
        )));
    };
    // Clients that cannot set a scheme send the bare token.
    Some(if text.contains(' ') {
        bearer_token(text)
    } else {
        Ok(text)
    })
}

/// The caller for a token: none sent, unreadable, or one to check.
async fn authenticate(auth: &AuthService, token: Option<Result<&str, ApiError>>) -> Caller {
    match token {
        None => Caller::Anonymous,
        Some(Err(error)) => Caller::Refused {
            code: error.code(),
            message: error.message().to_owned(),
        },
        Some(Ok(token)) => Caller::from_outcome(auth.authenticate(token).await),
    }
}
