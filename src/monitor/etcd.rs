//! A small etcd v3 client: the store through which meridian instances share their health
//! votes (leases, put/get/delete under a prefix, one prefix watch).
//!
//! It speaks etcd's JSON gateway (grpc-gateway), which every etcd 3.4+ member serves on its
//! client URL next to gRPC: the same v3 API (same requests, revisions, leases and watch
//! semantics) as JSON over HTTP/1.1, `POST /v3/kv/put` and so on. That keeps protoc and a
//! gRPC code generator out of the build; the HTTP client is the one the health probes use.
//!
//! On the wire: keys and values are base64, int64 fields are strings (`"revision":"3"`),
//! fields at their zero value are left out, and the streaming RPCs (watch, lease
//! keepalive) answer with newline-separated `{"result":{..}}` objects, or one
//! `{"error":{..}}` that ends the stream.
//!
//! Every call tries the endpoints in turn, starting with the last one that answered; an
//! endpoint that cannot be reached or answers with a server error (5xx: no leader, request
//! timed out) is skipped at once, and one that has not answered within the timeout gets
//! the next one started beside it (it stays in flight: a member waiting out an election
//! answers as soon as there is a leader). A call fails only when none answered, within
//! n × timeout for n endpoints. Requests sent to several members are idempotent (put,
//! delete, keepalive, revoke), except a grant, whose extra lease then expires unused.
//! Watches require a leader: a member cut off from the quorum cancels them (after about
//! three election timeouts) instead of letting them hang silently.
//!
//! With a login (etcd's `auth enable`), the client authenticates before its first call and
//! sends the token with every request (the gateway passes `Authorization` on as gRPC
//! metadata). A token etcd no longer takes (expired, or issued before any change to users,
//! roles or permissions: "revision of auth store is old") is replaced by authenticating
//! again, once per call. A cluster without authentication enabled is spoken to without a
//! token, so the login can be configured before `auth enable`.

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use data_encoding::BASE64;
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Deserializer};
use serde_json::json;

mod auth;
mod watch;

use auth::{Token, with_token};

pub use watch::{WatchBatch, WatchEvent, WatchStream};

/// The largest response body read for a unary call.
const MAX_RESPONSE: usize = 64 << 20;

/// Why an etcd call failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// The client cannot be built: no endpoint, a malformed URL, a zero timeout.
    #[error("etcd client: {0}")]
    Config(String),
    /// Every endpoint failed: could not connect, timed out, answered with a server error
    /// (no leader, request timed out) or with something that is not etcd's JSON. The
    /// reason of each, in the order tried.
    #[error("no etcd endpoint answered: {0}")]
    Unreachable(String),
    /// etcd refused the request (4xx other than a missing lease).
    #[error("etcd {endpoint}: HTTP {status}: {message}")]
    Status {
        endpoint: String,
        status: u16,
        message: String,
    },
    /// A watch stream carried something that is not a watch response.
    #[error("etcd {endpoint}: bad response: {reason}")]
    BadResponse { endpoint: String, reason: String },
    /// The lease expired or was revoked (or never existed).
    #[error("etcd lease {0} not found")]
    LeaseNotFound(i64),
    /// The watch ended: cancelled by etcd (no leader, revision compacted) or its
    /// connection broke. Watch again, from the last batch's revision + 1.
    #[error("etcd watch cancelled: {0}")]
    WatchCancelled(String),
}

/// A client for a set of etcd members. Cheap to clone: clones share the connection pool
/// and the preferred endpoint.
#[derive(Clone)]
pub struct Etcd {
    inner: Arc<Inner>,
}

struct Inner {
    /// Client URLs without a trailing slash.
    endpoints: Vec<String>,
    http: reqwest::Client,
    timeout: Duration,
    /// Index of the endpoint that answered last: where each call starts.
    preferred: AtomicUsize,
    login: Option<crate::config::Login>,
    /// The token of the last authentication (with a login).
    token: Mutex<Token>,
}

impl fmt::Debug for Etcd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.inner.endpoints)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

/// One endpoint's failure: go on with the next endpoint, or stop here.
enum Failure {
    Next(String),
    Stop(EtcdError),
}

impl Etcd {
    /// `endpoints`: client URLs like "http://127.0.0.1:2379"; each call tries them in turn,
    /// starting with the last that worked; `timeout` is how long a try goes unanswered
    /// before the next endpoint is tried too, and n × timeout bounds a whole call (a watch
    /// stream's creation, not the stream).
    pub fn new(endpoints: Vec<String>, timeout: std::time::Duration) -> Result<Self, EtcdError> {
        Self::with_tls(endpoints, timeout, &crate::config::ClusterTls::default())
    }

    /// [`Self::new`] for https endpoints with a private CA (`tls.ca_pem`, then the only
    /// one trusted) and a client certificate (`tls.identity_pem`: certificate, then key).
    pub fn with_tls(
        endpoints: Vec<String>,
        timeout: std::time::Duration,
        tls: &crate::config::ClusterTls,
    ) -> Result<Self, EtcdError> {
        Self::with_login(endpoints, timeout, tls, None)
    }

    /// [`Self::with_tls`], authenticating as `login` (an etcd user) when given.
    pub fn with_login(
        endpoints: Vec<String>,
        timeout: std::time::Duration,
        tls: &crate::config::ClusterTls,
        login: Option<crate::config::Login>,
    ) -> Result<Self, EtcdError> {
        if endpoints.is_empty() {
            return Err(EtcdError::Config("no endpoint".into()));
        }
        if timeout.is_zero() {
            return Err(EtcdError::Config("zero timeout".into()));
        }
        let mut clean = Vec::with_capacity(endpoints.len());
        for e in endpoints {
            let url = reqwest::Url::parse(&e)
                .map_err(|err| EtcdError::Config(format!("endpoint {e:?}: {err}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(EtcdError::Config(format!(
                    "endpoint {e:?}: not an http:// or https:// URL"
                )));
            }
            clean.push(e.trim_end_matches('/').to_string());
        }
        // reqwest's client carries a TLS configuration even for plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeout)
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_keepalive(Duration::from_secs(30));
        if let Some(pem) = &tls.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| EtcdError::Config(format!("CA file: {}", error_chain(&e))))?;
            builder = builder.tls_certs_only(certs);
        }
        if let Some(pem) = &tls.identity_pem {
            let identity = reqwest::Identity::from_pem(pem).map_err(|e| {
                EtcdError::Config(format!("client certificate: {}", error_chain(&e)))
            })?;
            builder = builder.identity(identity);
        }
        let http = builder
            .build()
            .map_err(|e| EtcdError::Config(format!("http client: {}", error_chain(&e))))?;
        Ok(Etcd {
            inner: Arc::new(Inner {
                endpoints: clean,
                http,
                timeout,
                preferred: AtomicUsize::new(0),
                login,
                token: Mutex::new(Token::Unknown),
            }),
        })
    }

    /// Grants a lease of `ttl_secs` seconds (etcd may raise it to its minimum); its id.
    pub async fn grant(&self, ttl_secs: i64) -> Result<i64, EtcdError> {
        let body = json!({ "TTL": ttl_secs.to_string() });
        self.post("/v3/lease/grant", &body, |bytes| {
            let r: LeaseReply = parse(bytes)?;
            if r.id == 0 {
                return Err("lease grant without an ID".into());
            }
            Ok(r.id)
        })
        .await
    }

    /// Refreshes `lease` once; its remaining TTL in seconds, or `LeaseNotFound` when it is
    /// gone (expired or revoked).
    pub async fn keep_alive(&self, lease: i64) -> Result<i64, EtcdError> {
        let body = json!({ "ID": lease.to_string() });
        // A one-message stream: `{"result":{"ID":..,"TTL":..}}`, TTL absent when gone.
        let ttl = self
            .post("/v3/lease/keepalive", &body, |bytes| {
                let line: StreamLine<LeaseReply> = parse(bytes)?;
                match line.result {
                    Some(r) => Ok(r.ttl),
                    None => Err("keepalive answer without a result".into()),
                }
            })
            .await
            .map_err(lease_gone(lease))?;
        if ttl <= 0 {
            return Err(EtcdError::LeaseNotFound(lease));
        }
        Ok(ttl)
    }

    /// Revokes `lease`: every key attached to it is deleted (one revision, a DELETE event
    /// each). `LeaseNotFound` if it was already gone.
    pub async fn revoke(&self, lease: i64) -> Result<(), EtcdError> {
        let body = json!({ "ID": lease.to_string() });
        self.post("/v3/lease/revoke", &body, |bytes| {
            parse::<Reply>(bytes).map(|_| ())
        })
        .await
        .map_err(lease_gone(lease))
    }

    /// Sets `key` to `value`, attached to `lease` if given; the revision of the change.
    /// `LeaseNotFound` if the lease is gone.
    pub async fn put(&self, key: &str, value: &[u8], lease: Option<i64>) -> Result<i64, EtcdError> {
        let mut body = json!({
            "key": BASE64.encode(key.as_bytes()),
            "value": BASE64.encode(value),
        });
        if let Some(lease) = lease {
            body["lease"] = json!(lease.to_string());
        }
        self.post("/v3/kv/put", &body, |bytes| {
            let r: Reply = parse(bytes)?;
            if r.header.revision <= 0 {
                return Err("put answer without a revision".into());
            }
            Ok(r.header.revision)
        })
        .await
        .map_err(lease_gone(lease.unwrap_or(0)))
    }

    /// Deletes `key` (nothing happens if it does not exist).
    pub async fn delete(&self, key: &str) -> Result<(), EtcdError> {
        let body = json!({ "key": BASE64.encode(key.as_bytes()) });
        self.post("/v3/kv/deleterange", &body, |bytes| {
            parse::<Reply>(bytes).map(|_| ())
        })
        .await
    }

    /// Every key under `prefix` with its value, in key order, read linearizably: the
    /// store's revision at the read and the pairs. A key that is not UTF-8 is shown with
    /// U+FFFD in place of its bad bytes.
    pub async fn get_prefix(
        &self,
        prefix: &str,
    ) -> Result<(i64, Vec<(String, Vec<u8>)>), EtcdError> {
        let (key, end) = prefix_range(prefix.as_bytes());
        let body = json!({ "key": BASE64.encode(&key), "range_end": BASE64.encode(&end) });
        self.post("/v3/kv/range", &body, |bytes| {
            let r: Reply = parse(bytes)?;
            if r.header.revision <= 0 {
                return Err("range answer without a revision".into());
            }
            let kvs = r
                .kvs
                .iter()
                .map(|kv| Ok((decode_key(&kv.key)?, decode(&kv.value)?)))
                .collect::<Result<Vec<_>, String>>()?;
            Ok((r.header.revision, kvs))
        })
        .await
    }

    /// Watch every key under `prefix` from `start_revision` (0 or less: from now), with
    /// progress notifications and require-leader. Returns once etcd has acknowledged the
    /// watch (bounded by the timeout); the acknowledgement is the stream's first batch.
    pub async fn watch_prefix(
        &self,
        prefix: &str,
        start_revision: i64,
    ) -> Result<WatchStream, EtcdError> {
        let (key, end) = prefix_range(prefix.as_bytes());
        let mut create = json!({
            "key": BASE64.encode(&key),
            "range_end": BASE64.encode(&end),
            "progress_notify": true,
        });
        if start_revision > 0 {
            create["start_revision"] = json!(start_revision.to_string());
        }
        let body = json!({ "create_request": create }).to_string().into_bytes();
        self.authorized(|token| {
            let body = &body;
            async move {
                self.first_answer(|i| {
                    let endpoint = &self.inner.endpoints[i];
                    self.open_watch(endpoint, body, start_revision, token.as_deref())
                })
                .await
            }
        })
        .await
    }

    /// Starts a watch on one endpoint and reads its first message, which must be the
    /// "created" acknowledgement.
    async fn open_watch(
        &self,
        endpoint: &str,
        body: &[u8],
        start_revision: i64,
        token: Option<&str>,
    ) -> Result<WatchStream, Failure> {
        let request = self
            .inner
            .http
            .post(format!("{endpoint}/v3/watch"))
            .header("content-type", "application/json")
            // grpc-gateway passes Grpc-Metadata-* headers on as gRPC metadata; etcd's
            // "hasleader: true" makes the watch fail while the member has no leader.
            .header("grpc-metadata-hasleader", "true");
        let response = with_token(request, token)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| Failure::Next(error_chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            let bytes = read_body(response).await.unwrap_or_default();
            return Err(status_failure(endpoint, status.as_u16(), &bytes));
        }
        WatchStream::start(endpoint, response, start_revision).await
    }

    /// POSTs `body` to `path` on the endpoints until one answers (see [`Self::first_answer`]);
    /// `parse` turns a success body into the result (an error from it counts as that
    /// endpoint failing).
    async fn post<T>(
        &self,
        path: &str,
        body: &serde_json::Value,
        parse: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, EtcdError> {
        let body = body.to_string().into_bytes();
        self.authorized(|token| {
            let (body, parse) = (&body, &parse);
            async move {
                self.first_answer(|i| {
                    let endpoint = &self.inner.endpoints[i];
                    self.attempt(endpoint, path, body, token.as_deref(), parse)
                })
                .await
            }
        })
        .await
    }

    /// The endpoint to try first: the last that answered.
    fn preferred(&self) -> usize {
        self.inner.preferred.load(Ordering::Relaxed) % self.inner.endpoints.len()
    }

    /// Runs `try_at(i)` on the endpoints, from the preferred one on, and returns the first
    /// answer. The next endpoint starts when every try so far has failed, or when the last
    /// one started has gone the timeout without an answer. A slow try is not given up
    /// then: it stays in flight, because a member waiting for a new leader answers as soon
    /// as there is one, and abandoning it would waste the election's end. The call ends at
    /// the first answer, at etcd's refusal, when every endpoint has failed, or n × timeout
    /// after it began (n endpoints), the same bound as trying them one after the other.
    async fn first_answer<T, Fut>(&self, try_at: impl Fn(usize) -> Fut) -> Result<T, EtcdError>
    where
        Fut: Future<Output = Result<T, Failure>>,
    {
        let inner = &self.inner;
        let n = inner.endpoints.len();
        let first = self.preferred();
        let began = tokio::time::Instant::now();
        let deadline = began
            + inner
                .timeout
                .saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
        let mut running = FuturesUnordered::new();
        // (endpoint, when its try started, why it failed)
        let mut tried: Vec<(usize, tokio::time::Instant, Option<String>)> = Vec::new();
        let mut next_due = began;
        loop {
            let now = tokio::time::Instant::now();
            let more = tried.len() < n;
            if more && (running.is_empty() || now >= next_due) {
                // Every endpoint once, from `first`.
                let i = (first + tried.len()) % n;
                let attempt = try_at(i);
                running.push(async move { (i, attempt.await) });
                tried.push((i, now, None));
                next_due = now + inner.timeout;
                continue;
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                Some((i, result)) = running.next() => match result {
                    Ok(answer) => {
                        if i != first {
                            inner.preferred.store(i, Ordering::Relaxed);
                            tracing::info!(endpoint = %inner.endpoints[i], "etcd: now using this endpoint");
                        }
                        return Ok(answer);
                    }
                    Err(Failure::Stop(e)) => return Err(e),
                    Err(Failure::Next(reason)) => {
                        tracing::debug!(endpoint = %inner.endpoints[i], "etcd: {reason}");
                        if let Some(t) = tried.iter_mut().find(|t| t.0 == i) {
                            t.2 = Some(reason);
                        }
                    }
                },
                () = tokio::time::sleep_until(next_due), if more => {}
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let failures: Vec<String> = tried
            .into_iter()
            .map(|(i, started, reason)| {
                let reason = reason.unwrap_or_else(|| {
                    let waited = deadline.saturating_duration_since(started);
                    format!("no answer within {} ms", waited.as_millis())
                });
                format!("{}: {reason}", inner.endpoints[i])
            })
            .collect();
        Err(EtcdError::Unreachable(failures.join("; ")))
    }

    async fn attempt<T>(
        &self,
        endpoint: &str,
        path: &str,
        body: &[u8],
        token: Option<&str>,
        parse: &impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, Failure> {
        let request = self
            .inner
            .http
            .post(format!("{endpoint}{path}"))
            .header("content-type", "application/json");
        let response = with_token(request, token)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| Failure::Next(error_chain(&e)))?;
        let status = response.status().as_u16();
        let bytes = read_body(response).await.map_err(Failure::Next)?;
        // A stream that failed before its first message answers with an error status; one
        // that failed later still says 200, with `{"error":..}` in the body.
        if !(200..300).contains(&status) || bytes.trim_ascii_start().starts_with(b"{\"error\"") {
            return Err(status_failure(endpoint, status, &bytes));
        }
        parse(&bytes).map_err(|reason| Failure::Next(format!("bad response: {reason}")))
    }
}

/// The [key, range_end) pair that selects every key starting with `prefix`: range_end is
/// the prefix with its last byte below 0xff incremented and what follows dropped; "\0"
/// (every key from `key` on) when there is no such byte. The empty prefix is every key.
fn prefix_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        return (vec![0], vec![0]);
    }
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return (prefix.to_vec(), end);
        }
    }
    (prefix.to_vec(), vec![0])
}

/// Maps etcd's "lease not found" refusal to [`EtcdError::LeaseNotFound`].
fn lease_gone(lease: i64) -> impl Fn(EtcdError) -> EtcdError {
    move |e| match e {
        EtcdError::Status {
            status: 404,
            ref message,
            ..
        } if message.contains("lease not found") => EtcdError::LeaseNotFound(lease),
        e => e,
    }
}

/// What a non-2xx answer (or a stream's `{"error":..}`) means: etcd refusing the request
/// (4xx) stops; a server error, or an answer that is not etcd's, goes on to the next
/// endpoint.
fn status_failure(endpoint: &str, status: u16, body: &[u8]) -> Failure {
    let Some((code, message)) = etcd_error(body) else {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
        return Failure::Next(format!("HTTP {status} (not etcd's answer): {text:?}"));
    };
    let status = if (200..300).contains(&status) {
        code.unwrap_or(500)
    } else {
        status
    };
    if (400..500).contains(&status) && status != 429 {
        Failure::Stop(EtcdError::Status {
            endpoint: endpoint.to_string(),
            status,
            message,
        })
    } else {
        Failure::Next(format!("HTTP {status}: {message}"))
    }
}

/// The message of an etcd error body, unary (`{"error":"..","code":5,"message":".."}`) or
/// streaming (`{"error":{"grpc_code":14,"http_code":503,"message":".."}}`), with the HTTP
/// status the streaming form names.
fn etcd_error(body: &[u8]) -> Option<(Option<u16>, String)> {
    let first = body
        .split(|&b| b == b'\n')
        .find(|l| !l.trim_ascii().is_empty())?;
    let v: serde_json::Value = serde_json::from_slice(first).ok()?;
    match v.get("error")? {
        serde_json::Value::String(s) => {
            let message = v.get("message").and_then(|m| m.as_str()).unwrap_or(s);
            Some((None, message.to_string()))
        }
        serde_json::Value::Object(o) => {
            let message = o.get("message").and_then(|m| m.as_str()).unwrap_or("");
            let code = o.get("http_code").and_then(|c| c.as_u64());
            Some((
                code.and_then(|c| u16::try_from(c).ok()),
                message.to_string(),
            ))
        }
        _ => None,
    }
}

/// Reads a whole response body, at most [`MAX_RESPONSE`] bytes.
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if out.len() + chunk.len() > MAX_RESPONSE {
            return Err(format!("response over {MAX_RESPONSE} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// reqwest's errors nest; the chain says what happened (refused, reset, timed out).
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

fn decode(b64: &str) -> Result<Vec<u8>, String> {
    BASE64
        .decode(b64.as_bytes())
        .map_err(|e| format!("base64 {b64:?}: {e}"))
}

fn decode_key(b64: &str) -> Result<String, String> {
    Ok(String::from_utf8_lossy(&decode(b64)?).into_owned())
}

/// An int64, which the gateway writes as a string (a bare number is taken too).
fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Number(i64),
        Text(String),
    }
    match Int::deserialize(d)? {
        Int::Number(n) => Ok(n),
        Int::Text(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

// The answers' JSON shapes: the gateway leaves out fields at their zero value.

#[derive(Deserialize, Default)]
#[serde(default)]
struct Header {
    #[serde(deserialize_with = "int64")]
    revision: i64,
}

/// A unary KV or lease answer (`kvs` only in a range answer).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Reply {
    header: Header,
    kvs: Vec<KeyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LeaseReply {
    #[serde(rename = "ID", deserialize_with = "int64")]
    id: i64,
    #[serde(rename = "TTL", deserialize_with = "int64")]
    ttl: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KeyValue {
    key: String,
    value: String,
    #[serde(deserialize_with = "int64")]
    mod_revision: i64,
}

/// One message of a streaming answer.
#[derive(Deserialize)]
struct StreamLine<T> {
    result: Option<T>,
    error: Option<StreamError>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StreamError {
    grpc_code: i64,
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_follows_etcd() {
        assert_eq!(prefix_range(b"/m/"), (b"/m/".to_vec(), b"/m0".to_vec()));
        assert_eq!(prefix_range(b"a\xff"), (b"a\xff".to_vec(), b"b".to_vec()));
        assert_eq!(prefix_range(b"\xff\xff"), (b"\xff\xff".to_vec(), vec![0]));
        assert_eq!(prefix_range(b""), (vec![0], vec![0]));
    }

    #[test]
    fn error_bodies() {
        let unary = br#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#;
        match status_failure("e", 404, unary) {
            Failure::Stop(e) => assert!(matches!(lease_gone(7)(e), EtcdError::LeaseNotFound(7))),
            Failure::Next(r) => panic!("{r}"),
        }
        let stream =
            br#"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}}"#;
        assert!(
            matches!(status_failure("e", 200, stream), Failure::Next(r) if r.contains("no leader"))
        );
        assert!(matches!(
            status_failure("e", 404, b"not found"),
            Failure::Next(_)
        ));
    }

    #[test]
    fn int64_as_string_or_number() {
        let h: Header = serde_json::from_str(r#"{"revision":"9007199254740993"}"#).unwrap();
        assert_eq!(h.revision, 9007199254740993);
        let h: Header = serde_json::from_str(r#"{"revision":3}"#).unwrap();
        assert_eq!(h.revision, 3);
        assert!(serde_json::from_str::<Header>(r#"{"revision":"x"}"#).is_err());
    }
}
