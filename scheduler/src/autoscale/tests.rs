//! The autoscaler against a mocked API server (tower-test, as kube-rs tests its clients): each
//! test answers the exact requests a reconciliation must send and fails on any other.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::{Api, Client};
use serde_json::{Value, json};
use tower_test::mock;

use super::policy::{Demand, Recommendations, ScalePolicy};
use super::reconcile::{Action, Context, FIELD_MANAGER, error_policy, reconcile};
use crate::Error;

const PATH: &str = "/apis/apps/v1/namespaces/medallion/deployments/medallion-executor";

type Handle = mock::Handle<Request<Body>, Response<Body>>;

fn context(service: mock::Mock<Request<Body>, Response<Body>>, demand: Demand, delay: Duration) -> Context {
    let client = Client::new(service, "medallion");
    Context {
        deployments: Api::default_namespaced(client),
        name: "medallion-executor".into(),
        demand: Arc::new(move || demand),
        recommendations: Mutex::new(Recommendations::new(ScalePolicy {
            min_replicas: 1,
            max_replicas: 4,
            executors_per_run: 1,
            scale_down_delay: delay,
        })),
        interval: Duration::from_secs(10),
    }
}

fn deployment(replicas: i32) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "medallion-executor", "namespace": "medallion" },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": "executor" } },
            "template": {
                "metadata": { "labels": { "app": "executor" } },
                "spec": { "containers": [{ "name": "executor", "image": "medallion" }] }
            }
        }
    }))
    .unwrap()
}

fn status(code: u16, reason: &str) -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure",
        "message": format!("deployments \"medallion-executor\" {reason}"),
        "reason": reason, "code": code
    });
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

/// Answers the GET of the Deployment with its size.
async fn expect_get(handle: &mut std::pin::Pin<&mut Handle>, replicas: i32) {
    let (request, send) = handle.next_request().await.expect("the Deployment is read");
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.uri().path(), PATH);
    send.send_response(Response::new(Body::from(deployment(replicas))));
}

/// Takes the apply request and returns its query parameters, content type and body.
async fn expect_apply(
    handle: &mut std::pin::Pin<&mut Handle>,
    answer: Response<Body>,
) -> (HashMap<String, String>, String, Value) {
    let (request, send) = handle.next_request().await.expect("the size is applied");
    assert_eq!(request.method(), Method::PATCH);
    assert_eq!(request.uri().path(), PATH);
    let query = url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let content_type = request.headers()["content-type"].to_str().unwrap().to_string();
    let body = request.into_body().collect_bytes().await.unwrap();
    send.send_response(answer);
    (query, content_type, serde_json::from_slice(&body).unwrap())
}

fn busy(queued_runs: usize, running_runs: usize) -> Demand {
    Demand {
        queued_runs,
        running_runs,
    }
}

#[tokio::test]
async fn queued_runs_grow_the_deployment_by_one_server_side_apply() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        let mut handle = pin!(handle);
        expect_get(&mut handle, 1).await;
        expect_apply(&mut handle, Response::new(Body::from(deployment(3)))).await
    });
    let ctx = context(service, busy(2, 1), Duration::from_secs(60));
    let action = reconcile(&ctx).await.unwrap();
    assert_eq!(
        action,
        Action {
            requeue_after: Duration::from_secs(10)
        }
    );
    let (query, content_type, body) = server.await.unwrap();
    assert_eq!(query.get("fieldManager").map(String::as_str), Some(FIELD_MANAGER));
    assert_eq!(query.get("force").map(String::as_str), Some("true"));
    assert_eq!(content_type, "application/apply-patch+yaml");
    assert_eq!(
        body,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": "medallion-executor" },
            "spec": { "replicas": 3 }
        })
    );
}

#[tokio::test]
async fn more_work_than_the_maximum_stops_at_the_maximum() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        let mut handle = pin!(handle);
        expect_get(&mut handle, 2).await;
        expect_apply(&mut handle, Response::new(Body::from(deployment(4)))).await
    });
    let ctx = context(service, busy(30, 2), Duration::from_secs(60));
    reconcile(&ctx).await.unwrap();
    let (_, _, body) = server.await.unwrap();
    assert_eq!(body["spec"]["replicas"], 4);
}

#[tokio::test]
async fn a_deployment_of_the_right_size_is_only_read() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    // The mock ends after one answer: a second request would fail the reconciliation.
    let server = tokio::spawn(async move {
        let mut handle = pin!(handle);
        expect_get(&mut handle, 2).await;
    });
    let ctx = context(service, busy(0, 2), Duration::from_secs(60));
    reconcile(&ctx).await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn an_idle_queue_shrinks_to_the_minimum_after_the_delay() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        let mut handle = pin!(handle);
        // Within the delay: only read, twice.
        expect_get(&mut handle, 4).await;
        expect_get(&mut handle, 4).await;
        expect_get(&mut handle, 4).await;
        expect_apply(&mut handle, Response::new(Body::from(deployment(1)))).await
    });
    let ctx = context(service, busy(0, 0), Duration::from_millis(300));
    reconcile(&ctx).await.unwrap();
    reconcile(&ctx).await.unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    reconcile(&ctx).await.unwrap();
    let (_, _, body) = server.await.unwrap();
    assert_eq!(body["spec"]["replicas"], 1);
}

#[tokio::test]
async fn a_missing_deployment_is_an_error_and_retried_later_and_later() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        let mut handle = pin!(handle);
        let (_, send) = handle.next_request().await.unwrap();
        send.send_response(status(404, "NotFound"));
    });
    let ctx = context(service, busy(1, 0), Duration::from_secs(60));
    let error = reconcile(&ctx).await.unwrap_err();
    server.await.unwrap();
    assert!(
        matches!(&error, Error::ReadDeployment { name, .. } if name == "medallion-executor"),
        "{error:?}"
    );
    assert_eq!(
        error_policy(&error, &ctx, 1).requeue_after,
        Duration::from_secs(20)
    );
    assert_eq!(
        error_policy(&error, &ctx, 3).requeue_after,
        Duration::from_secs(80)
    );
    assert_eq!(
        error_policy(&error, &ctx, 30).requeue_after,
        Duration::from_secs(300)
    );
}

#[tokio::test]
async fn a_refused_apply_names_the_size_it_wanted() {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        let mut handle = pin!(handle);
        expect_get(&mut handle, 1).await;
        expect_apply(&mut handle, status(403, "Forbidden")).await;
    });
    let ctx = context(service, busy(1, 1), Duration::from_secs(60));
    let error = reconcile(&ctx).await.unwrap_err();
    server.await.unwrap();
    assert!(
        matches!(error, Error::ScaleDeployment { replicas: 2, .. }),
        "{error:?}"
    );
    assert!(
        medallion_jobs::error_chain(&error).contains("Forbidden"),
        "{}",
        medallion_jobs::error_chain(&error)
    );
}
