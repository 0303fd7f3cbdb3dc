//! Bearer-token authentication for the job service.

use std::collections::HashSet;
use std::sync::Arc;

use tonic::{Request, Status};

use crate::Error;

/// The tokens a caller may present as `authorization: Bearer <token>`.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Arc<HashSet<String>>);

impl Tokens {
    /// Tokens from a comma- or newline-separated list (blank entries ignored).
    pub fn parse(text: &str) -> Self {
        let tokens = text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect();
        Self(Arc::new(tokens))
    }

    /// Whether any token is configured (without, the API is open).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Lets a request through when it carries a configured token.
    pub(crate) fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        if self.0.is_empty() {
            return Ok(request);
        }
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            Some(token) if self.0.contains(token.trim()) => Ok(request),
            Some(_) => Err(Error::Unauthenticated {
                reason: "the bearer token is not valid",
            }
            .into()),
            None => Err(Error::Unauthenticated {
                reason: "no bearer token in `authorization`",
            }
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_configured_tokens_only() {
        let tokens = Tokens::parse("alpha, beta\n\n");
        let with = |value: &str| {
            let mut r = Request::new(());
            r.metadata_mut().insert("authorization", value.parse().unwrap());
            r
        };
        assert!(tokens.check(with("Bearer beta")).is_ok());
        assert_eq!(
            tokens.check(with("Bearer gamma")).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            tokens.check(Request::new(())).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert!(Tokens::parse("").check(Request::new(())).is_ok());
    }
}
