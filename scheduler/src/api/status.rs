//! The one place scheduler errors become gRPC statuses.

use tonic::Status;

use crate::Error;

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::InvalidSpec { .. } | Error::BadRequest { .. } => Status::invalid_argument(message),
            Error::PipelineNotFound { .. } | Error::RunNotFound { .. } => Status::not_found(message),
            Error::RunEnded { .. } => Status::failed_precondition(message),
            Error::Unauthenticated { .. } => Status::unauthenticated(message),
            Error::ClusterState { .. }
            | Error::Runtime { .. }
            | Error::Serve { .. }
            | Error::ServeApi { .. }
            | Error::ServeMetrics { .. }
            | Error::History { .. }
            | Error::Report { .. }
            | Error::HistoryRow { .. }
            | Error::AutoscaleUnavailable { .. } => Status::internal(message),
            #[cfg(feature = "kube")]
            Error::KubeClient { .. } | Error::ReadDeployment { .. } | Error::ScaleDeployment { .. } => {
                Status::internal(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn maps_each_failure_to_its_code() {
        let spec = medallion_jobs::spec::parse_spec("[pipeline]\nname = 1\n", "inline.toml").unwrap_err();
        let cases = [
            (Error::InvalidSpec { source: spec }, Code::InvalidArgument),
            (Error::BadRequest { message: "x".into() }, Code::InvalidArgument),
            (
                Error::RunNotFound {
                    run_id: "run-1".into(),
                },
                Code::NotFound,
            ),
            (
                Error::PipelineNotFound {
                    name: "p".into(),
                    path: "/x".into(),
                },
                Code::NotFound,
            ),
            (
                Error::RunEnded {
                    run_id: "run-1".into(),
                    status: "succeeded".into(),
                },
                Code::FailedPrecondition,
            ),
            (Error::Unauthenticated { reason: "no" }, Code::Unauthenticated),
        ];
        for (error, code) in cases {
            let status = Status::from(error);
            assert_eq!(status.code(), code, "{}", status.message());
        }
    }

    #[test]
    fn invalid_specs_carry_the_message_medallion_run_prints() {
        let e = medallion_jobs::spec::parse_spec("[pipeline]\nname = \"p\"\nfoo = 1\n", "inline.toml")
            .unwrap_err();
        let printed = medallion_jobs::error_chain(&e);
        assert_eq!(Status::from(Error::InvalidSpec { source: e }).message(), printed);
    }
}
