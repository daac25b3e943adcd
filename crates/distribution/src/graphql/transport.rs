//! The GraphQL endpoints: `POST`/`GET /graphql` and the `/graphql/ws` WebSocket.
//!
//! The caller is authenticated once per request (from `Authorization: Bearer <token>`) or
//! once per WebSocket (from the `connection_init` payload's `Authorization` or `token`),
//! and travels with the operation as a [`Caller`]; resolvers check roles themselves.
//! A subscription sent by `POST` is refused by the schema: subscriptions need the socket,
//! where the caller is known (the original answered one by server-sent events without
//! checking who asked).
//!
//! A response whose error is `TOO_MANY_REQUESTS` (a throttled login) has HTTP status 429
//! and `Retry-After`. A WebSocket message larger than `limits.graphql.maxWebSocketMessage`
//! closes the socket with code 1009 and the limit as the reason; a socket that fails
//! otherwise is closed with 1002 and what failed.

use async_graphql::Data;
use async_graphql::ParseRequestError;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message};
use axum::extract::{FromRequest, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use futures::StreamExt as _;

use super::{ApiSchema, Caller, OperationSlots};
use crate::auth::AuthService;
use crate::config::GraphqlLimits;
use crate::http::principal::bearer_token;
use crate::http::{ApiError, ClientAddress};

/// The read chunk of a WebSocket (see [`websocket`]): enough for what an updater sends
/// (`connection_init` with its token, `subscribe`, `pong`: each well under 1 KiB). Every
/// socket keeps it for its whole life, zero-filled and so resident: 4 KiB cost 3 KiB more
/// per idle subscription (20.8 against 17.7 KiB in the `fanout` bench at 5,000).
const SOCKET_READ_BUFFER: usize = 1024;

/// What the GraphQL handlers share.
#[derive(Clone)]
struct Endpoint {
    schema: ApiSchema,
    auth: AuthService,
    limits: GraphqlLimits,
}

/// The GraphQL routes, ready to merge into the server's router.
pub fn routes(schema: ApiSchema, auth: AuthService, limits: GraphqlLimits) -> Router {
    Router::new()
        .route("/graphql", get(execute).post(execute))
        .route("/graphql/ws", get(websocket))
        .with_state(Endpoint {
            schema,
            auth,
            limits,
        })
}

/// One GraphQL operation from `POST /graphql` (or `GET /graphql?query=`).
///
/// A JSON object body, as updaters and every vupdate client send, is parsed straight into
/// the request: async-graphql's own extractor parses every body as an untagged "batch or
/// single" enum, which serde first copies whole into an intermediate tree and then parses
/// again from it (the `fleet` bench, whose every other request is a 100-line `addLogs`,
/// measured 18–20 % less server CPU per request without it). Anything else (a batch,
/// multipart, a query string) goes through async-graphql's extractor as before.
struct Operation(async_graphql::Request);

impl<S: Send + Sync> FromRequest<S> for Operation {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Response> {
        let multipart = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                value
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/")
            });
        let request = if request.method() == Method::POST && !multipart {
            let (parts, body) = request.into_parts();
            // The request limits have read the body whole already (and bounded it).
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .map_err(|error| rejection(ParseRequestError::Io(std::io::Error::other(error))))?;
            if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{') {
                return serde_json::from_slice(&bytes)
                    .map(Operation)
                    .map_err(|error| {
                        rejection(ParseRequestError::InvalidRequest(Box::new(error)))
                    });
            }
            axum::extract::Request::from_parts(parts, Body::from(bytes))
        } else {
            request
        };
        GraphQLRequest::<GraphQLRejection>::from_request(request, state)
            .await
            .map(|request| Operation(request.into_inner()))
            .map_err(axum::response::IntoResponse::into_response)
    }
}

/// The answer to a body that is not a GraphQL request, as async-graphql's extractor gives.
fn rejection(error: ParseRequestError) -> Response {
    axum::response::IntoResponse::into_response(GraphQLRejection(error))
}

async fn execute(
    State(endpoint): State<Endpoint>,
    client: ClientAddress,
    headers: HeaderMap,
    Operation(request): Operation,
) -> Response {
    let token = headers.get(header::AUTHORIZATION).map(|value| {
        value
            .to_str()
            .map_err(|_| {
                ApiError::unauthenticated("the `Authorization` header is not visible ASCII")
            })
            .and_then(bearer_token)
    });
    let caller = authenticate(&endpoint.auth, token).await;
    let response = endpoint
        .schema
        .execute(request.data(caller).data(client))
        .await;
    let retry_after = response.errors.iter().find_map(|error| {
        let extensions = error.extensions.as_ref()?;
        match extensions.get("code")? {
            async_graphql::Value::String(code) if code == "TOO_MANY_REQUESTS" => {
                match extensions.get("retryAfterSeconds") {
                    Some(async_graphql::Value::Number(seconds)) => seconds.as_u64(),
                    _ => Some(1),
                }
            }
            _ => None,
        }
    });
    let mut answer = GraphQLResponse::from(response).into_response();
    if let Some(seconds) = retry_after {
        *answer.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    answer
}

async fn websocket(
    State(endpoint): State<Endpoint>,
    client: ClientAddress,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let limits = endpoint.limits;
    let max_message = usize::try_from(limits.max_websocket_message).unwrap_or(usize::MAX);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // Memory per idle socket (an updater's subscription idles for days): tungstenite
        // reads into a buffer of `read_buffer_size` (128 KiB by default) and zero-fills all
        // of it before each read, so every socket kept 128 KiB resident. What updaters send
        // is small (`connection_init`, `subscribe`, `pong`); a larger frame still arrives
        // whole, as the buffer grows to the frame's length (up to `max_message`).
        .read_buffer_size(SOCKET_READ_BUFFER)
        // Frames are written out at once instead of gathering up to 128 KiB: a push is one
        // small message per socket, and the buffer then only holds a message being written.
        .write_buffer_size(0)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| async move {
            let auth = endpoint.auth.clone();
            let (sink, stream) = socket.split();
            // Both the protocol and the reader of the socket may close it, so the socket's
            // sink is fed from a channel. Its size costs nothing while idle (a message takes
            // memory only while it waits), and 16 lets a burst of pushes queue.
            let (outgoing, to_send) = futures::channel::mpsc::channel::<Message>(16);
            let sending = to_send.map(Ok::<_, axum::Error>).forward(sink);
            let mut closer = outgoing.clone();
            let incoming = stream.scan((), move |(), message| {
                futures::future::ready(match message {
                    Ok(message) => Some(Ok::<_, axum::Error>(message)),
                    Err(error) => {
                        let _ = closer.try_send(Message::Close(Some(close_frame(&error))));
                        None
                    }
                })
            });
            let protocol_done =
                GraphQLWebSocket::new_with_pair(outgoing, incoming, endpoint.schema, protocol)
                    .on_connection_init(move |payload| async move {
                        let caller = authenticate(&auth, payload_token(&payload)).await;
                        let mut data = Data::default();
                        data.insert(caller);
                        data.insert(client);
                        data.insert(OperationSlots::new(limits.max_operations_per_websocket));
                        Ok(data)
                    })
                    .serve();
            let (_, _) = tokio::join!(protocol_done, sending);
        })
}

/// The close frame for a socket that failed: 1009 for a message past the size limit,
/// 1002 for anything else, with what happened as the reason (cut to the 123 bytes a
/// reason may have).
fn close_frame(error: &axum::Error) -> CloseFrame {
    let cause = error.to_string();
    let too_big = std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|error| matches!(error, tungstenite::Error::Capacity(_)));
    let (code, mut reason) = if too_big {
        (1009, format!("message too big: {cause}"))
    } else {
        (1002, cause)
    };
    while reason.len() > 123 {
        reason.pop();
    }
    CloseFrame {
        code,
        reason: reason.into(),
    }
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
