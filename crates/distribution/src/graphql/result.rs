//! [`ApiResult::api`]: any error of the distribution's parts, as a GraphQL error with the
//! same stable code and client-safe message the REST routes give it.

use crate::http::ApiError;

/// Turns a part's result into a resolver's result.
pub trait ApiResult<T> {
    /// The value, or the error as a GraphQL error with `extensions.code`.
    fn api(self) -> async_graphql::Result<T>;
}

impl<T, E: Into<ApiError>> ApiResult<T> for Result<T, E> {
    fn api(self) -> async_graphql::Result<T> {
        self.map_err(|error| error.into().into_graphql())
    }
}
